//! Throughput of the witness's `add-checkpoint` on this machine, for a
//! realistic stream: each log's tree grows by `ACD_BENCH_GROWTH` entries
//! (default 500) between checkpoints, and every request carries the real
//! RFC 9162 consistency proof from the size the witness holds (about 20
//! hashes at these sizes), a checkpoint signed by the log, and gets a fresh
//! cosignature after the witness verified the signature and the proof and
//! durably stored the new checkpoint (sled flush).
//!
//! Two ways in, both measured:
//! - direct: `Witness::add_checkpoint` called from threads (no HTTP);
//! - HTTP: the witness's axum router served in-process on 127.0.0.1, asked
//!   by a reqwest client in the same process (client and server share the
//!   cores), one sequential stream per log as a log sends them.
//!
//! With several logs the streams run concurrently. All requests are built
//! before the clock starts. Progress goes to stderr; a Markdown table for
//! `docs/benchmarks.md` goes to stdout.
//!
//! Run: `cargo bench -p acd-auditor --bench witness`. `ACD_BENCH_REQUESTS`
//! (default 1000) sets the requests per log.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_auditor::witness::Witness;
use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
use acd_core::cosignature::{CosignatureKind, Cosigner};
use acd_core::merkle::{self, Hash};
use acd_core::note::NoteSigner;
use acd_core::witness::AddCheckpoint;
use ed25519_dalek::SigningKey;

/// Every level of a tree of leaf hashes: `levels[l][i]` is the complete
/// subtree hash at level `l`, index `i`.
struct Levels(Vec<Vec<Hash>>);

impl Levels {
    fn new(leaves: Vec<Hash>) -> Levels {
        let mut levels = vec![leaves];
        while let Some(last) = levels.last().filter(|l| l.len() > 1) {
            let up = last
                .chunks_exact(2)
                .map(|p| merkle::node_hash(&p[0], &p[1]))
                .collect();
            levels.push(up);
        }
        Levels(levels)
    }

