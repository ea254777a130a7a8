//! Durability: `acd-log` killed with SIGKILL in the middle of a load keeps
//! every acknowledged entry at its index, byte for byte, and after each
//! restart publishes only checkpoints consistent with every one published
//! before; SIGTERM is a clean shutdown, also under load.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd::log_client::{ClientError, LogClient, verify_entry_proof};
use acd_core::checkpoint::SignedCheckpoint;
use acd_core::entry::{LogEntry, Tid};
use acd_core::log_api::{CommitRequest, ConsistencyProof, Entries, EntryProof};
use acd_core::merkle;
use acd_core::note::NoteVerifier;
use acd_tests::{LogProcess, commit, fresh_tid, key, now_ms};

const ORIGIN: &str = "crash.test/log";
const WORKERS: usize = 64;

fn client(log: &LogProcess) -> LogClient {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    LogClient::with_http(http, &log.url, NoteVerifier::from_vkey(&log.vkey).unwrap())
}

fn signed_commit() -> CommitRequest {
    let mut k = [0u8; 32];
    rand::fill(&mut k);
    commit(ORIGIN, &key(3), fresh_tid(), now_ms() + 600_000, k)
}

/// Everything the clients saw of one run of the log.
#[derive(Default)]
struct Observed {
    /// Each acknowledged commit with the log's answer.
    acked: Vec<(CommitRequest, EntryProof)>,
    /// Commits sent whose answer never came: either outcome is allowed.
    unanswered: Vec<CommitRequest>,
    /// Checkpoint notes read from `/checkpoint` while the load ran.
    polled: Vec<String>,
    /// Answers no client should ever get.
    unexpected: Vec<String>,
}

/// A load of `WORKERS` tasks appending continuously, and one task polling
/// `/checkpoint`, all until the log stops answering.
struct Load {
    observed: Arc<Mutex<Observed>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(log: &LogProcess) -> Load {
        let observed = Arc::new(Mutex::new(Observed::default()));
        let client = client(log);
        let mut tasks = Vec::new();
        for _ in 0..WORKERS {
            let (client, observed) = (client.clone(), observed.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let req = signed_commit();
                    let answer = client.commit_unverified(&req).await;
                    let mut o = observed.lock().unwrap();
                    match answer {
                        Ok(p) => o.acked.push((req, p)),
                        Err(ClientError::Http(_)) => {
                            o.unanswered.push(req);
                            break;
                        }
                        Err(e) => {
                            o.unexpected.push(e.to_string());
                            o.unanswered.push(req);
                            break;
                        }
                    }
                }
            }));
        }
        let (url, observed_poll) = (log.url.clone(), observed.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let Ok(resp) = http.get(format!("{url}/checkpoint")).send().await else {
                    break;
                };
                let Ok(text) = resp.text().await else { break };
                observed_poll.lock().unwrap().polled.push(text);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
        Load { observed, tasks }
    }

    /// Waits until every task saw the log go away.
    async fn finish(self) -> Observed {
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("the load stops once the log is gone")
                .unwrap();
        }
        std::mem::take(&mut *self.observed.lock().unwrap())
    }
}

/// Every checkpoint seen, by size; panics if two of one size differ.
#[derive(Default)]
struct Seen(BTreeMap<u64, SignedCheckpoint>);

impl Seen {
    fn add(&mut self, c: SignedCheckpoint, what: &str) {
        match self.0.get(&c.checkpoint.size) {
            Some(known) => assert_eq!(
                known.checkpoint.root, c.checkpoint.root,
                "{what}: two checkpoints of size {} with different roots",
                c.checkpoint.size
            ),
            None => {
                self.0.insert(c.checkpoint.size, c);
            }
        }
    }
}

