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

// A monitor that runs until stopped (here with a log that is down, so every
// check fails and is retried) exits 0 on SIGTERM.
#[test]
fn monitor_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let signer = acd_core::note::NoteSigner::new(
        "sigterm.test/log",
        ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
    )
    .unwrap();
    let log = format!("{}@http://127.0.0.1:1", signer.verifier().vkey());
    let mut child = Command::new(BIN)
        .args([
            "monitor",
            "--interval-ms",
            "50",
            "--listen",
            "127.0.0.1:0",
            "--log",
            &log,
            "--data",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    std::thread::sleep(std::time::Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the monitor did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
