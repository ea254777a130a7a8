//! The `acd-log` command line: key handling and refusals, run as a process.
//! (Being an integration test of this package also makes cargo build the
//! `acd-log` binary that the end-to-end tests start.)

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_acd-log");

// `acd-log vkey` prints the key the server announces, and refuses a directory without a key.
#[test]
fn vkey_matches_the_served_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["vkey", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key"));

    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--origin",
            "cli.test/log",
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
            .starts_with("listening on http://127.0.0.1:")
    );
    let served = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let out = Command::new(BIN)
        .args(["vkey", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let vkey = String::from_utf8(out.stdout).unwrap();
    assert_eq!(served, format!("vkey {}", vkey.trim()));
    assert!(vkey.starts_with("cli.test/log+"));
}

// A data directory holding another origin's key is refused rather than silently re-keyed.
#[test]
fn other_origin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--origin",
            "a.test/log",
            "--data",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--origin",
            "b.test/log",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not \"b.test/log\""));
}
