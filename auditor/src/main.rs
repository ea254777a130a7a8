//! `acd-auditor`: the log monitor and witness. Not built yet; this binary
//! says so instead of pretending.

fn main() -> std::process::ExitCode {
    eprintln!("acd-auditor: the monitor and witness are not implemented yet (planned work)");
    std::process::ExitCode::from(2)
}
