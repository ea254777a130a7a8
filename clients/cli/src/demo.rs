//! `acd demo`: runs a transaction log in this process, on embedded storage,
//! and walks through the log's part of a purchase, printing what each party
//! sends and what the receiver verifies.
//!
//! What the demo shows today: the merchant's key commit (P4/P5), the
//! customer's query by TID (Q1/Q2) with its proof, idempotent repeats, the
//! one-outcome-per-TID rule, an abort after expiration with the bank's
//! escrow notice, a late commit refused, and consistency between
//! checkpoints. The bank's tokens, escrow and payment are not built yet;
//! the demo's bank only signs the escrow notice the log needs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acd_core::entry::{EscrowNotice, KeyCommit, LogEntry, Tid};
use acd_core::log_api::{AbortRequest, CommitRequest};
use acd_log_server::Log;
use acd_log_server::clock::SystemClock;
use acd_log_server::config::LogConfig;
use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;

use crate::log_client::{ClientError, LogClient, VerifiedEntry};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn fresh_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    SigningKey::from_bytes(&seed)
}

fn fresh_tid() -> Tid {
    let mut t = [0u8; 16];
    rand::fill(&mut t);
    Tid(t)
}

fn step(n: u32, title: &str) {
    println!("\n== {n}. {title}");
}

fn show(v: &VerifiedEntry) {
    println!(
        "   verified: entry #{} ({}, TID {}) is in the tree of {} entries; checkpoint signed by the log; root {}",
        v.proof.index,
        v.proof.outcome,
        v.proof.tid,
        v.proof.tree_size,
        hex::encode(&v.checkpoint.checkpoint.root[..8])
    );
}

fn commit_request(origin: &str, m: &SigningKey, tid: Tid, exp: u64, k: [u8; 32]) -> CommitRequest {
    let kc = KeyCommit {
        log_origin: origin.to_owned(),
        tid,
        merchant: m.verifying_key().to_bytes(),
        expiration_ms: exp,
        key: k,
    };
    CommitRequest {
        tid,
        merchant: kc.merchant,
        expiration_ms: exp,
        key: k,
        signature: kc.sign(m),
    }
}

fn expect_refusal<T>(r: Result<T, ClientError>, code: &str) -> anyhow::Result<()> {
    match r {
        Err(ClientError::Refused { status, body }) if body.error == code => {
            println!(
                "   refused as it must be: {status} {} ({})",
                body.error, body.message
            );
            Ok(())
        }
        Err(e) => bail!("expected refusal {code}, got: {e}"),
        Ok(_) => bail!("expected refusal {code}, but the log accepted"),
    }
}

/// Runs the demo; `data` keeps the log's files, otherwise a temp dir is used.
pub async fn run(data: Option<PathBuf>) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let data = data.unwrap_or_else(|| temp.path().join("log"));
    let origin = "demo.acd.example/log";
    let bank = fresh_key();
    let merchant = fresh_key();

    step(
        1,
        "Start the transaction log (sled storage, HTTP on loopback)",
    );
    let mut config = LogConfig::new(data.clone(), origin.into());
    config.trusted_banks = vec![hex::encode(bank.verifying_key().to_bytes())];
    let log = Log::open(&config, Arc::new(SystemClock))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(log.run(listener, config.max_body_bytes, async {
        let _ = stopped.await;
    }));
    let vkey = LogClient::fetch_vkey(&url).await?;
    println!("   log {origin} at {url}, data in {}", data.display());
    println!("   log verifier key: {}", vkey.vkey());
    let client = LogClient::new(&url, vkey);
    let first = client.checkpoint().await?;
    println!("   checkpoint: size {}", first.checkpoint.size);

    step(
        2,
        "P4/P5: the merchant commits the goods key k for a purchase",
    );
    let tid = fresh_tid();
    let k: [u8; 32] = {
        let mut k = [0u8; 32];
        rand::fill(&mut k);
        k
    };
    let exp = now_ms() + 60_000;
    let req = commit_request(origin, &merchant, tid, exp, k);
    println!(
        "   sent: key commit signed by merchant {}…: TID {tid}, expires in 60 s, k {}…",
        hex::encode(&req.merchant[..6]),
        hex::encode(&k[..6])
    );
    let committed = client.commit(&req).await?;
    show(&committed);

    step(
        3,
        "Q1/Q2: the customer asks the log for the outcome of the TID",
    );
    let found = client
        .transaction(&tid)
        .await?
        .context("the log has no outcome for the TID")?;
    show(&found);
    match found.entry {
        LogEntry::Commit { key, .. } if key == k => {
            println!("   the logged key equals k: the customer can now decrypt the goods")
        }
        _ => bail!("the log's entry does not carry k"),
    }

    step(4, "The merchant's retry of the same commit is idempotent");
    let again = client.commit(&req).await?;
    println!(
        "   same entry #{} (no second outcome was written)",
        again.proof.index
    );
    if again.proof.index != committed.proof.index {
        bail!("a repeat created a new entry");
    }

    step(
        5,
        "A different key for the same TID is refused: one outcome per TID",
    );
    let other = commit_request(origin, &merchant, tid, exp, [0; 32]);
    expect_refusal(client.commit(&other).await, "conflict")?;

    step(
        6,
        "Abort: the merchant never commits; the bank's escrow notice aborts after expiration",
    );
    let tid2 = fresh_tid();
    let exp2 = now_ms() + 1500;
    let notice = EscrowNotice {
        log_origin: origin.into(),
        tid: tid2,
        merchant: merchant.verifying_key().to_bytes(),
        expiration_ms: exp2,
    };
    let abort = AbortRequest {
        tid: tid2,
        merchant: notice.merchant,
        expiration_ms: exp2,
        bank: bank.verifying_key().to_bytes(),
        signature: notice.sign(&bank),
    };
    println!("   sent: escrow notice signed by the bank for TID {tid2}, before its expiration");
    expect_refusal(client.abort(&abort).await, "not_expired")?;
    tokio::time::sleep(Duration::from_millis(exp2.saturating_sub(now_ms()) + 50)).await;
    println!("   sent again after the expiration");
    let aborted = client.abort(&abort).await?;
    show(&aborted);
    println!("   the customer can now show this abort entry to the bank for a refund");

    step(
        7,
        "The merchant's late commit for the aborted TID is refused",
    );
    let late = commit_request(origin, &merchant, tid2, exp2, k);
    expect_refusal(client.commit(&late).await, "conflict")?;
    let tid3 = fresh_tid();
    let expired = commit_request(origin, &merchant, tid3, now_ms() - 1, k);
    expect_refusal(client.commit(&expired).await, "expired")?;

    step(
        8,
        "Append-only: the latest checkpoint extends the first one",
    );
    let last = client.checkpoint().await?;
    client
        .check_consistency(&committed.checkpoint, &last)
        .await?;
    println!(
        "   verified: consistency proof from size {} to size {}",
        committed.checkpoint.checkpoint.size, last.checkpoint.size
    );
    println!("   latest checkpoint as served at {url}/checkpoint:");
    for line in last.to_text().lines() {
        println!("   | {line}");
    }

    let _ = stop.send(());
    server.await??;
    println!("\nDemo complete: every answer above was verified against the log's key.");
    Ok(())
}
