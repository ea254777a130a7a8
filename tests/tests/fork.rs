//! A log that forks: two `acd-log` instances with the same key and origin,
//! fed different entries. The witness refuses the second history and keeps
//! evidence; a monitor that saw one history reports the other with both
//! signed checkpoints.

#![allow(clippy::unwrap_used)]

use acd::log_client::LogClient;
use acd_core::log_api::ConsistencyProof;
use acd_core::note::NoteVerifier;
use acd_core::witness::AddCheckpoint;
use acd_tests::{ServerProcess, commit, fresh_tid, key, monitor_once, now_ms};
use serde_json::Value;

const ORIGIN: &str = "forked.test/log";

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

async fn add(witness: &ServerProcess, body: String) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/add-checkpoint", witness.url))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

// Two instances of one log key diverge: the witness cosigns one history and refuses the other (same size, other root; and a larger inconsistent tree), and the monitor reports the split view with both notes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_log_is_caught() {
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

    let wdir = tempfile::tempdir().unwrap();
    let witness = ServerProcess::start_witness(wdir.path(), "witness.test/w1", &[&a.vkey]);
    let first = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: cp_a.clone(),
    };
    assert_eq!(add(&witness, first.to_body()).await, 200);
    // B's checkpoint of the same size has another root.
    let same = AddCheckpoint {
        old_size: 6,
        proof: vec![],
        checkpoint: cp_b.clone(),
    };
    assert_eq!(add(&witness, same.to_body()).await, 409);
    // B grows; its own consistency proof does not lead from A's root.
    append(&b, 4, 2).await;
    let proof: ConsistencyProof =
        reqwest::get(format!("{}/api/v1/consistency?from=6&to=10", b.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let grown = AddCheckpoint {
        old_size: 6,
        proof: proof.proof,
        checkpoint: checkpoint(&b).await,
    };
    assert_eq!(add(&witness, grown.to_body()).await, 422);
    drop(witness);
    // The witness kept both refusals as evidence, each with A's cosigned note.
    assert_eq!(witness_evidence_count(wdir.path()), 2);

    // A monitor that verified A sees B: split view.
    let mdir = tempfile::tempdir().unwrap();
    let (ok, out) = monitor_once(mdir.path(), &a.vkey, &a.url);
    assert!(ok, "{out}");
    let (ok, out) = monitor_once(mdir.path(), &b.vkey, &b.url);
    assert!(!ok, "{out}");
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["violation"], "inconsistent");
    let evidence: Value =
        serde_json::from_str(&std::fs::read_to_string(v["evidence"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(evidence["checkpoints"][0], cp_a);
    assert!(
        evidence["checkpoints"][1]
            .as_str()
            .unwrap()
            .starts_with(&format!("{ORIGIN}\n10\n"))
    );
}

/// Counts the witness's evidence records (the witness is stopped).
fn witness_evidence_count(dir: &std::path::Path) -> usize {
    let db = sled::open(dir.join("db")).unwrap();
    db.open_tree("evidence").unwrap().len()
}
