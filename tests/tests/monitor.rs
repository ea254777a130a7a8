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
    let (ok, out) = monitor_once(mon_dir.path(), &log.vkey, &log.url);
    assert!(ok, "{out}");
    assert_eq!(json(&out)["verified_size"], 601);
    assert_eq!(json(&out)["new_entries"], 601);

    append(&client, 300).await;
    let (ok, out) = monitor_once(mon_dir.path(), &log.vkey, &log.url);
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
        // A batch names the checkpoint it extends (the store refuses any
        // other): the latest, which this rewrite leaves as it is.
        storage
            .commit(&Batch {
                bundles: vec![(1, tile::encode_bundle(&refs).unwrap())],
                previous: storage.latest_checkpoint().unwrap(),
                ..Batch::default()
            })
            .unwrap();
    }
    let log = ServerProcess::start(&data, ORIGIN, &[bank.verifying_key().to_bytes()]);
    let fresh = tempfile::tempdir().unwrap();
    let (ok, out) = monitor_once(fresh.path(), &log.vkey, &log.url);
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

/// Starts a log that breaks a rule on purpose, in this process, on loopback.
async fn faulty_log(
    dir: &std::path::Path,
    faults: acd_log_server::sequencer::Faults,
) -> (String, String) {
    use acd_log_server::clock::SystemClock;
    use acd_log_server::config::LogConfig;
    let config = LogConfig::new(dir.to_owned(), ORIGIN.into());
    let signer = acd_log_server::keys::load_or_create(dir, ORIGIN).unwrap();
    let vkey = signer.verifier().vkey();
    let storage = Arc::new(SledStorage::open(&dir.join("db")).unwrap());
    let log =
        acd_log_server::Log::with_faults(&config, storage, signer, Arc::new(SystemClock), faults)
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(log.run(listener, config.max_body_bytes, std::future::pending()));
    (vkey, url)
}

// A log that accepts a commit after its expiration is reported with that exact entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_reports_a_late_commit() {
    let dir = tempfile::tempdir().unwrap();
    let faults = acd_log_server::sequencer::Faults {
        ignore_expiration: true,
        ..Default::default()
    };
    let (vkey, url) = faulty_log(dir.path(), faults).await;
    let client = LogClient::new(&url, NoteVerifier::from_vkey(&vkey).unwrap());
    append(&client, 10).await;
    let late = commit(ORIGIN, &key(1), fresh_tid(), now_ms() - 1000, [1; 32]);
    let entry = client.commit(&late).await.unwrap();
    append(&client, 3).await;
    let mon = tempfile::tempdir().unwrap();
    let (ok, out) = tokio::task::spawn_blocking({
        let (vkey, url) = (vkey.clone(), url.clone());
        let path = mon.path().to_owned();
        move || monitor_once(&path, &vkey, &url)
    })
    .await
    .unwrap();
    assert!(!ok, "{out}");
    let v = json(&out);
    assert_eq!(v["violation"], "untimely");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("entry {}", entry.proof.index)),
        "{v}"
    );
}

// A log that records a second outcome for a TID is reported at the second entry, naming the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_reports_a_second_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let faults = acd_log_server::sequencer::Faults {
        allow_second_outcome: true,
        ..Default::default()
    };
    let (vkey, url) = faulty_log(dir.path(), faults).await;
    let client = LogClient::new(&url, NoteVerifier::from_vkey(&vkey).unwrap());
    append(&client, 5).await;
    let tid = fresh_tid();
    let exp = now_ms() + 600_000;
    let first = client
        .commit(&commit(ORIGIN, &key(1), tid, exp, [1; 32]))
        .await
        .unwrap();
    append(&client, 5).await;
    let second = client
        .commit(&commit(ORIGIN, &key(1), tid, exp, [2; 32]))
        .await
        .unwrap();
    assert_ne!(first.proof.index, second.proof.index);
    let mon = tempfile::tempdir().unwrap();
    let (ok, out) = tokio::task::spawn_blocking({
        let (vkey, url) = (vkey.clone(), url.clone());
        let path = mon.path().to_owned();
        move || monitor_once(&path, &vkey, &url)
    })
    .await
    .unwrap();
    assert!(!ok, "{out}");
    let v = json(&out);
    assert_eq!(v["violation"], "second-outcome");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("entry {}", second.proof.index)),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("at entry {}", first.proof.index)),
        "{detail}"
    );
}
