//! The log's per-entry limits on this machine, measured in one run:
//! ed25519 verification of key commits (strict, as the log checks them, and
//! batched), RFC 6962 hashing, sled flushes and group commits through the
//! tree edge, inclusion and consistency proofs over a large sled-backed tree,
//! and durable appends through the sequencer (no HTTP). Each micro-benchmark
//! runs for about a second. Progress goes to stderr; the machine and a
//! Markdown table (measure, figure, unit, notes) for `docs/benchmarks.md` go
//! to stdout.
//!
//! Run: `cargo bench -p acd-log-server --bench log`.
//! `ACD_BENCH_LEAVES` (default 10,000,000) sets the tree size of the proof
//! benchmark, `ACD_BENCH_APPENDS` (default 100,000) the sequencer run; a
//! quick run: `ACD_BENCH_LEAVES=200000 ACD_BENCH_APPENDS=20000 cargo bench -p
//! acd-log-server --bench log`. Temporary databases live under the target
//! directory, on the project's disk. With `ACD_BENCH_DATABASE` (an empty
//! PostgreSQL database's URL) the sequencer run is repeated on PostgreSQL.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_core::entry::{KeyCommit, LogEntry, Tid};
use acd_core::log_api::CommitRequest;
use acd_core::merkle::{self, Hash};
use acd_core::note::NoteSigner;
use acd_core::tile::TILE_WIDTH;
use acd_log_server::clock::SystemClock;
use acd_log_server::sequencer::{self, Append, SequencerConfig};
use acd_log_server::storage::{Batch, SledStorage, Storage, StoredCheckpoint};
use acd_log_server::tree::{Edge, TreeReader};
use ed25519_dalek::SigningKey;

struct Row {
    measure: String,
    figure: f64,
    unit: &'static str,
    notes: String,
}

fn row(rows: &mut Vec<Row>, measure: &str, value: f64, unit: &'static str, notes: &str) {
    eprintln!("  {measure}: {} {unit}", figure(value));
    rows.push(Row {
        measure: measure.into(),
        figure: value,
        unit,
        notes: notes.into(),
    });
}

