//! The monitor (`acd-auditor monitor`) against a real log: it verifies and
//! audits incrementally, and a full audit finds an entry whose stored bytes
//! were altered after publication, naming the entry.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use acd::log_client::LogClient;
use acd_core::note::NoteVerifier;
use acd_core::tile;
use acd_log_server::storage::{Batch, SledStorage, Storage};
use acd_tests::{ServerProcess, abort, commit, fresh_tid, key, monitor_once, now_ms};
use serde_json::Value;

const ORIGIN: &str = "monitored.test/log";

async fn append(client: &LogClient, n: usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let req = commit(
                ORIGIN,
                &key(1),
                fresh_tid(),
                now_ms() + 600_000,
                [i as u8; 32],
            );
            client.commit(&req).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn json(out: &str) -> Value {
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

// The monitor audits a log of commits and an abort, then only the new entries of the next checkpoint; after an entry's bytes are altered in storage, a fresh full audit reports that entry with evidence and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_audits_and_finds_an_altered_entry() {
    let log_dir = tempfile::tempdir().unwrap();
    let bank = key(7);
    let log = ServerProcess::start(log_dir.path(), ORIGIN, &[bank.verifying_key().to_bytes()]);
    let client = LogClient::new(&log.url, NoteVerifier::from_vkey(&log.vkey).unwrap());
    append(&client, 600).await;
    let notice = abort(
        ORIGIN,
        &bank,
        key(1).verifying_key().to_bytes(),
        fresh_tid(),
        now_ms() - 1,
    );
    client.abort(&notice).await.unwrap();

    let mon_dir = tempfile::tempdir().unwrap();
    let (ok, out) = monitor_once(mon_dir.path(), &log);
    assert!(ok, "{out}");
    assert_eq!(json(&out)["verified_size"], 601);
    assert_eq!(json(&out)["new_entries"], 601);

    append(&client, 300).await;
    let (ok, out) = monitor_once(mon_dir.path(), &log);
    assert!(ok, "{out}");
    assert_eq!(json(&out)["verified_size"], 901);
    assert_eq!(json(&out)["new_entries"], 300);

    // Alter one published entry's bytes in the stopped log's storage.
    let data = log.data.clone();
    log.kill();
    {
        let storage = Arc::new(SledStorage::open(&data.join("db")).unwrap());
        let bundle = storage.bundle(1).unwrap().unwrap();
        let mut entries: Vec<Vec<u8>> = tile::decode_bundle(&bundle)
            .unwrap()
            .iter()
            .map(|e| e.to_vec())
            .collect();
        entries[44][70] ^= 0xff; // inside the goods key of entry 256 + 44
        let refs: Vec<&[u8]> = entries.iter().map(|e| e.as_slice()).collect();
        storage
            .commit(&Batch {
                bundles: vec![(1, tile::encode_bundle(&refs).unwrap())],
                ..Batch::default()
            })
            .unwrap();
    }
    let log = ServerProcess::start(&data, ORIGIN, &[bank.verifying_key().to_bytes()]);
    let fresh = tempfile::tempdir().unwrap();
    let (ok, out) = monitor_once(fresh.path(), &log);
    assert!(!ok, "{out}");
    let v = json(&out);
    assert_eq!(v["violation"], "entry-hash");
    assert!(v["detail"].as_str().unwrap().contains("entry 300"), "{v}");
    let evidence: Value =
        serde_json::from_str(&std::fs::read_to_string(v["evidence"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(evidence["entries"][0][0], 300);
    assert!(
        evidence["checkpoints"][0]
            .as_str()
            .unwrap()
            .starts_with(ORIGIN)
    );
}
