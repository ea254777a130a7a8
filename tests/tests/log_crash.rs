//! Durability: `acd-log` killed with SIGKILL in the middle of a load keeps
//! every acknowledged entry, and after each restart publishes only
//! checkpoints consistent with every one published before.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd::log_client::{ClientError, LogClient, verify_entry_proof};
use acd_core::checkpoint::SignedCheckpoint;
use acd_core::log_api::EntryProof;
use acd_core::merkle;
use acd_core::note::NoteVerifier;
use acd_tests::{LogProcess, commit, fresh_tid, key, now_ms};

const ORIGIN: &str = "crash.test/log";

fn client(log: &LogProcess) -> LogClient {
    LogClient::new(&log.url, NoteVerifier::from_vkey(&log.vkey).unwrap())
}

/// Appends from `workers` tasks until the log stops answering; returns every
/// acknowledged answer.
async fn load_until_killed(client: LogClient, workers: usize) -> Arc<Mutex<Vec<EntryProof>>> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..workers {
        let (client, acked) = (client.clone(), acked.clone());
        tokio::spawn(async move {
            let merchant = key(3);
            loop {
                let req = commit(ORIGIN, &merchant, fresh_tid(), now_ms() + 600_000, [9; 32]);
                match client.commit_unverified(&req).await {
                    Ok(p) => acked.lock().unwrap().push(p),
                    Err(ClientError::Http(_)) => break,
                    Err(e) => panic!("unexpected refusal: {e}"),
                }
            }
        });
    }
    acked
}

// Three times: SIGKILL under a concurrent load, restart; every acknowledged entry survives at its index, and every checkpoint ever seen is consistent with the latest one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let verifier = NoteVerifier::from_vkey(&log.vkey).unwrap();
    let mut all_acked: Vec<EntryProof> = Vec::new();

    for round in 0..3 {
        let acked = load_until_killed(client(&log), 48).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        log.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let round_acked = std::mem::take(&mut *acked.lock().unwrap());
        assert!(
            !round_acked.is_empty(),
            "round {round}: nothing was acknowledged"
        );
        all_acked.extend(round_acked);

        log = LogProcess::start(dir.path(), ORIGIN, &[]);
        assert_eq!(log.vkey, verifier.vkey(), "the key survives a restart");
        let c = client(&log);
        let latest = c.checkpoint().await.unwrap();
        let size = latest.checkpoint.size;

        let mut seen: Vec<SignedCheckpoint> = Vec::new();
        for p in &all_acked {
            // Every acknowledged answer verified when it was given...
            let v = verify_entry_proof(p, &verifier).unwrap();
            assert!(p.index < size, "round {round}: entry {} lost", p.index);
            if !seen
                .iter()
                .any(|s| s.checkpoint.size == v.checkpoint.checkpoint.size)
            {
                seen.push(v.checkpoint);
            }
        }
        // ...and the restarted log still has it, at the same index, with the same bytes.
        for p in all_acked.iter().step_by(23) {
            let now = c.transaction(&p.tid).await.unwrap().unwrap();
            assert_eq!(now.proof.index, p.index);
            assert_eq!(now.proof.entry, p.entry);
        }
        // Every checkpoint seen before is consistent with the latest, and
        // no two checkpoints of one size have different roots.
        for s in &seen {
            assert!(s.checkpoint.size <= size);
            c.check_consistency(s, &latest).await.unwrap();
        }
        for s in &seen {
            for t in &seen {
                if s.checkpoint.size == t.checkpoint.size {
                    assert_eq!(s.checkpoint.root, t.checkpoint.root);
                }
            }
        }
        // Re-derived from the served proofs: the same root for the same size.
        for p in all_acked.iter().step_by(50) {
            let root =
                merkle::root_from_inclusion_proof(&p.leaf_hash, p.index, p.tree_size, &p.inclusion)
                    .unwrap();
            let again = seen
                .iter()
                .find(|s| s.checkpoint.size == p.tree_size)
                .unwrap();
            assert_eq!(root, again.checkpoint.root);
        }
        // The log takes appends again.
        let req = commit(ORIGIN, &key(3), fresh_tid(), now_ms() + 600_000, [1; 32]);
        let after = c.commit(&req).await.unwrap();
        assert_eq!(after.proof.index, size);
    }
}

// SIGTERM shuts the log down cleanly (exit status 0), and a restart serves the same checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let c = client(&log);
    for i in 0..20u8 {
        let req = commit(ORIGIN, &key(3), fresh_tid(), now_ms() + 600_000, [i; 32]);
        c.commit(&req).await.unwrap();
    }
    let before = c.checkpoint().await.unwrap();
    let status = log
        .terminate(Duration::from_secs(10))
        .expect("exits within 10 s");
    assert!(status.success(), "{status:?}");
    let log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let after = client(&log).checkpoint().await.unwrap();
    assert_eq!(after.to_text(), before.to_text());
}
