//! The `acd-bank` binary: `serve` prints the two lines scripts read,
//! `key` prints the same key, `admin` talks to the server with the token
//! file, and SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bank() -> Command {
    Command::new(env!("CARGO_BIN_EXE_acd-bank"))
}

// serve, key and admin end to end over the real binary.
#[test]
fn serve_key_and_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bank");
    common::seed_keys(&data);
    let log = acd_core::note::NoteSigner::new(
        "log.binary.test",
        ed25519_dalek::SigningKey::from_bytes(&[4; 32]),
    )
    .unwrap()
    .verifier()
    .vkey();
    let mut child = bank()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--denominations",
            "1,10,100",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--log")
        .arg(format!("{log}@http://127.0.0.1:9"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.next().unwrap().unwrap();
    let url = listening.strip_prefix("listening on ").unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"));
    let vkey_line = lines.next().unwrap().unwrap();
    let vkey = vkey_line.strip_prefix("vkey ").unwrap().to_owned();
    assert_eq!(vkey.len(), 64);
    assert!(vkey.bytes().all(|b| b.is_ascii_hexdigit()));

    let out = bank().arg("key").arg("--data").arg(&data).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), vkey);

    let token_file = data.join("admin.token");
    let admin = |args: &[&str]| {
        let out = bank()
            .args(["admin", "--url", &url])
            .arg("--token-file")
            .arg(&token_file)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let key = hex::encode([7u8; 32]);
    let key = hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&hex::decode(&key).unwrap().try_into().unwrap())
            .verifying_key()
            .to_bytes(),
    );
    let a = admin(&["create-account", "--kind", "customer", "--key", &key]);
    assert_eq!(a["kind"], "customer");
    let a = admin(&["credit", "--key", &key, "--amount", "25"]);
    assert_eq!(a["balance"], 25);
    let a = admin(&["account", "--key", &key]);
    assert_eq!(a["balance"], 25);
    let s = admin(&["sums"]);
    assert_eq!(s["credited"], 25);
    assert_eq!(s["conserved"], true);

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

// The example configuration checked into the repository starts a bank (its
// data folder and port replaced, as an operator's flags would), which
// answers with the example's denominations and log, and stops on SIGTERM.
#[test]
fn the_example_config_starts_a_bank() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bank");
    common::seed_keys(&data);
    let mut child = bank()
        .arg("serve")
        .arg("--config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bank.example.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.next().unwrap().unwrap();
    let url = listening.strip_prefix("listening on ").unwrap().to_owned();
    let info: serde_json::Value = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async {
            acd_serve::http_client()
                .get(format!("{url}/api/v1/info"))
                .send()
                .await
                .unwrap()
                .json()
                .await
        })
        .unwrap();
    let values: Vec<u64> = info["denominations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["value"].as_u64().unwrap())
        .collect();
    assert_eq!(values, [1, 10, 100, 1000]);
    assert_eq!(
        info["logs"][0]["vkey"],
        "log.example.com/acd/1+5e89bb2c+AdCRR2Rfc+oIt1CEPLp8K59dHoGO/k+DOxJ3giVLZbYn"
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
}