/// The whole published tree, by `/api/v1/entries`.
async fn all_entries(url: &str, size: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(size as usize);
    let http = reqwest::Client::new();
    while (out.len() as u64) < size {
        let start = out.len() as u64;
        let end = (start + 1000).min(size);
        let page: Entries = http
            .get(format!("{url}/api/v1/entries?start={start}&end={end}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page.entries.len() as u64, end - start);
        for e in page.entries {
            assert_eq!(e.index, out.len() as u64);
            out.push(e.entry);
        }
    }
    out
}

/// Is `entry` the log's record of exactly this commit?
fn records(entry: &[u8], req: &CommitRequest) -> bool {
    matches!(
        LogEntry::decode(entry),
        Ok(LogEntry::Commit { tid, merchant, expiration_ms, key, signature, .. })
            if tid == req.tid
                && merchant == req.merchant
                && expiration_ms == req.expiration_ms
                && key == req.key
                && signature == req.signature
    )
}

fn tlog_hash(h: &merkle::Hash) -> tlog_tiles::Hash {
    tlog_tiles::Hash(*h)
}

/// Checks the restarted `log` against everything observed before: every
/// acknowledged entry at its index with its bytes, every answered-or-not
/// request either absent or exactly recorded, every seen checkpoint
/// consistent with the new one and stored with the same note. Returns the
/// new checkpoint.
async fn check_restarted(
    log: &LogProcess,
    acked: &[(CommitRequest, EntryProof)],
    unanswered: &[CommitRequest],
    seen: &mut Seen,
    round: &str,
) -> SignedCheckpoint {
    let verifier = NoteVerifier::from_vkey(&log.vkey).unwrap();
    let c = client(log);
    let latest = c.checkpoint().await.unwrap();
    let size = latest.checkpoint.size;
    seen.add(latest.clone(), round);

    // The whole tree: the root from the entries is the checkpoint's, each
    // TID appears once, and every acknowledged entry is where it was.
    let entries = all_entries(&log.url, size).await;
    let leaves: Vec<merkle::Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    assert_eq!(
        merkle::root_from_leaf_hashes(&leaves),
        latest.checkpoint.root,
        "{round}: stored entries do not hash to the checkpoint"
    );
    let mut tids: HashMap<Tid, u64> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let tid = LogEntry::decode(e).unwrap().tid();
        assert!(tids.insert(tid, i as u64).is_none(), "{round}: TID twice");
    }
    for (req, p) in acked {
        assert!(
            p.index < size,
            "{round}: acknowledged entry {} lost (size {size})",
            p.index
        );
        assert_eq!(
            entries[p.index as usize], p.entry,
            "{round}: entry {} changed",
            p.index
        );
        assert!(records(&p.entry, req), "{round}: entry {}", p.index);
    }
    for req in unanswered {
        if let Some(&i) = tids.get(&req.tid) {
            assert!(
                records(&entries[i as usize], req),
                "{round}: entry {i} is not the commit sent"
            );
        }
    }

    // Every checkpoint seen before is consistent with the new one, by both
    // implementations, and the log still holds it with the same note.
    let http = reqwest::Client::new();
    for (&old_size, old) in &seen.0 {
        if old_size == 0 || old_size == size {
            continue;
        }
        assert!(old_size < size, "{round}: the log shrank below {old_size}");
        let p: ConsistencyProof = http
            .get(format!(
                "{}/api/v1/consistency?from={old_size}&to={size}",
                log.url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        merkle::verify_consistency(
            old_size,
            size,
            &p.proof,
            &old.checkpoint.root,
            &latest.checkpoint.root,
        )
        .unwrap_or_else(|e| panic!("{round}: {old_size} -> {size}: {e}"));
        let proof: Vec<tlog_tiles::Hash> = p.proof.iter().map(tlog_hash).collect();
        tlog_tiles::check_tree(
            &proof,
            size,
            tlog_hash(&latest.checkpoint.root),
            old_size,
            tlog_hash(&old.checkpoint.root),
        )
        .unwrap_or_else(|e| panic!("{round}: {old_size} -> {size}: {e}"));
        let stored: EntryProof = http
            .get(format!(
                "{}/api/v1/inclusion?index=0&size={old_size}",
                log.url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            stored.checkpoint,
            old.to_text(),
            "{round}: the checkpoint of size {old_size} changed"
        );
    }

    // By TID: the restarted log proves each sampled entry under its new
    // checkpoint, and a repeat of the commit is answered with the same index.
    for (req, p) in acked.iter().step_by(acked.len().div_ceil(40).max(1)) {
        let now = c.transaction(&req.tid).await.unwrap().unwrap();
        assert_eq!(now.proof.index, p.index);
        assert_eq!(now.proof.entry, p.entry);
        let proof: Vec<tlog_tiles::Hash> = now.proof.inclusion.iter().map(tlog_hash).collect();
        tlog_tiles::check_record(
            &proof,
            now.checkpoint.checkpoint.size,
            tlog_hash(&now.checkpoint.checkpoint.root),
            p.index,
            tlog_tiles::record_hash(&p.entry),
        )
        .unwrap();
        let again = c.commit(req).await.unwrap();
        assert_eq!(again.proof.index, p.index, "{round}: repeat moved");
        assert_eq!(again.proof.entry, p.entry);
        seen.add(
            verify_entry_proof(&again.proof, &verifier)
                .unwrap()
                .checkpoint,
            round,
        );
    }
    latest
}

/// Verifies what the clients observed before the log went down, and adds
/// every checkpoint they saw to `seen`.
fn check_observed(o: &Observed, verifier: &NoteVerifier, seen: &mut Seen, round: &str) {
    assert!(o.unexpected.is_empty(), "{round}: {:?}", o.unexpected);
    assert!(!o.acked.is_empty(), "{round}: nothing was acknowledged");
    for (req, p) in &o.acked {
        let v = verify_entry_proof(p, verifier).unwrap();
        assert!(records(&p.entry, req), "{round}: answer for another commit");
        seen.add(v.checkpoint, round);
    }
    for note in &o.polled {
        seen.add(SignedCheckpoint::open(note, verifier).unwrap(), round);
    }
}

// Three times in a row: SIGKILL under 64 concurrent appenders, restart on the same data; every acknowledged entry survives at its index with its bytes, every checkpoint seen before is consistent with (and stored identically by) the restarted log, none of one size differ, and appends continue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let verifier = NoteVerifier::from_vkey(&log.vkey).unwrap();
    let mut acked: Vec<(CommitRequest, EntryProof)> = Vec::new();
    let mut unanswered: Vec<CommitRequest> = Vec::new();
    let mut seen = Seen::default();

    for round in 1..=3 {
        let round = format!("round {round}");
        let load = Load::start(&log);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        log.kill();
        let o = load.finish().await;
        check_observed(&o, &verifier, &mut seen, &round);
        eprintln!(
            "{round}: {} acknowledged, {} unanswered, {} checkpoints seen",
            o.acked.len(),
            o.unanswered.len(),
            seen.0.len()
        );
        acked.extend(o.acked);
        unanswered.extend(o.unanswered);

        log = LogProcess::start(dir.path(), ORIGIN, &[]);
        assert_eq!(log.vkey, verifier.vkey(), "the key survives a restart");
        let latest = check_restarted(&log, &acked, &unanswered, &mut seen, &round).await;

        // The log takes new appends, right after the old end.
        let after = client(&log).commit(&signed_commit()).await.unwrap();
        assert_eq!(after.proof.index, latest.checkpoint.size);
        seen.add(after.checkpoint, &round);
    }
}

// SIGTERM on an idle log exits with status 0 within a few seconds, and the restarted log serves the very same checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let c = client(&log);
    for _ in 0..20 {
        c.commit(&signed_commit()).await.unwrap();
    }
    let before = c.checkpoint().await.unwrap();
    assert_eq!(before.checkpoint.size, 20);
    let status = log
        .terminate(Duration::from_secs(5))
        .expect("exits within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    let log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let after = client(&log).checkpoint().await.unwrap();
    assert_eq!(after.to_text(), before.to_text());
}

// SIGTERM under 64 concurrent appenders still exits with status 0 within a few seconds, and the restarted log has every acknowledged entry and extends every checkpoint seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_is_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let verifier = NoteVerifier::from_vkey(&log.vkey).unwrap();
    let load = Load::start(&log);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let status = tokio::task::spawn_blocking(move || log.terminate(Duration::from_secs(5)))
        .await
        .unwrap()
        .expect("exits within 5 s of SIGTERM, under load");
    assert!(status.success(), "{status:?}");
    let o = load.finish().await;
    let mut seen = Seen::default();
    check_observed(&o, &verifier, &mut seen, "sigterm");

    let log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let latest = check_restarted(&log, &o.acked, &o.unanswered, &mut seen, "sigterm").await;
    let acked_max = o.acked.iter().map(|(_, p)| p.index).max().unwrap();
    assert!(latest.checkpoint.size > acked_max);
}
