//! A standby log: two `acd-log` processes with one key on one PostgreSQL
//! database, one witness. The lease holder sequences, the other serves
//! reads and answers appends 503 `not_sequencer`; clients fall back to the
//! other process. SIGKILL of the active one under load: the standby takes
//! over within a few seconds, every acknowledged entry is in the final
//! tree, every checkpoint seen (from either process) is consistent with
//! every other, and the witness cosigns after the takeover. A sequencer
//! paused past its lease (SIGSTOP) and resumed cannot publish a conflicting
//! checkpoint.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acd_core::checkpoint::SignedCheckpoint;
use acd_core::cosignature::{CosignatureVerifier, cosigners};
use acd_core::entry::{LogEntry, Tid};
use acd_core::log_api::{CommitRequest, ConsistencyProof, Entries, EntryProof};
use acd_core::merkle;
use acd_core::note::{Note, NoteVerifier};
use acd_tests::{ServerProcess, commit, fresh_tid, key, now_ms};

const ORIGIN: &str = "standby.test/log";
const WORKERS: usize = 16;

fn signed_commit() -> CommitRequest {
    let mut k = [0u8; 32];
    rand::fill(&mut k);
    commit(ORIGIN, &key(3), fresh_tid(), now_ms() + 600_000, k)
}

/// Everything the clients saw.
#[derive(Default)]
struct Observed {
    /// Each acknowledged commit, the log's answer, which process answered
    /// and when.
    acked: Vec<(CommitRequest, EntryProof, usize, Instant)>,
    /// Checkpoint notes read from either process's `/checkpoint`.
    polled: Vec<String>,
    /// 503 answers that were not `not_sequencer` or `busy`, and other
    /// answers no client should get.
    unexpected: Vec<String>,
    /// Appends answered 503 `not_sequencer`, by process.
    refused: [u64; 2],
}

