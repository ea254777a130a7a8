//! The `acd-auditor` command line, run as a process. (Being an integration
//! test of this package also makes cargo build the binary that the
//! end-to-end tests start.)

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_acd-auditor");

// The monitor refuses to run with nothing to follow.
#[test]
fn monitor_needs_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["monitor", "--once", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least one --log"));
}

// The witness creates its key with mode 0600 and announces a cosignature vkey (type 0x04) under its name.
#[test]
fn witness_key_and_vkey() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "w.test/1",
            "--data",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines
            .next()
            .unwrap()
            .unwrap()
            .starts_with("listening on http://")
    );
    let vkey = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let vkey = vkey.strip_prefix("vkey ").unwrap();
    acd_core::cosignature::CosignatureVerifier::from_vkey(vkey).unwrap();
    assert!(vkey.starts_with("w.test/1+"));
    let mode = std::fs::metadata(dir.path().join("witness.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
