//! The `acd` command line's standard output against a reader that goes
//! away early, as in `acd demo | head -1`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acd_tests::binary;

// `acd demo` whose reader closes the pipe after one line ends quietly with status 141 (like a shell's SIGPIPE), not with a panic and status 101.
#[test]
fn a_closed_pipe_ends_the_demo_quietly() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary("acd"))
        .arg("demo")
        .arg("--data")
        .arg(data.path().join("demo"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    {
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        // The reader goes away here.
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not end after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let errors = errors.join().unwrap();
    assert!(!errors.contains("panicked"), "{errors}");
    assert_eq!(status.code(), Some(141), "{status:?}: {errors}");
}
