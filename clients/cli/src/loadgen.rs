//! `acd loadgen log`: appends valid, merchant-signed commits with fresh TIDs
//! as fast as the log takes them, and reports throughput and latency.
//!
//! The commits are signed before the clock starts, so the figures measure
//! the log, not the generator's signing. Every answer is verified: the entry
//! equals the commit sent, its inclusion proof leads to its checkpoint's
//! root, and each distinct checkpoint's signature is verified once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acd_core::checkpoint::SignedCheckpoint;
use acd_core::entry::{KeyCommit, Tid};
use acd_core::log_api::{CommitRequest, EntryProof};
use ed25519_dalek::SigningKey;

use acd_core::entry::LogEntry;

use crate::log_client::{ClientError, LogClient, verify_entry_under};

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub url: String,
    pub entries: usize,
    pub concurrency: usize,
    /// How far in the future the commits expire.
    pub expiry: Duration,
    /// Send the 152-byte binary commits instead of JSON.
    pub binary: bool,
    /// Commits per request: 1 is `POST /api/v1/commit`, more is
    /// `POST /api/v1/commits` (always binary).
    pub batch: usize,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub entries: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub checkpoints: usize,
    pub first_error: Option<String>,
    /// Strict ed25519 verifications per second on one core of this
    /// machine, measured before the load: the log checks one per append.
    pub verify_limit: f64,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "appended    {} entries in {:.2} s",
            self.entries,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "throughput  {:.0} entries/s", self.per_second())?;
        writeln!(
            f,
            "latency     p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3
        )?;
        writeln!(f, "checkpoints {} distinct, all verified", self.checkpoints)?;
        writeln!(
            f,
            "limit       {:.0} strict ed25519 verifications/s on one core (one per append)",
            self.verify_limit
        )?;
        write!(f, "errors      {}", self.errors)?;
        if let Some(e) = &self.first_error {
            write!(f, " (first: {e})")?;
        }
        Ok(())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Strict verifications per second of the key commits in `reqs` on one
/// core (of at most 2000 of them, for about as many milliseconds).
pub fn verify_rate(origin: &str, reqs: &[CommitRequest]) -> f64 {
    let sample = &reqs[..reqs.len().min(2000)];
    let start = Instant::now();
    for r in sample {
        let kc = KeyCommit {
            log_origin: origin.to_owned(),
            tid: r.tid,
            merchant: r.merchant,
            expiration_ms: r.expiration_ms,
            key: r.key,
        };
        let _ = std::hint::black_box(kc.verify(&r.signature));
    }
    sample.len() as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

/// Signs `n` commits with fresh random TIDs for the log `origin`.
pub fn signed_commits(origin: &str, n: usize, expiration_ms: u64) -> Vec<CommitRequest> {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let merchant = SigningKey::from_bytes(&seed);
    let merchant_pub = merchant.verifying_key().to_bytes();
    (0..n)
        .map(|_| {
            let mut tid = [0u8; 16];
            let mut key = [0u8; 32];
            rand::fill(&mut tid);
            rand::fill(&mut key);
            let kc = KeyCommit {
                log_origin: origin.to_owned(),
                tid: Tid(tid),
                merchant: merchant_pub,
                expiration_ms,
                key,
            };
            let signature = kc.sign(&merchant);
            CommitRequest {
                tid: kc.tid,
                merchant: merchant_pub,
                expiration_ms,
                key,
                signature,
            }
        })
        .collect()
}

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the load and verifies every answer.
pub async fn run(spec: &LoadSpec) -> Result<LoadReport, ClientError> {
    let verifier = LogClient::fetch_vkey(&spec.url).await?;
    let origin = verifier.name().to_owned();
    let http = acd_client::http_client_builder(acd_client::REQUEST_TIMEOUT)
        .pool_max_idle_per_host(spec.concurrency)
        .build()?;
    let client = Arc::new(LogClient::with_http(http, &spec.url, verifier.clone()));
    let expiration = now_ms() + spec.expiry.as_millis() as u64;
    let requests = Arc::new(signed_commits(&origin, spec.entries, expiration));
    let verify_limit = verify_rate(&origin, &requests);
    let next = Arc::new(AtomicUsize::new(0));
    // Each distinct checkpoint's signature is verified once.
    let checkpoints: Arc<std::sync::Mutex<HashMap<String, Arc<SignedCheckpoint>>>> = Arc::default();

    let progress = crate::progress::Progress::start("appends", spec.entries as u64);
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..spec.concurrency.max(1) {
        let (client, requests, next, checkpoints, verifier, done) = (
            client.clone(),
            requests.clone(),
            next.clone(),
            checkpoints.clone(),
            verifier.clone(),
            progress.counter(),
        );
        let (spec_batch, binary) = (spec.batch.max(1), spec.binary);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            let batch = spec_batch;
            loop {
                let i = next.fetch_add(batch, Ordering::Relaxed);
                if i >= requests.len() {
                    break;
                }
                let reqs = &requests[i..(i + batch).min(requests.len())];
                let t = Instant::now();
                let answers: Vec<Result<EntryProof, ClientError>> = if batch == 1 {
                    let answer = if binary {
                        client.commit_binary_unverified(&reqs[0]).await
                    } else {
                        client.commit_unverified(&reqs[0]).await
                    };
                    vec![answer]
                } else {
                    match client.commit_batch_unverified(reqs).await {
                        Ok(results) => results
                            .into_iter()
                            .map(|r| {
                                r.map_err(|e| {
                                    ClientError::Invalid(format!("{}: {}", e.error, e.message))
                                })
                            })
                            .collect(),
                        Err(e) => {
                            let message = e.to_string();
                            reqs.iter()
                                .map(|_| Err(ClientError::Invalid(message.clone())))
                                .collect()
                        }
                    }
                };
                latencies.push(t.elapsed());
                for (req, answer) in reqs.iter().zip(answers) {
                    let checked = answer.and_then(|p| {
                        let known = lock(&checkpoints).get(&p.checkpoint).cloned();
                        let cp = match known {
                            Some(cp) => cp,
                            None => {
                                let cp = Arc::new(
                                    SignedCheckpoint::open(&p.checkpoint, &verifier).map_err(
                                        |e| ClientError::Invalid(format!("checkpoint: {e}")),
                                    )?,
                                );
                                lock(&checkpoints).insert(p.checkpoint.clone(), cp.clone());
                                cp
                            }
                        };
                        // The entry must be exactly the commit this generator signed.
                        match verify_entry_under(&p, &cp)? {
                            LogEntry::Commit {
                                tid,
                                merchant,
                                expiration_ms,
                                key,
                                signature,
                                ..
                            } if tid == req.tid
                                && merchant == req.merchant
                                && expiration_ms == req.expiration_ms
                                && key == req.key
                                && signature == req.signature => {}
                            _ => {
                                return Err(ClientError::Invalid(
                                    "answer for another commit".into(),
                                ));
                            }
                        }
                        Ok(())
                    });
                    if let Err(e) = checked {
                        errors.push(e.to_string());
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(spec.entries);
    let mut errors = Vec::new();
    for w in workers {
        let (l, e) = w
            .await
            .map_err(|e| ClientError::Invalid(format!("worker failed: {e}")))?;
        latencies.extend(l);
        errors.extend(e);
    }
    let elapsed = start.elapsed();
    progress.finish();
    latencies.sort_unstable();
    let checkpoints = lock(&checkpoints).len();
    Ok(LoadReport {
        entries: spec.entries - errors.len(),
        errors: errors.len(),
        elapsed,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        checkpoints,
        first_error: errors.into_iter().next(),
        verify_limit,
    })
}