/// Runs `f` repeatedly for about a second; returns operations per second.
fn rate(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key_commit(merchant: &SigningKey, n: u64) -> (KeyCommit, [u8; 64]) {
    let mut tid = [0u8; 16];
    tid[8..].copy_from_slice(&n.to_be_bytes());
    let kc = KeyCommit {
        log_origin: "bench.test/log".into(),
        tid: Tid(tid),
        merchant: merchant.verifying_key().to_bytes(),
        expiration_ms: u64::MAX / 2,
        key: [7; 32],
    };
    let sig = kc.sign(merchant);
    (kc, sig)
}

fn entry_bytes(n: u64) -> Vec<u8> {
    let mut tid = [0u8; 16];
    tid[8..].copy_from_slice(&n.to_be_bytes());
    LogEntry::Commit {
        timestamp_ms: 1,
        tid: Tid(tid),
        merchant: [1; 32],
        expiration_ms: 2,
        key: [3; 32],
        signature: [4; 64],
    }
    .encode()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn mean(times: &[Duration]) -> Duration {
    times.iter().sum::<Duration>() / times.len() as u32
}

/// `1234567.8` as `1,234,568`; figures below 100 keep one decimal.
fn figure(x: f64) -> String {
    if x < 100.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{x:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("nproc {cores}, {cpu}")
}

fn signatures(rows: &mut Vec<Row>) {
    let merchant = SigningKey::from_bytes(&[1; 32]);
    let (kc, sig) = key_commit(&merchant, 1);
    let vk = merchant.verifying_key();
    row(
        rows,
        "ed25519 sign (key commit)",
        rate(|| {
            black_box(kc.sign(&merchant));
        }),
        "ops/s",
        "one core",
    );
    row(
        rows,
        "ed25519 strict verify (key commit)",
        rate(|| {
            kc.verify(black_box(&sig)).unwrap();
        }),
        "ops/s",
        "one core; KeyCommit::verify: the per-entry signature limit",
    );
    let batch: Vec<(KeyCommit, [u8; 64])> = (0..64).map(|n| key_commit(&merchant, n)).collect();
    let msgs: Vec<Vec<u8>> = batch.iter().map(|(k, _)| k.signed_bytes()).collect();
    let sigs: Vec<ed25519_dalek::Signature> = batch
        .iter()
        .map(|(_, s)| ed25519_dalek::Signature::from_bytes(s))
        .collect();
    let keys = vec![vk; 64];
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(1) {
        let m: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        ed25519_dalek::verify_batch(&m, &sigs, &keys).unwrap();
        n += 64;
    }
    row(
        rows,
        "ed25519 batch verify (64), per signature",
        n as f64 / start.elapsed().as_secs_f64(),
        "ops/s",
        "not used: its cofactored check can accept what strict verification rejects",
    );
}

fn hashing(rows: &mut Vec<Row>) {
    let e = entry_bytes(1);
    let l = merkle::leaf_hash(&e);
    row(
        rows,
        "SHA-256 leaf hash (161-byte entry)",
        rate(|| {
            black_box(merkle::leaf_hash(black_box(&e)));
        }),
        "ops/s",
        "one core",
    );
    row(
        rows,
        "SHA-256 node hash",
        rate(|| {
            black_box(merkle::node_hash(black_box(&l), &l));
        }),
        "ops/s",
        "one core",
    );
    row(
        rows,
        "leaf + path hashing per append",
        rate(|| {
            let h = merkle::leaf_hash(black_box(&e));
            // Amortized, an append completes two internal nodes.
            let a = merkle::node_hash(&h, &l);
            black_box(merkle::node_hash(&a, &h));
        }),
        "entries/s",
        "one core; leaf hash and ~2 node hashes",
    );
}

fn sled_commits(rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let storage = SledStorage::open(dir.path()).unwrap();
    let mut n = 0u64;
    let mut previous = None;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        let checkpoint = StoredCheckpoint {
            size: n,
            note: "x\n".into(),
        };
        storage
            .commit(&Batch {
                checkpoint: Some(checkpoint.clone()),
                previous: previous.replace(checkpoint),
                ..Batch::default()
            })
            .unwrap();
        n += 1;
    }
    row(
        rows,
        "sled flushes (one tiny batch each)",
        n as f64 / start.elapsed().as_secs_f64(),
        "flushes/s",
        "apply_batch + flush (fsync)",
    );

    for batch_size in [256u64, 1024, 4096] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        let mut edge = Edge::load(&storage, 0).unwrap();
        let mut total = 0u64;
        let mut previous = None;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            let mut batch = Batch::default();
            for _ in 0..batch_size {
                let e = entry_bytes(total);
                let leaf = merkle::leaf_hash(&e);
                let mut tid = [0u8; 16];
                tid[8..].copy_from_slice(&total.to_be_bytes());
                edge.append(&e, leaf, &mut batch).unwrap();
                batch.tids.push((Tid(tid), total));
                batch.leaves.push((leaf, total));
                total += 1;
            }
            edge.flush_into(&mut batch);
            let checkpoint = StoredCheckpoint {
                size: total,
                note: "x\n".into(),
            };
            batch.checkpoint = Some(checkpoint.clone());
            batch.previous = previous.replace(checkpoint);
            storage.commit(&batch).unwrap();
        }
        row(
            rows,
            &format!("group commit of {batch_size} entries (tree, bundles, indexes, flush)"),
            total as f64 / start.elapsed().as_secs_f64(),
            "entries/s",
            "one thread, no signatures",
        );
    }
}

/// Builds a tree of `size` synthetic leaves, tiles only, in sled.
fn build_tiles(storage: &SledStorage, size: u64) {
    let mut levels: Vec<Vec<Hash>> = vec![Vec::new()];
    let mut batch = Batch::default();
    let mut index = vec![0u64];
    for i in 0..size {
        let mut h = merkle::leaf_hash(&i.to_be_bytes());
        let mut level = 0;
        loop {
            levels[level].push(h);
            if levels[level].len() < TILE_WIDTH as usize {
                break;
            }
            h = merkle::root_from_leaf_hashes(&levels[level]);
            batch
                .tiles
                .push((level as u8, index[level], levels[level].concat()));
            levels[level].clear();
            index[level] += 1;
            level += 1;
            if levels.len() == level {
                levels.push(Vec::new());
                index.push(0);
            }
        }
        if batch.tiles.len() >= 256 {
            storage.commit(&std::mem::take(&mut batch)).unwrap();
        }
    }
    for (level, hashes) in levels.iter().enumerate() {
        if !hashes.is_empty() {
            batch
                .tiles
                .push((level as u8, index[level], hashes.concat()));
        }
    }
    storage.commit(&batch).unwrap();
}

