//! A log that forks: two `acd-log` instances with the same key and origin,
//! fed different entries. The witness refuses the second history and keeps
//! evidence; a monitor that saw one history reports the other with both
//! signed checkpoints.

#![allow(clippy::unwrap_used)]

use acd::log_client::LogClient;
use acd_core::log_api::ConsistencyProof;
use acd_core::note::NoteVerifier;
use acd_core::witness::AddCheckpoint;
use acd_tests::{
    ServerProcess, commit, fresh_tid, key, metric, monitor_once, now_ms, wait_for_metric,
};
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

async fn add_status(
    witness: &ServerProcess,
    old_size: u64,
    proof: Vec<[u8; 32]>,
    checkpoint: &str,
) -> u16 {
    let body = AddCheckpoint {
        old_size,
        proof,
        checkpoint: checkpoint.to_owned(),
    }
    .to_body();
    add(witness, body).await
}

async fn consistency(log: &ServerProcess, from: u64, to: u64) -> Vec<[u8; 32]> {
    let proof: ConsistencyProof = reqwest::get(format!(
        "{}/api/v1/consistency?from={from}&to={to}",
        log.url
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    proof.proof
}

// Two instances of one log key diverge. A witness refuses the second history: a larger inconsistent tree (422, evidence kept, nothing frozen on the sender's word) and a checkpoint of the same size with another root (409, a split view by itself: the origin is frozen, 403 afterwards). A witness that knows the log's URL checks a refused proof against the log's own: a tampered proof of an honest log freezes nothing, a log that cannot prove its own checkpoint is frozen. The monitor reports the split view with both notes.
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

    // A witness that knows the log by its key only.
    let wdir = tempfile::tempdir().unwrap();
    let witness = ServerProcess::start_witness(wdir.path(), "witness.test/w1", &[&a.vkey]);
    assert_eq!(add_status(&witness, 0, vec![], &cp_a).await, 200);
    // B grows; its own consistency proof does not lead from A's root.
    append(&b, 4, 2).await;
    let cp_b10 = checkpoint(&b).await;
    let b_proof = consistency(&b, 6, 10).await;
    assert_eq!(add_status(&witness, 6, b_proof.clone(), &cp_b10).await, 422);
    assert_eq!(metric(&witness.url, "acd_auditor_frozen_origins").await, 0);
    // B's checkpoint of A's size: two signed roots for one size.
    assert_eq!(add_status(&witness, 6, vec![], &cp_b).await, 409);
    assert_eq!(metric(&witness.url, "acd_auditor_frozen_origins").await, 1);
    assert_eq!(
        metric(&witness.url, "acd_auditor_split_views_total").await,
        1
    );
    append(&a, 4, 1).await;
    let cp_a10 = checkpoint(&a).await;
    let a_proof = consistency(&a, 6, 10).await;
    assert_eq!(add_status(&witness, 6, a_proof.clone(), &cp_a10).await, 403);
    drop(witness);
    // Both refusals were kept, each with A's cosigned note.
    assert_eq!(witness_evidence_count(wdir.path()), 2);

    // A witness that asks A (honest) for proofs: a tampered proof is the
    // sender's fault; A proves its checkpoint and nothing is frozen.
    let w_honest_dir = tempfile::tempdir().unwrap();
    let a_at_url = format!("{}@{}", a.vkey, a.url);
    let honest = ServerProcess::start_witness(w_honest_dir.path(), "witness.test/w2", &[&a_at_url]);
    assert_eq!(add_status(&honest, 0, vec![], &cp_a).await, 200);
    let mut tampered = a_proof.clone();
    tampered[0][0] ^= 1;
    assert_eq!(add_status(&honest, 6, tampered, &cp_a10).await, 422);
    wait_for_metric(&honest.url, "acd_auditor_refusals_checked_total", 1).await;
    assert_eq!(metric(&honest.url, "acd_auditor_frozen_origins").await, 0);
    assert_eq!(add_status(&honest, 6, a_proof, &cp_a10).await, 200);

    // A witness to which the log shows B's history at its URL, after A's
    // checkpoint reached it: the log cannot prove B's checkpoint extends
    // A's, so the origin is frozen.
    let w_split_dir = tempfile::tempdir().unwrap();
    let b_at_url = format!("{}@{}", a.vkey, b.url);
    let split = ServerProcess::start_witness(w_split_dir.path(), "witness.test/w3", &[&b_at_url]);
    assert_eq!(add_status(&split, 0, vec![], &cp_a).await, 200);
    assert_eq!(add_status(&split, 6, b_proof, &cp_b10).await, 422);
    wait_for_metric(&split.url, "acd_auditor_refusals_checked_total", 1).await;
    assert_eq!(metric(&split.url, "acd_auditor_frozen_origins").await, 1);
    assert_eq!(add_status(&split, 6, vec![], &cp_a).await, 403);

    // A monitor that verified A sees B, grown to 12: no consistency.
    append(&b, 2, 2).await;
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
    assert_eq!(evidence["checkpoints"][0], cp_a10);
    assert!(
        evidence["checkpoints"][1]
            .as_str()
            .unwrap()
            .starts_with(&format!("{ORIGIN}\n12\n"))
    );
}

/// Counts the witness's evidence records (the witness is stopped).
fn witness_evidence_count(dir: &std::path::Path) -> usize {
    let db = sled::open(dir.join("db")).unwrap();
    db.open_tree("evidence").unwrap().len()
}
