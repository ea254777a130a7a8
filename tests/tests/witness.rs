//! The witness (`acd-auditor witness`) against a real log, over HTTP, as
//! C2SP tlog-witness specifies: cosigning, the 409 size answer, refusing an
//! inconsistent proof, and keeping its state across a restart.

#![allow(clippy::unwrap_used)]

use acd::log_client::LogClient;
use acd_core::cosignature::{CosignatureVerifier, cosigners};
use acd_core::log_api::ConsistencyProof;
use acd_core::note::{Note, NoteVerifier};
use acd_core::witness::{AddCheckpoint, SIZE_CONTENT_TYPE, parse_size_body};
use acd_tests::{ServerProcess, commit, fresh_tid, key, now_ms};

const ORIGIN: &str = "witnessed.test/log";

async fn append(client: &LogClient, n: u8) {
    for i in 0..n {
        let req = commit(ORIGIN, &key(1), fresh_tid(), now_ms() + 600_000, [i; 32]);
        client.commit(&req).await.unwrap();
    }
}

async fn checkpoint_text(log: &ServerProcess) -> String {
    reqwest::get(format!("{}/checkpoint", log.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn add(witness: &ServerProcess, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/add-checkpoint", witness.url))
        .body(body)
        .send()
        .await
        .unwrap()
}

// A witness cosigns a real log's checkpoints as they grow, answers a stale old size with 409 and its size, refuses a bad proof with 422, and remembers its state after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_cosigns_a_growing_log() {
    let log_dir = tempfile::tempdir().unwrap();
    let witness_dir = tempfile::tempdir().unwrap();
    let log = ServerProcess::start(log_dir.path(), ORIGIN, &[]);
    let witness = ServerProcess::start_witness(witness_dir.path(), "witness.test/w1", &[&log.vkey]);
    let wv = CosignatureVerifier::from_vkey(&witness.vkey).unwrap();
    let client = LogClient::new(&log.url, NoteVerifier::from_vkey(&log.vkey).unwrap());

    append(&client, 5).await;
    let a = checkpoint_text(&log).await;
    let resp = add(
        &witness,
        AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: a.clone(),
        }
        .to_body(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let lines = resp.text().await.unwrap();
    let cosigned = Note::parse(&format!("{a}{lines}")).unwrap();
    assert_eq!(cosigners(&cosigned, std::slice::from_ref(&wv)).len(), 1);

    append(&client, 7).await;
    let b = checkpoint_text(&log).await;
    // A log that forgot what the witness holds learns it from the 409.
    let resp = add(
        &witness,
        AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: b.clone(),
        }
        .to_body(),
    )
    .await;
    assert_eq!(resp.status(), 409);
    assert_eq!(resp.headers()["content-type"], SIZE_CONTENT_TYPE);
    let held = parse_size_body(&resp.text().await.unwrap()).unwrap();
    assert_eq!(held, 5);

    let proof: ConsistencyProof =
        reqwest::get(format!("{}/api/v1/consistency?from=5&to=12", log.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let mut bad = proof.proof.clone();
    bad[0][0] ^= 1;
    let resp = add(
        &witness,
        AddCheckpoint {
            old_size: 5,
            proof: bad,
            checkpoint: b.clone(),
        }
        .to_body(),
    )
    .await;
    assert_eq!(resp.status(), 422);
    let resp = add(
        &witness,
        AddCheckpoint {
            old_size: 5,
            proof: proof.proof,
            checkpoint: b.clone(),
        }
        .to_body(),
    )
    .await;
    assert_eq!(resp.status(), 200);

    // Restarted, the witness still holds size 12.
    drop(witness);
    let witness = ServerProcess::start_witness(witness_dir.path(), "witness.test/w1", &[&log.vkey]);
    assert_eq!(witness.vkey, wv.vkey());
    let resp = add(
        &witness,
        AddCheckpoint {
            old_size: 5,
            proof: vec![],
            checkpoint: b,
        }
        .to_body(),
    )
    .await;
    assert_eq!(resp.status(), 409);
    assert_eq!(parse_size_body(&resp.text().await.unwrap()), Some(12));

    // A log it does not witness is 404; garbage is 400.
    let other_dir = tempfile::tempdir().unwrap();
    let other = ServerProcess::start(other_dir.path(), "other.test/log", &[]);
    let c = checkpoint_text(&other).await;
    let resp = add(
        &witness,
        AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: c,
        }
        .to_body(),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let resp = add(&witness, "nonsense".into()).await;
    assert_eq!(resp.status(), 400);
}

// A log configured with two witnesses, one of them down, serves its checkpoints with the live witness's cosignature as it grows; when the other comes back, the idle log's checkpoint gets its cosignature too, with no new entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_serves_cosigned_checkpoints() {
    let log_dir = tempfile::tempdir().unwrap();
    let w1_dir = tempfile::tempdir().unwrap();
    let w2_dir = tempfile::tempdir().unwrap();
    // The log's key exists before the witnesses are told to trust it.
    let vkey = ServerProcess::start(log_dir.path(), ORIGIN, &[])
        .vkey
        .clone();
    let w1 = ServerProcess::start_witness(w1_dir.path(), "witness.test/w1", &[&vkey]);
    let v1 = CosignatureVerifier::from_vkey(&w1.vkey).unwrap();
    // The second witness's key and address exist; then it goes down.
    let w2 = ServerProcess::start_witness(w2_dir.path(), "witness.test/w2", &[&vkey]);
    let (w2_spec, w2_addr) = (format!("{}@{}", w2.vkey, w2.url), w2.addr());
    let v2 = CosignatureVerifier::from_vkey(&w2.vkey).unwrap();
    drop(w2);
    let log = ServerProcess::start_witnessed(
        log_dir.path(),
        ORIGIN,
        &[format!("{}@{}", w1.vkey, w1.url), w2_spec],
    );
    let client = LogClient::new(&log.url, NoteVerifier::from_vkey(&log.vkey).unwrap());

    let mut last = 0;
    for round in 0..3 {
        append(&client, 4).await;
        let want = 4 * (round + 1);
        let note = wait_for_checkpoint(&log, |size, note| {
            size == want && cosigners(note, std::slice::from_ref(&v1)).len() == 1
        })
        .await;
        assert!(want > last);
        last = want;
        assert!(cosigners(&note, std::slice::from_ref(&v2)).is_empty());
    }

    let _w2 = ServerProcess::start_witness_at(w2_dir.path(), "witness.test/w2", &[&vkey], &w2_addr);
    let both = [v1, v2];
    wait_for_checkpoint(&log, |size, note| {
        size == last && cosigners(note, &both).len() == 2
    })
    .await;
}

/// Polls the log's `/checkpoint` (10 s at most) until `done(size, note)`.
async fn wait_for_checkpoint(log: &ServerProcess, done: impl Fn(u64, &Note) -> bool) -> Note {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = checkpoint_text(log).await;
        let note = Note::parse(&text).unwrap();
        let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
        if done(size, &note) {
            return note;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpoint never got there: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

// The cosigned-size gauge counts only checkpoints that carry the witness's cosignature: 0 without witnesses, 0 while the log's one witness is down, the tree size once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cosigned_gauge_counts_only_cosigned_checkpoints() {
    use acd_tests::{metric, wait_for_metric};
    const TREE: &str = "acd_log_tree_size";
    const COSIGNED: &str = "acd_log_cosigned_tree_size";

    let plain_dir = tempfile::tempdir().unwrap();
    let plain = ServerProcess::start(plain_dir.path(), ORIGIN, &[]);
    let client = LogClient::new(&plain.url, NoteVerifier::from_vkey(&plain.vkey).unwrap());
    append(&client, 2).await;
    wait_for_metric(&plain.url, TREE, 2).await;
    assert_eq!(metric(&plain.url, COSIGNED).await, 0);
    drop(plain);

    let log_dir = tempfile::tempdir().unwrap();
    let w_dir = tempfile::tempdir().unwrap();
    let vkey = ServerProcess::start(log_dir.path(), ORIGIN, &[])
        .vkey
        .clone();
    // The witness's key and address exist; then it goes down.
    let w = ServerProcess::start_witness(w_dir.path(), "witness.test/w1", &[&vkey]);
    let (spec, addr) = (format!("{}@{}", w.vkey, w.url), w.addr());
    drop(w);
    let log = ServerProcess::start_witnessed(log_dir.path(), ORIGIN, &[spec]);
    let client = LogClient::new(&log.url, NoteVerifier::from_vkey(&log.vkey).unwrap());
    append(&client, 3).await;
    wait_for_metric(&log.url, TREE, 3).await;
    // A witness round (a failed one) has run for the published checkpoint.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(metric(&log.url, COSIGNED).await, 0, "nobody cosigned");

    let _w = ServerProcess::start_witness_at(w_dir.path(), "witness.test/w1", &[&vkey], &addr);
    wait_for_metric(&log.url, COSIGNED, 3).await;
    assert_eq!(
        metric(&log.url, COSIGNED).await,
        metric(&log.url, TREE).await
    );
}
