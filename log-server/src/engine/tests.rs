//! The engine's steps called directly, without HTTP: each check refuses
//! with its own code and kind, and an accepted step answers with the
//! entry's proof.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use acd_core::entry::{EscrowNotice, KeyCommit, Outcome, Tid};
use acd_core::error::ErrorKind;
use acd_core::log_api::{AbortRequest, CommitRequest};
use acd_core::note::NoteSigner;
use ed25519_dalek::SigningKey;

use super::query::{ConsistencyQuery, EntriesQuery, InclusionQuery};
use crate::Log;
use crate::clock::ManualClock;
use crate::config::LogConfig;
use crate::storage::MemoryStorage;

const ORIGIN: &str = "log.test/engine";

fn log(clock: Arc<ManualClock>, bank: &SigningKey) -> Log {
    let mut config = LogConfig::new("/nonexistent".into(), ORIGIN.into());
    config.trusted_banks = vec![hex::encode(bank.verifying_key().to_bytes())];
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[4; 32])).unwrap();
    Log::with_storage(&config, Arc::new(MemoryStorage::new()), signer, clock).unwrap()
}

fn commit(merchant: &SigningKey, tid: u8, expiration_ms: u64) -> CommitRequest {
    let kc = KeyCommit {
        log_origin: ORIGIN.into(),
        tid: Tid([tid; 16]),
        merchant: merchant.verifying_key().to_bytes(),
        expiration_ms,
        key: [9; 32],
    };
    CommitRequest {
        tid: kc.tid,
        merchant: kc.merchant,
        expiration_ms,
        key: kc.key,
        signature: kc.sign(merchant),
    }
}

fn abort(bank: &SigningKey, merchant: &SigningKey, tid: u8, expiration_ms: u64) -> AbortRequest {
    let notice = EscrowNotice {
        log_origin: ORIGIN.into(),
        tid: Tid([tid; 16]),
        merchant: merchant.verifying_key().to_bytes(),
        expiration_ms,
    };
    AbortRequest {
        tid: notice.tid,
        merchant: notice.merchant,
        expiration_ms,
        bank: bank.verifying_key().to_bytes(),
        signature: notice.sign(bank),
    }
}

// P4/P5 and abort as engine calls: bad signatures, an untrusted bank, the
// time rules and a second outcome are refused with their codes; accepted
// appends are found again by TID, index, range and consistency.
#[tokio::test]
async fn steps_without_http() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let bank = SigningKey::from_bytes(&[6; 32]);
    let merchant = SigningKey::from_bytes(&[7; 32]);
    let log = log(clock.clone(), &bank);
    let engine = log.state();

    let mut forged = commit(&merchant, 1, 2_000_000);
    forged.key = [8; 32];
    let e = engine.commit(forged).await.unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::BadRequest, "bad_signature"));
    let e = engine
        .commit(commit(&merchant, 1, 900_000))
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::Unprocessable, "expired"));

    let committed = engine
        .commit(commit(&merchant, 1, 2_000_000))
        .await
        .unwrap();
    assert_eq!((committed.index, committed.outcome), (0, Outcome::Commit));
    // The same request again is answered with the same entry.
    let again = engine
        .commit(commit(&merchant, 1, 2_000_000))
        .await
        .unwrap();
    assert_eq!(again.index, 0);

    let stranger = SigningKey::from_bytes(&[5; 32]);
    let e = engine
        .abort(abort(&stranger, &merchant, 2, 500_000))
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::Forbidden, "untrusted_bank"));
    let e = engine
        .abort(abort(&bank, &merchant, 2, 2_000_000))
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::Unprocessable, "not_expired"));
    let e = engine
        .abort(abort(&bank, &merchant, 1, 500_000))
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::Conflict, "conflict"));
    assert_eq!(e.existing.map(|x| x.index), Some(0));
    let aborted = engine
        .abort(abort(&bank, &merchant, 2, 500_000))
        .await
        .unwrap();
    assert_eq!((aborted.index, aborted.outcome), (1, Outcome::Abort));

    let tx = engine.transaction(&Tid([2; 16]).to_string()).unwrap();
    assert_eq!(tx.index, 1);
    let e = engine.transaction(&Tid([3; 16]).to_string()).unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::NotFound, "unknown_tid"));
    let e = engine.transaction("xyz").unwrap_err();
    assert_eq!(e.code, "bad_tid");
    let by_index = engine
        .inclusion(&InclusionQuery {
            index: Some(0),
            ..InclusionQuery::default()
        })
        .unwrap();
    assert_eq!(by_index.entry, committed.entry);
    let e = engine.inclusion(&InclusionQuery::default()).unwrap_err();
    assert_eq!(e.code, "bad_query");
    let entries = engine.entries(&EntriesQuery { start: 0, end: 2 }).unwrap();
    assert_eq!(entries.entries.len(), 2);
    let proof = engine
        .consistency(&ConsistencyQuery {
            from: 1,
            to: Some(2),
        })
        .unwrap();
    assert_eq!((proof.from, proof.to), (1, 2));
    assert!(engine.checkpoint().starts_with(ORIGIN));
    assert!(engine.tile("entries/000.p/2").is_ok());
    assert_eq!(
        engine.tile("entries/000.p/3").unwrap_err().code,
        "no_such_bundle"
    );
}