/// `WORKERS` clients appending to the two processes, each keeping its
/// request until some process acknowledges it (switching process on a 503,
/// a timeout or a refused connection), and one task polling both
/// `/checkpoint`s; all until `stop`.
struct Load {
    observed: Arc<Mutex<Observed>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(urls: [String; 2]) -> Load {
        let observed = Arc::new(Mutex::new(Observed::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let mut tasks = Vec::new();
        for w in 0..WORKERS {
            let (http, observed, stop, urls) =
                (http.clone(), observed.clone(), stop.clone(), urls.clone());
            tasks.push(tokio::spawn(async move {
                let mut at = w % 2;
                let mut req = signed_commit();
                while !stop.load(Ordering::Relaxed) {
                    let answer = http
                        .post(format!("{}/api/v1/commit", urls[at]))
                        .json(&req)
                        .send()
                        .await;
                    let resp = match answer {
                        Ok(r) => r,
                        Err(_) => {
                            at = 1 - at;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    let status = resp.status();
                    let Ok(text) = resp.text().await else {
                        at = 1 - at;
                        continue;
                    };
                    if status.is_success() {
                        let p: EntryProof = serde_json::from_str(&text).unwrap();
                        observed
                            .lock()
                            .unwrap()
                            .acked
                            .push((req, p, at, Instant::now()));
                        req = signed_commit();
                    } else if status == 503 && text.contains("not_sequencer") {
                        observed.lock().unwrap().refused[at] += 1;
                        at = 1 - at;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    } else if status == 503 {
                        // Busy, or a commit that failed as the lease went:
                        // the same request again, at the other process.
                        at = 1 - at;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    } else {
                        observed
                            .lock()
                            .unwrap()
                            .unexpected
                            .push(format!("{status}: {text}"));
                        req = signed_commit();
                    }
                }
            }));
        }
        let (observed_poll, stop_poll) = (observed.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop_poll.load(Ordering::Relaxed) {
                for url in &urls {
                    if let Ok(resp) = http.get(format!("{url}/checkpoint")).send().await
                        && resp.status().is_success()
                        && let Ok(text) = resp.text().await
                    {
                        observed_poll.lock().unwrap().polled.push(text);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
        Load {
            observed,
            stop,
            tasks,
        }
    }

    /// The first acknowledgement by process `by` after `since`, if any.
    fn first_ack(&self, by: usize, since: Instant) -> Option<Instant> {
        self.observed
            .lock()
            .unwrap()
            .acked
            .iter()
            .filter(|a| a.2 == by && a.3 >= since)
            .map(|a| a.3)
            .min()
    }

    async fn finish(self) -> Observed {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("the load stops")
                .unwrap();
        }
        std::mem::take(&mut *self.observed.lock().unwrap())
    }
}

/// Every checkpoint seen, by size; panics if two of one size differ.
#[derive(Default)]
struct Seen(BTreeMap<u64, SignedCheckpoint>);

impl Seen {
    fn add(&mut self, c: SignedCheckpoint) {
        match self.0.get(&c.checkpoint.size) {
            Some(known) => assert_eq!(
                known.checkpoint.root, c.checkpoint.root,
                "two checkpoints of size {} with different roots",
                c.checkpoint.size
            ),
            None => {
                self.0.insert(c.checkpoint.size, c);
            }
        }
    }
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

async fn get_json<T: serde::de::DeserializeOwned>(url: String) -> T {
    let resp = reqwest::get(&url).await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn checkpoint(url: &str) -> String {
    reqwest::get(format!("{url}/checkpoint"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Checks everything observed against the log at `url`, once the load has
/// stopped: every answer verifies, every acknowledged entry is in the
/// final tree at its index with its bytes (inclusion proved), each TID
/// once, and every checkpoint seen is consistent with the final one.
/// Returns the final checkpoint.
async fn check_final(url: &str, o: &Observed, verifier: &NoteVerifier) -> SignedCheckpoint {
    assert!(o.unexpected.is_empty(), "{:?}", o.unexpected);
    let mut seen = Seen::default();
    for (req, p, _, _) in &o.acked {
        let v = acd::log_client::verify_entry_proof(p, verifier).unwrap();
        assert!(records(&p.entry, req), "an answer for another commit");
        seen.add(v.checkpoint);
    }
    for note in &o.polled {
        seen.add(SignedCheckpoint::open(note, verifier).unwrap());
    }
    let latest = SignedCheckpoint::open(&checkpoint(url).await, verifier).unwrap();
    seen.add(latest.clone());
    let size = latest.checkpoint.size;

    let mut entries: Vec<Vec<u8>> = Vec::with_capacity(size as usize);
    while (entries.len() as u64) < size {
        let start = entries.len() as u64;
        let end = (start + 1000).min(size);
        let page: Entries = get_json(format!("{url}/api/v1/entries?start={start}&end={end}")).await;
        assert_eq!(page.entries.len() as u64, end - start);
        entries.extend(page.entries.into_iter().map(|e| e.entry));
    }
    let leaves: Vec<merkle::Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    assert_eq!(
        merkle::root_from_leaf_hashes(&leaves),
        latest.checkpoint.root,
        "the entries do not hash to the final checkpoint"
    );
    let mut tids: HashMap<Tid, u64> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let tid = LogEntry::decode(e).unwrap().tid();
        assert!(tids.insert(tid, i as u64).is_none(), "a TID twice");
    }
    for (req, p, _, _) in &o.acked {
        assert!(p.index < size, "acknowledged entry {} lost", p.index);
        assert_eq!(
            entries[p.index as usize], p.entry,
            "entry {} changed",
            p.index
        );
        assert!(records(&entries[p.index as usize], req));
    }
    // Inclusion under the final checkpoint, proved by the log and checked
    // by an independent implementation, for a sample of the acknowledged.
    for (_, p, _, _) in o.acked.iter().step_by(o.acked.len().div_ceil(50).max(1)) {
        let now: EntryProof = get_json(format!("{url}/api/v1/inclusion?index={}", p.index)).await;
        let proof: Vec<tlog_tiles::Hash> = now.inclusion.iter().map(tlog_hash).collect();
        tlog_tiles::check_record(
            &proof,
            size,
            tlog_hash(&latest.checkpoint.root),
            p.index,
            tlog_tiles::record_hash(&p.entry),
        )
        .unwrap();
    }
    for (&old_size, old) in &seen.0 {
        if old_size == 0 || old_size == size {
            continue;
        }
        assert!(old_size < size, "the log shrank below {old_size}");
        let p: ConsistencyProof = get_json(format!(
            "{url}/api/v1/consistency?from={old_size}&to={size}"
        ))
        .await;
        merkle::verify_consistency(
            old_size,
            size,
            &p.proof,
            &old.checkpoint.root,
            &latest.checkpoint.root,
        )
        .unwrap_or_else(|e| panic!("{old_size} -> {size}: {e}"));
    }
    eprintln!(
        "{} acknowledged ({} by the first process, {} by the second), {} checkpoints seen, final size {size}, not_sequencer answers {:?}",
        o.acked.len(),
        o.acked.iter().filter(|a| a.2 == 0).count(),
        o.acked.iter().filter(|a| a.2 == 1).count(),
        seen.0.len(),
        o.refused
    );
    latest
}

/// Creates the log's key in `dir` (a first start on the database) and
/// returns its vkey. The clean shutdown gives the lease up.
async fn make_key(dir: &std::path::Path, db: &str) -> String {
    let first = ServerProcess::start_log_with(dir, ORIGIN, &["--database", db]);
    let vkey = first.vkey.clone();
    // Serving, so its SIGTERM handler is in place.
    checkpoint(&first.url).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = tokio::task::spawn_blocking(move || first.terminate(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("exits on SIGTERM");
    assert!(status.success());
    vkey
}

fn start(dir: &std::path::Path, db: &str, extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--database", db];
    args.extend_from_slice(extra);
    ServerProcess::start_log_with(dir, ORIGIN, &args)
}

/// Polls `url`'s `/checkpoint` (20 s at most) until `done(size, note)`.
async fn wait_for_checkpoint(url: &str, done: impl Fn(u64, &Note) -> bool) -> Note {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = checkpoint(url).await;
        let note = Note::parse(&text).unwrap();
        let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
        if done(size, &note) {
            return note;
        }
        assert!(
            Instant::now() < deadline,
            "the checkpoint never got there: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// SIGKILL of the active log under 16 appending clients: the standby takes over within a few seconds (measured), every acknowledged entry is in the final tree, every checkpoint either process served is consistent with every other, and the witness cosigns the standby's checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_when_the_active_log_is_killed() {
    let Some(db) =
        acd_testkit::pgdb::scratch_database("standby_takes_over_when_the_active_log_is_killed")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let witness_dir = tempfile::tempdir().unwrap();
    let vkey = make_key(dir.path(), &db).await;
    let verifier = NoteVerifier::from_vkey(&vkey).unwrap();
    let witness = ServerProcess::start_witness(witness_dir.path(), "witness.test/w1", &[&vkey]);
    let wv = CosignatureVerifier::from_vkey(&witness.vkey).unwrap();
    let spec = format!("{}@{}", witness.vkey, witness.url);

    let active = start(dir.path(), &db, &["--witness", &spec]);
    let standby = start(dir.path(), &db, &["--witness", &spec]);
    assert_eq!(active.vkey, standby.vkey);
    let standby_url = standby.url.clone();

    // The standby refuses appends, naming why.
    let refused = reqwest::Client::new()
        .post(format!("{}/api/v1/commit", standby.url))
        .json(&signed_commit())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.text().await.unwrap().contains("not_sequencer"));

    let load = Load::start([active.url.clone(), standby.url.clone()]);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // The standby follows the active log: it serves a recent checkpoint.
    let followed = SignedCheckpoint::open(&checkpoint(&standby_url).await, &verifier).unwrap();
    assert!(
        followed.checkpoint.size > 0,
        "the standby serves the active log's tree"
    );

    let killed = Instant::now();
    active.kill();
    let took_over = loop {
        if let Some(t) = load.first_ack(1, killed) {
            break t;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "the standby did not take over within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let takeover = took_over.duration_since(killed);
    eprintln!(
        "takeover: first append acknowledged by the standby {} ms after SIGKILL of the active log (lease 5000 ms, renewed every 1000 ms)",
        takeover.as_millis()
    );
    assert!(
        takeover < Duration::from_secs(8),
        "takeover took {takeover:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let o = load.finish().await;
    let after_kill = o.acked.iter().filter(|a| a.3 >= killed).count();
    assert!(after_kill > 0);

    let latest = check_final(&standby_url, &o, &verifier).await;
    // The witness cosigns the new sequencer's checkpoints.
    wait_for_checkpoint(&standby_url, |size, note| {
        size == latest.checkpoint.size && cosigners(note, std::slice::from_ref(&wv)).len() == 1
    })
    .await;
    drop(standby);
}

// A sequencer stopped (SIGSTOP) past its lease while clients append, then resumed (SIGCONT), publishes nothing that conflicts: the other process took over, the resumed one becomes a standby (answers not_sequencer, follows the new tree), every checkpoint from either is consistent and every acknowledged entry is in the tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_sequencer_cannot_fork_the_log() {
    let Some(db) = acd_testkit::pgdb::scratch_database("a_paused_sequencer_cannot_fork_the_log")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vkey = make_key(dir.path(), &db).await;
    let verifier = NoteVerifier::from_vkey(&vkey).unwrap();
    let a = start(dir.path(), &db, &["--lease-ms", "1000"]);
    let b = start(dir.path(), &db, &["--lease-ms", "1000"]);
    let signal = |sig: &str, pid: u32| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };

    let load = Load::start([a.url.clone(), b.url.clone()]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let paused = Instant::now();
    signal("-STOP", a.pid());
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let b_took_over = load.first_ack(1, paused);
    signal("-CONT", a.pid());
    assert!(
        b_took_over.is_some(),
        "the other process took over during the pause"
    );
    eprintln!(
        "takeover during the pause: {} ms (lease 1000 ms)",
        b_took_over.unwrap().duration_since(paused).as_millis()
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resumed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let o = load.finish().await;
    // After its resumption the deposed process acknowledged nothing new
    // (an answer to a commit made durable before the pause may arrive
    // late, but only within the first moments).
    let late = o
        .acked
        .iter()
        .filter(|x| x.2 == 0 && x.3 >= resumed)
        .count();
    assert_eq!(late, 0, "the deposed process still sequences");
    let refused = reqwest::Client::new()
        .post(format!("{}/api/v1/commit", a.url))
        .json(&signed_commit())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.text().await.unwrap().contains("not_sequencer"));

    let latest = check_final(&b.url, &o, &verifier).await;
    // The resumed process follows the new sequencer's tree.
    wait_for_checkpoint(&a.url, |size, _| size == latest.checkpoint.size).await;
    let from_a = SignedCheckpoint::open(&checkpoint(&a.url).await, &verifier).unwrap();
    assert_eq!(from_a.checkpoint.root, latest.checkpoint.root);
}
