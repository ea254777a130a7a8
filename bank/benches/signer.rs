//! The bank's blind signature against the machine's limit, A/B in one run:
//! the RFC 9474 blind signature on `blind-rsa-signatures` (the signer the
//! bank used before) and on OpenSSL (the bank's signer now), and OpenSSL's
//! own RSA-2048 PKCS#1 v1.5 signature (what `openssl speed rsa2048`
//! measures: the machine's RSA sign rate), each on one core and on every
//! core at once. The rounds interleave the three so that a noisy machine
//! slows all of them alike.
//!
//! Run: `cargo bench -p acd-bank --bench signer`. `ACD_BENCH_ROUNDS`
//! (default 5) rounds of `ACD_BENCH_MS` (default 1000) ms per measure.
//! Progress goes to stderr, a Markdown table to stdout.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use acd_bank::signer::BlindSigner;
use acd_core::token::{self, BlindedToken, Denomination};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Operations per second of `op` for `window`, on `threads` threads at once.
fn rate(threads: usize, window: Duration, op: &(dyn Fn() + Sync)) -> f64 {
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while start.elapsed() < window {
                        op();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

type Measure<'a> = (&'static str, &'a (dyn Fn() + Sync));

fn main() {
    let rounds = env("ACD_BENCH_ROUNDS", 5) as usize;
    let window = Duration::from_millis(env("ACD_BENCH_MS", 1000));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let pair = token::generate_key(&mut rand::rng(), 2048).unwrap();
    let der = pair.sk.to_der().unwrap();
    let openssl_signer = BlindSigner::from_pkcs8_der(&der).unwrap();
    let d = Denomination::new(10, pair.pk.clone()).unwrap();
    let blinded = BlindedToken::new(&mut rand::rng(), &d).unwrap().blinded;
    assert_eq!(
        openssl_signer.blind_sign(&blinded).unwrap(),
        token::blind_sign(&pair.sk, &blinded).unwrap()
    );
    let pkey = PKey::private_key_from_pkcs8(&der).unwrap();
    let message = [7u8; 64];

    let before = || {
        token::blind_sign(&pair.sk, &blinded).unwrap();
    };
    let after = || {
        openssl_signer.blind_sign(&blinded).unwrap();
    };
    let limit = || {
        let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &pkey).unwrap();
        s.update(&message).unwrap();
        s.sign_to_vec().unwrap();
    };
    let measures: [Measure<'_>; 3] = [
        ("blind sign, blind-rsa-signatures (before)", &before),
        ("blind sign, OpenSSL, checked (after)", &after),
        ("RSA-2048 sign, OpenSSL PKCS#1 v1.5 (limit)", &limit),
    ];
    let mut figures = vec![[Vec::new(), Vec::new()]; measures.len()];
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for (i, (_, op)) in measures.iter().enumerate() {
            figures[i][0].push(rate(1, window, *op));
            figures[i][1].push(rate(cores, window, *op));
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "RSA-2048, {rounds} interleaved rounds of {} ms, median; {cores} cores; load average at the end: {}",
        window.as_millis(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!();
    println!("| measure | one core, ops/s | {cores} cores, ops/s | one core, µs/op |");
    println!("|---|---:|---:|---:|");
    for (i, (name, _)) in measures.iter().enumerate() {
        let one = median(&mut figures[i][0]);
        let all = median(&mut figures[i][1]);
        println!("| {name} | {one:.0} | {all:.0} | {:.0} |", 1e6 / one);
    }
}
