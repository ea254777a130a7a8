//! Gossip catches a split view: two `acd-log` instances with one key (as in
//! `fork.rs`) show one history each to two witnesses; the witness that pulls
//! the other's checkpoints finds the split view, writes evidence that
//! `acd_core::evidence::verify` accepts, counts it, and refuses to cosign the
//! log (across a restart) until an operator clears it. A one-shot monitor
//! that pulls the same witness fails with the same kind of evidence.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use acd::log_client::LogClient;
use acd_core::evidence::{self, Evidence, Kind};
use acd_core::log_api::ConsistencyProof;
use acd_core::note::NoteVerifier;
use acd_core::witness::AddCheckpoint;
use acd_tests::{
    STARTUP_TIMEOUT, ServerProcess, binary, commit, fresh_tid, key, metric, now_ms, wait_for_metric,
};
use serde_json::Value;

const ORIGIN: &str = "gossiped.test/log";
const TOKEN: &str = "gossip-test-admin-token";

/// A witness started with gossip flags (the harness starts witnesses
/// without peers); killed when dropped.
struct GossipWitness {
    child: Child,
    url: String,
}

impl Drop for GossipWitness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gossiping_witness(data: &Path, log_vkey: &str, peer: &str) -> GossipWitness {
    std::fs::create_dir_all(data).unwrap();
    let token_file = data.join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut child = Command::new(binary("acd-auditor"))
        .args([
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "witness.test/w2",
            "--gossip-interval-ms",
            "50",
            "--log",
            log_vkey,
            "--peer",
            peer,
            "--admin-token-file",
        ])
        .arg(&token_file)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(STARTUP_TIMEOUT).unwrap();
    let url = line.strip_prefix("listening on ").unwrap().to_owned();
    GossipWitness { child, url }
}

async fn append(log: &ServerProcess, n: u8, salt: u8) {
    let client = LogClient::new(&log.url, NoteVerifier::from_vkey(&log.vkey).unwrap());
    for i in 0..n {
        let req = commit(ORIGIN, &key(salt), fresh_tid(), now_ms() + 600_000, [i; 32]);
        client.commit(&req).await.unwrap();
    }
}