fn proofs(rows: &mut Vec<Row>) {
    let size = env_or("ACD_BENCH_LEAVES", 10_000_000);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let storage = SledStorage::open(dir.path()).unwrap();
    let start = Instant::now();
    build_tiles(&storage, size);
    let built = start.elapsed();
    row(
        rows,
        &format!("build {} leaves (tiles only) in sled", figure(size as f64)),
        built.as_secs_f64(),
        "s",
        &format!(
            "{} leaves/s: synthetic leaf hashes, tiles hashed up, commits of 256 tiles",
            figure(size as f64 / built.as_secs_f64())
        ),
    );
    let root = TreeReader::new(&storage, size).root().unwrap();

    let mut times = Vec::new();
    for _ in 0..1000 {
        let i = rand::random_range(0..size);
        let t = Instant::now();
        // A fresh reader per proof, as for one request.
        let proof = TreeReader::new(&storage, size).inclusion(i).unwrap();
        times.push(t.elapsed());
        merkle::verify_inclusion(&merkle::leaf_hash(&i.to_be_bytes()), i, size, &proof, &root)
            .unwrap();
    }
    times.sort_unstable();
    row(
        rows,
        &format!("inclusion proof at {} leaves, mean", figure(size as f64)),
        mean(&times).as_secs_f64() * 1e6,
        "µs",
        "fresh TreeReader each, sled-backed, 1000 random leaves",
    );
    row(
        rows,
        &format!("inclusion proof at {} leaves, p99", figure(size as f64)),
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        "µs",
        "",
    );

    let mut times = Vec::new();
    for _ in 0..1000 {
        let a = rand::random_range(1..=size);
        let b = rand::random_range(1..=size);
        let (old, new) = (a.min(b), a.max(b));
        let t = Instant::now();
        // A fresh reader per proof, as for one request.
        let proof = TreeReader::new(&storage, new).consistency(old).unwrap();
        times.push(t.elapsed());
        let mut check = TreeReader::new(&storage, new);
        let (old_root, new_root) = (check.root_at(old).unwrap(), check.root().unwrap());
        merkle::verify_consistency(old, new, &proof, &old_root, &new_root).unwrap();
    }
    times.sort_unstable();
    row(
        rows,
        &format!(
            "consistency proof within {} leaves, mean",
            figure(size as f64)
        ),
        mean(&times).as_secs_f64() * 1e6,
        "µs",
        "fresh TreeReader each, 1000 random pairs of sizes",
    );
    row(
        rows,
        &format!(
            "consistency proof within {} leaves, p99",
            figure(size as f64)
        ),
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        "µs",
        "",
    );
}

fn sequencer_appends(rows: &mut Vec<Row>, storage: Arc<dyn Storage>, store: &str) {
    let n = env_or("ACD_BENCH_APPENDS", 100_000);
    let signer = NoteSigner::new("bench.test/log", SigningKey::from_bytes(&[9; 32])).unwrap();
    let (handle, thread) = sequencer::start(
        storage,
        signer,
        Arc::new(SystemClock),
        SequencerConfig {
            origin: "bench.test/log".into(),
            max_batch: 4096,
            queue: 65536,
            checkpoint_interval: Duration::from_secs(1),
            batch_window: Duration::from_millis(2),
            lease_renew: Duration::from_secs(1),
        },
    )
    .unwrap();
    let merchant = SigningKey::from_bytes(&[1; 32]);
    let requests: Arc<Vec<CommitRequest>> = Arc::new(
        (0..n)
            .map(|i| {
                let (kc, signature) = key_commit(&merchant, i);
                CommitRequest {
                    tid: kc.tid,
                    merchant: kc.merchant,
                    expiration_ms: kc.expiration_ms,
                    key: kc.key,
                    signature,
                }
            })
            .collect(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (elapsed, mut latencies) = rt.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..256 {
            let (handle, requests, next) = (handle.clone(), requests.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(req) = requests.get(i) else { break };
                    let t = Instant::now();
                    handle.append(Append::Commit(req.clone())).await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (start.elapsed(), all)
    });
    // Every handle is gone once the tasks are: the sequencer stops.
    drop(handle);
    drop(rt);
    thread.join().unwrap();
    latencies.sort_unstable();
    row(
        rows,
        &format!("durable appends through the sequencer, 256 concurrent, {store}"),
        n as f64 / elapsed.as_secs_f64(),
        "entries/s",
        &format!(
            "{} appends, SystemClock, {store}; pre-signed, no HTTP, no signature checks",
            figure(n as f64)
        ),
    );
    row(
        rows,
        &format!("sequencer append latency, p50, {store}"),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        "ms",
        "queued to durable and answered with its proof",
    );
    row(
        rows,
        &format!("sequencer append latency, p99, {store}"),
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        "ms",
        "",
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let mut rows = Vec::new();
    eprintln!("machine: {}", machine());
    signatures(&mut rows);
    hashing(&mut rows);
    sled_commits(&mut rows);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    sequencer_appends(
        &mut rows,
        Arc::new(SledStorage::open(dir.path()).unwrap()),
        "sled",
    );
    if let Ok(url) = std::env::var("ACD_BENCH_DATABASE") {
        let storage =
            acd_log_server::storage::PgStorage::connect(&url, Default::default()).unwrap();
        sequencer_appends(&mut rows, Arc::new(storage), "PostgreSQL");
    }
    proofs(&mut rows);
    println!("\nMachine: {}\n", machine());
    println!("| measure | figure | unit | notes |");
    println!("|---|---:|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} |",
            r.measure,
            figure(r.figure),
            r.unit,
            r.notes
        );
    }
}