    fn subtree(&self, level: u8, index: u64) -> Result<Hash, ()> {
        self.0
            .get(usize::from(level))
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(())
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The request bodies of one log's stream: sizes growth, 2 growth, ...
fn stream(origin: &str, tree: &Levels, requests: u64, growth: u64) -> Vec<String> {
    let signer = NoteSigner::new(origin, SigningKey::from_bytes(&[7; 32])).unwrap();
    let mut old = 0;
    (1..=requests)
        .map(|i| {
            let size = i * growth;
            let checkpoint = Checkpoint {
                origin: origin.into(),
                size,
                root: merkle::tree_root(size, |l, i| tree.subtree(l, i)).unwrap(),
                extensions: vec![],
            };
            let proof = merkle::consistency_proof(old, size, |l, i| tree.subtree(l, i)).unwrap();
            let body = AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: SignedCheckpoint::sign(checkpoint, &signer)
                    .unwrap()
                    .to_text(),
            }
            .to_body();
            old = size;
            body
        })
        .collect()
}

fn witness(dir: &std::path::Path, origins: &[String], kind: CosignatureKind) -> Witness {
    let cosigner = Cosigner::from_seed(kind, "bench.test/witness", &[2; 32]).unwrap();
    let logs = origins
        .iter()
        .map(|o| {
            NoteSigner::new(o, SigningKey::from_bytes(&[7; 32]))
                .unwrap()
                .verifier()
        })
        .collect();
    Witness::open(dir, cosigner, logs).unwrap()
}

struct Run {
    kind: CosignatureKind,
    way: &'static str,
    logs: usize,
    requests: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn direct(tmp: &std::path::Path, streams: &[(String, Vec<String>)], kind: CosignatureKind) -> Run {
    let dir = tempfile::tempdir_in(tmp).unwrap();
    let origins: Vec<String> = streams.iter().map(|s| s.0.clone()).collect();
    let w = Arc::new(witness(dir.path(), &origins, kind));
    let start = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .iter()
            .map(|(_, bodies)| {
                let w = w.clone();
                scope.spawn(move || {
                    bodies
                        .iter()
                        .map(|b| {
                            let t = Instant::now();
                            w.add_checkpoint(b).unwrap();
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    Run {
        kind,
        way: "direct",
        logs: streams.len(),
        requests: latencies.len(),
        wall: start.elapsed(),
        latencies,
    }
}

async fn http(
    tmp: &std::path::Path,
    streams: &[(String, Vec<String>)],
    kind: CosignatureKind,
) -> Run {
    let dir = tempfile::tempdir_in(tmp).unwrap();
    let origins: Vec<String> = streams.iter().map(|s| s.0.clone()).collect();
    let w = Arc::new(witness(dir.path(), &origins, kind));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/add-checkpoint", listener.local_addr().unwrap());
    let server = tokio::spawn(acd_auditor::http::run(
        listener,
        w,
        Vec::new(),
        std::time::Duration::from_secs(10),
        std::future::pending(),
    ));
    let client = acd_serve::http_client();
    let start = Instant::now();
    let tasks: Vec<_> = streams
        .iter()
        .map(|(_, bodies)| {
            let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
            tokio::spawn(async move {
                let mut out = Vec::with_capacity(bodies.len());
                for b in bodies {
                    let t = Instant::now();
                    let resp = client.post(&url).body(b).send().await.unwrap();
                    assert!(resp.status().is_success(), "{}", resp.status());
                    resp.bytes().await.unwrap();
                    out.push(t.elapsed());
                }
                out
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let wall = start.elapsed();
    server.abort();
    Run {
        kind,
        way: "HTTP loopback",
        logs: streams.len(),
        requests: latencies.len(),
        wall,
        latencies,
    }
}

fn main() {
    let requests = env("ACD_BENCH_REQUESTS", 1000);
    let growth = env("ACD_BENCH_GROWTH", 500);
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    eprintln!(
        "building a tree of {} leaves and the requests...",
        requests * growth
    );
    let leaves = (0..requests * growth)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let tree = Levels::new(leaves);
    let one = stream("bench.test/log0", &tree, requests, growth);
    let proof_lines: usize = one.iter().map(|b| b.lines().count() - 7).sum();
    let streams = |n: usize| -> Vec<(String, Vec<String>)> {
        (0..n)
            .map(|i| {
                let origin = format!("bench.test/log{i}");
                let bodies = if i == 0 {
                    one.clone()
                } else {
                    stream(&origin, &tree, requests, growth)
                };
                (origin, bodies)
            })
            .collect()
    };
    let (s1, s4, s16) = (streams(1), streams(4), streams(16));

    // The two key types interleaved, configuration by configuration, so
    // that the machine's noise falls on both alike.
    const KINDS: [CosignatureKind; 2] = [CosignatureKind::Ed25519, CosignatureKind::MlDsa44];
    let mut runs = Vec::new();
    for s in [&s1, &s4, &s16] {
        for kind in KINDS {
            eprintln!("direct, {kind}, {} logs...", s.len());
            runs.push(direct(&tmp, s, kind));
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    for s in [&s1, &s4, &s16] {
        for kind in KINDS {
            eprintln!("HTTP, {kind}, {} logs...", s.len());
            runs.push(rt.block_on(http(&tmp, s, kind)));
        }
    }

    println!(
        "Stream: {requests} checkpoints per log, +{growth} entries each (final size {}), {:.1} proof hashes per request on average.\n",
        requests * growth,
        proof_lines as f64 / one.len() as f64
    );
    println!("| key | way in | logs | requests | wall | requests/s | p50 | p99 |");
    println!("|---|---|---|---|---|---|---|---|");
    for mut r in runs {
        r.latencies.sort();
        println!(
            "| {} | {} | {} | {} | {:.2} s | {:.0} | {:.2} ms | {:.2} ms |",
            r.kind,
            r.way,
            r.logs,
            r.requests,
            r.wall.as_secs_f64(),
            r.requests as f64 / r.wall.as_secs_f64(),
            percentile(&r.latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&r.latencies, 0.99).as_secs_f64() * 1e3,
        );
    }

    // The limits beside: one core cosigning and verifying, nothing else.
    println!("\n| key | cosign / s (1 core) | verify / s (1 core) | line bytes |");
    println!("|---|---|---|---|");
    let body = "bench.test/log0\n500000\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    for kind in KINDS {
        let c = Cosigner::from_seed(kind, "bench.test/witness", &[2; 32]).unwrap();
        let n = 2000u64;
        let t = Instant::now();
        let mut line = None;
        for i in 0..n {
            line = Some(c.cosign(body, 1_700_000_000 + i).unwrap());
        }
        let sign_rate = n as f64 / t.elapsed().as_secs_f64();
        let line = line.unwrap();
        let note = acd_core::note::Note::parse(&format!("{body}\n{}", line.to_line())).unwrap();
        let t = Instant::now();
        for _ in 0..n {
            assert!(c.verifier().verify(&note, &note.signatures[0]).is_some());
        }
        let verify_rate = n as f64 / t.elapsed().as_secs_f64();
        println!(
            "| {kind} | {sign_rate:.0} | {verify_rate:.0} | {} |",
            line.to_line().len()
        );
    }
}
