//! Standard output of the command line. A reader that goes away early
//! (`acd demo | head -1`) ends the command quietly with status 141, as a
//! shell reports a process that SIGPIPE stopped, instead of the panic
//! `println!` gives on a closed pipe. Every state the wallet prints about
//! is saved before it is printed, so stopping at any line is like a crash
//! there, which `acd wallet resume` finishes.

use std::io::Write;

/// The exit status of a command whose reader closed standard output
/// (128 + SIGPIPE).
pub const BROKEN_PIPE_STATUS: i32 = 141;

/// Writes one line to standard output; see the module doc for a closed
/// pipe. Any other write failure ends the command with status 1.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(BROKEN_PIPE_STATUS);
        }
        eprintln!("acd: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` that ends quietly on a closed pipe ([`write_line`]).
macro_rules! outln {
    () => {
        $crate::output::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}
