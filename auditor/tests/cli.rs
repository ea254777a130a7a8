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

/// Starts a witness on `data` with `extra` flags; its announced vkey, or
/// its error output if it exits.
fn witness_vkey(data: &std::path::Path, extra: &[&str]) -> Result<String, String> {
    let mut child = Command::new(BIN)
        .args([
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "w.test/1",
            "--data",
        ])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let Some(Ok(first)) = lines.next() else {
        let out = child.wait_with_output().unwrap();
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    };
    assert!(first.starts_with("listening on http://"), "{first}");
    let vkey = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    Ok(vkey.strip_prefix("vkey ").unwrap().to_owned())
}

fn mode(path: std::path::PathBuf) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// A new witness gets an ML-DSA-44 key (tlog-cosignature recommends it for
// new deployments), or Ed25519 with --key-type ed25519, created with mode
// 0600, and announces its cosignature vkey of that type under its name; it
// keeps its key across restarts and refuses to change its type.
#[test]
fn witness_key_types_and_vkeys() {
    use acd_core::cosignature::{CosignatureKind, CosignatureVerifier};
    let dir = tempfile::tempdir().unwrap();
    let (pq, ed) = (dir.path().join("pq"), dir.path().join("ed"));

    let vkey = witness_vkey(&pq, &[]).unwrap();
    let v = CosignatureVerifier::from_vkey(&vkey).unwrap();
    assert_eq!(v.kind(), CosignatureKind::MlDsa44);
    assert!(vkey.starts_with("w.test/1+"));
    assert_eq!(mode(pq.join("witness.ml-dsa-44.key")), 0o600);
    assert!(!pq.join("witness.key").exists());
    assert_eq!(
        witness_vkey(&pq, &["--key-type", "ml-dsa-44"]).unwrap(),
        vkey
    );

    let vkey = witness_vkey(&ed, &["--key-type", "ed25519"]).unwrap();
    let v = CosignatureVerifier::from_vkey(&vkey).unwrap();
    assert_eq!(v.kind(), CosignatureKind::Ed25519);
    assert_eq!(mode(ed.join("witness.key")), 0o600);
    // Without the flag an existing witness keeps its type.
    assert_eq!(witness_vkey(&ed, &[]).unwrap(), vkey);
    let err = witness_vkey(&ed, &["--key-type", "ml-dsa-44"]).unwrap_err();
    assert!(err.contains("this witness's key is ed25519"), "{err}");
    assert!(!ed.join("witness.ml-dsa-44.key").exists());
    let err = witness_vkey(&ed, &["--key-type", "rsa"]).unwrap_err();
    assert!(err.contains("expected ed25519 or ml-dsa-44"), "{err}");
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