async fn checkpoint(log: &ServerProcess) -> String {
    reqwest::get(format!("{}/checkpoint", log.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn add(witness_url: &str, old_size: u64, proof: Vec<[u8; 32]>, cp: &str) -> (u16, String) {
    let body = AddCheckpoint {
        old_size,
        proof,
        checkpoint: cp.to_owned(),
    }
    .to_body();
    let resp = reqwest::Client::new()
        .post(format!("{witness_url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn evidence_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "json"));
    v.sort();
    v
}

fn verified(path: &Path, vkey: &str) -> evidence::Finding {
    let ev: Evidence = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    evidence::verify(&ev, &NoteVerifier::from_vkey(vkey).unwrap()).unwrap()
}

// A forked log shows one history to each of two witnesses; gossip from the first makes the second find the split view, write verifiable evidence, count it and freeze the origin (also after a restart) until `witness clear`; a one-shot monitor pulling the second witness exits non-zero with the same evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_catches_a_split_view() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = ServerProcess::start(dir_a.path(), ORIGIN, &[]);
    std::fs::create_dir_all(dir_b.path()).unwrap();
    std::fs::copy(dir_a.path().join("log.key"), dir_b.path().join("log.key")).unwrap();
    let b = ServerProcess::start(dir_b.path(), ORIGIN, &[]);
    assert_eq!(a.vkey, b.vkey);
    append(&a, 6, 1).await;
    append(&b, 6, 2).await;
    let (cp_a, cp_b) = (checkpoint(&a).await, checkpoint(&b).await);
    assert_ne!(cp_a, cp_b);

    // Witness 1 sees history A; witness 2 sees history B and pulls witness 1.
    let w1_dir = tempfile::tempdir().unwrap();
    let w1 = ServerProcess::start_witness(w1_dir.path(), "witness.test/w1", &[&a.vkey]);
    let w2_dir = tempfile::tempdir().unwrap();
    let w2_data = w2_dir.path().join("w2");
    let w2 = start_gossiping_witness(&w2_data, &b.vkey, &w1.url);
    assert_eq!(add(&w1.url, 0, vec![], &cp_a).await.0, 200);
    assert_eq!(add(&w2.url, 0, vec![], &cp_b).await.0, 200);

    // Witness 2 finds the split view.
    wait_for_metric(&w2.url, "acd_auditor_split_views_total", 1).await;
    assert_eq!(metric(&w2.url, "acd_auditor_frozen_origins").await, 1);
    assert!(metric(&w2.url, "acd_auditor_checkpoints_verified_total").await >= 2);
    let files = evidence_files(&w2_data.join("evidence"));
    assert_eq!(files.len(), 1, "{files:?}");
    let finding = verified(&files[0], &b.vkey);
    assert_eq!(finding.kind, Kind::SplitView);
    assert!(finding.conclusive);
    // `acd verify` checks the same file offline, and refuses it under
    // another log's key.
    let out = std::process::Command::new(acd_tests::binary("acd"))
        .arg("verify")
        .arg(&files[0])
        .args(["--log", &b.vkey])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("split-view"));
    let other_dir = tempfile::tempdir().unwrap();
    let other = ServerProcess::start(other_dir.path(), "other.test/log", &[]);
    let out = std::process::Command::new(acd_tests::binary("acd"))
        .arg("verify")
        .arg(&files[0])
        .args(["--log", &other.vkey])
        .output()
        .unwrap();
    assert!(!out.status.success());
    drop(other);
    let ev: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let notes: Vec<&str> = ev["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(notes.contains(&cp_a.as_str()) && notes.contains(&cp_b.as_str()));
    // Each witness gossips what it cosigned.
    let held: Value = reqwest::get(format!("{}/gossip/v1/checkpoints", w2.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(held["checkpoints"][0]["checkpoint"], cp_b.as_str());

    // B grows; witness 2 refuses even its consistent extension.
    append(&b, 2, 2).await;
    let grown = checkpoint(&b).await;
    let proof: ConsistencyProof = reqwest::get(format!("{}/api/v1/consistency?from=6&to=8", b.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, body) = add(&w2.url, 6, proof.proof.clone(), &grown).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("frozen"), "{body}");

    // A monitor that follows A and pulls witness 2 fails with split-view evidence.
    let mon = tempfile::tempdir().unwrap();
    let out = Command::new(binary("acd-auditor"))
        .args(["monitor", "--once", "--json", "--data"])
        .arg(mon.path())
        .arg("--log")
        .arg(format!("{}@{}", a.vkey, a.url))
        .args(["--peer", &w2.url])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["violation"], "split-view", "{v}");
    assert_eq!(v["peer"], w2.url.as_str());
    assert!(verified(Path::new(v["evidence"].as_str().unwrap()), &a.vkey).conclusive);

    // A restart stays frozen.
    drop(w2);
    let w2 = start_gossiping_witness(&w2_data, &b.vkey, &w1.url);
    assert_eq!(add(&w2.url, 6, proof.proof.clone(), &grown).await.0, 403);
    drop(w2);

    // The operator clears the origin on the stopped witness; it cosigns again,
    // and the evidence already cleared does not freeze it anew.
    let cleared = Command::new(binary("acd-auditor"))
        .args(["witness", "clear", "--origin", ORIGIN, "--data"])
        .arg(&w2_data)
        .output()
        .unwrap();
    assert!(cleared.status.success(), "{cleared:?}");
    let w2 = start_gossiping_witness(&w2_data, &b.vkey, &w1.url);
    let (status, body) = add(&w2.url, 6, proof.proof, &grown).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("— witness.test/w2 "), "{body}");
    let pulls = metric(&w2.url, "acd_auditor_gossip_pulls_total").await;
    wait_for_metric(&w2.url, "acd_auditor_gossip_pulls_total", pulls + 2).await;
    assert_eq!(metric(&w2.url, "acd_auditor_frozen_origins").await, 0);
    assert_eq!(metric(&w2.url, "acd_auditor_split_views_total").await, 0);
}
