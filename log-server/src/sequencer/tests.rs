//! Sequencer tests on the in-memory store: rules, group commit, failure
//! injection and restart, with `check_log` after every step; and on
//! PostgreSQL, a standby's role switch.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use acd_core::entry::{EscrowNotice, KeyCommit, Outcome, Tid};
use acd_core::log_api::{AbortRequest, CommitRequest};
use acd_core::merkle;
use acd_core::note::NoteSigner;
use ed25519_dalek::SigningKey;

use super::*;
use crate::check::check_log;
use crate::clock::ManualClock;
use crate::storage::{FailMode, MemoryStorage};

const ORIGIN: &str = "log.test/seq";

struct Fixture {
    storage: Arc<MemoryStorage>,
    clock: Arc<ManualClock>,
    handle: SequencerHandle,
    signer_seed: [u8; 32],
}

impl Fixture {
    fn new() -> Self {
        Self::on(
            Arc::new(MemoryStorage::new()),
            Arc::new(ManualClock::new(1_000_000)),
        )
    }

    fn on(storage: Arc<MemoryStorage>, clock: Arc<ManualClock>) -> Self {
        let signer_seed = [7; 32];
        let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&signer_seed)).unwrap();
        let (handle, _thread) = start(
            storage.clone(),
            signer,
            clock.clone(),
            SequencerConfig {
                origin: ORIGIN.into(),
                max_batch: 64,
                queue: 1024,
                checkpoint_interval: Duration::from_millis(50),
                batch_window: Duration::ZERO,
                lease_renew: Duration::from_secs(1),
            },
        )
        .unwrap();
        Fixture {
            storage,
            clock,
            handle,
            signer_seed,
        }
    }

    fn check(&self) -> u64 {
        let v = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&self.signer_seed))
            .unwrap()
            .verifier();
        check_log(&*self.storage, &v).unwrap()
    }
}

fn merchant() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn bank() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

fn tid(n: u64) -> Tid {
    let mut t = [0u8; 16];
    t[8..].copy_from_slice(&n.to_be_bytes());
    Tid(t)
}

fn commit(n: u64, expiration_ms: u64, key: u8) -> Append {
    let m = merchant();
    let kc = KeyCommit {
        log_origin: ORIGIN.into(),
        tid: tid(n),
        merchant: m.verifying_key().to_bytes(),
        expiration_ms,
        key: [key; 32],
    };
    Append::Commit(CommitRequest {
        tid: kc.tid,
        merchant: kc.merchant,
        expiration_ms,
        key: kc.key,
        signature: kc.sign(&m),
    })
}

fn abort(n: u64, expiration_ms: u64) -> Append {
    let notice = EscrowNotice {
        log_origin: ORIGIN.into(),
        tid: tid(n),
        merchant: merchant().verifying_key().to_bytes(),
        expiration_ms,
    };
    Append::Abort(AbortRequest {
        tid: notice.tid,
        merchant: notice.merchant,
        expiration_ms,
        bank: bank().verifying_key().to_bytes(),
        signature: notice.sign(&bank()),
    })
}

fn verify_answer(p: &acd_core::log_api::EntryProof) {
    let root = merkle::root_from_inclusion_proof(&p.leaf_hash, p.index, p.tree_size, &p.inclusion)
        .unwrap();
    let v = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7; 32]))
        .unwrap()
        .verifier();
    let c = acd_core::checkpoint::SignedCheckpoint::open(&p.checkpoint, &v).unwrap();
    assert_eq!(c.checkpoint.root, root);
    assert_eq!(c.checkpoint.size, p.tree_size);
    assert_eq!(merkle::leaf_hash(&p.entry), p.leaf_hash);
}

// Hundreds of concurrent commits are all accepted, each answer proves its entry, and the stored tree checks out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_are_sequenced_and_proven() {
    let f = Fixture::new();
    let mut tasks = Vec::new();
    for n in 0..700 {
        let h = f.handle.clone();
        tasks.push(tokio::spawn(async move {
            h.append(commit(n, 2_000_000, 3)).await
        }));
    }
    let mut indexes = Vec::new();
    for t in tasks {
        let p = t.await.unwrap().unwrap();
        verify_answer(&p);
        indexes.push(p.index);
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..700).collect::<Vec<_>>());
    assert_eq!(f.check(), 700);
    // Group commit: far fewer commits than entries.
    assert!(f.storage.commits() < 700, "{} commits", f.storage.commits());
}

// A commit is accepted only before its expiration, an abort only at or after it.
#[tokio::test]
async fn expiration_decides_commit_and_abort() {
    let f = Fixture::new();
    let now = f.clock.now_ms();
    assert!(matches!(
        f.handle.append(commit(1, now, 3)).await,
        Err(AppendError::Expired { .. })
    ));
    assert!(matches!(
        f.handle.append(abort(2, now + 1)).await,
        Err(AppendError::NotExpired { .. })
    ));
    let c = f.handle.append(commit(1, now + 1, 3)).await.unwrap();
    assert_eq!(c.outcome, Outcome::Commit);
    let a = f.handle.append(abort(2, now)).await.unwrap();
    assert_eq!(a.outcome, Outcome::Abort);
    assert_eq!(a.timestamp_ms, now);
    assert_eq!(f.check(), 2);
}

// Repeating a request returns the same entry; a different outcome for the TID gets a conflict naming the first.
#[tokio::test]
async fn one_outcome_per_tid_and_idempotent_repeats() {
    let f = Fixture::new();
    let first = f.handle.append(commit(5, 2_000_000, 3)).await.unwrap();
    f.clock.advance(10);
    let again = f.handle.append(commit(5, 2_000_000, 3)).await.unwrap();
    assert_eq!(again.index, first.index);
    assert_eq!(again.entry, first.entry);
    match f.handle.append(commit(5, 2_000_000, 4)).await {
        Err(AppendError::Conflict { existing, .. }) => assert_eq!(existing.index, first.index),
        other => panic!("expected a conflict, got {other:?}"),
    }
    f.clock.set(2_000_000);
    match f.handle.append(abort(5, 2_000_000)).await {
        Err(AppendError::Conflict { existing, .. }) => {
            assert_eq!(existing.outcome, Outcome::Commit)
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(f.check(), 1);
}

// When a commit and an abort race for one TID, exactly one wins and the loser sees the winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_outcomes_for_one_tid() {
    let f = Fixture::new();
    let now = f.clock.now_ms();
    for n in 0..50 {
        // Different keys make every commit a different request.
        let reqs: Vec<Append> = (0..4).map(|k| commit(n, now + 1, k)).collect();
        let tasks: Vec<_> = reqs
            .into_iter()
            .map(|r| {
                let h = f.handle.clone();
                tokio::spawn(async move { h.append(r).await })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(AppendError::Conflict { existing, .. }) => {
                    assert_eq!(existing.tid, tid(n))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(won, 1);
    }
    assert_eq!(f.check(), 50);
}

// A commit that fails without saving is reported, changes nothing, and the log carries on.
#[tokio::test]
async fn failed_commit_not_saved() {
    let f = Fixture::new();
    f.handle.append(commit(1, 2_000_000, 3)).await.unwrap();
    f.storage.fail_next(FailMode::NotSaved);
    assert!(matches!(
        f.handle.append(commit(2, 2_000_000, 3)).await,
        Err(AppendError::Storage(_))
    ));
    assert_eq!(f.handle.published().size, 1);
    assert_eq!(f.check(), 1);
    let p = f.handle.append(commit(3, 2_000_000, 3)).await.unwrap();
    assert_eq!(p.index, 1);
    verify_answer(&p);
    assert_eq!(f.check(), 2);
}

// A commit that fails after saving is reported; the retry gets the stored entry, and it is published.
#[tokio::test]
async fn failed_commit_but_saved() {
    let f = Fixture::new();
    f.storage.fail_next(FailMode::Saved);
    assert!(f.handle.append(commit(1, 2_000_000, 3)).await.is_err());
    let retry = f.handle.append(commit(1, 2_000_000, 3)).await.unwrap();
    assert_eq!(retry.index, 0);
    verify_answer(&retry);
    assert_eq!(f.check(), 1);
}

// Entries of a failed-but-saved commit get published within the checkpoint interval even with no new appends.
#[tokio::test]
async fn saved_entries_are_republished() {
    let f = Fixture::new();
    f.storage.fail_next(FailMode::Saved);
    assert!(f.handle.append(commit(1, 2_000_000, 3)).await.is_err());
    let mut rx = f.handle.subscribe();
    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|p| p.size == 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.check(), 1);
}

// While every commit fails (a full disk) appends answer 503
// `storage_unavailable` and the published tree stays; once commits work the
// sequencer reopens the storage and sequences again by itself, losing
// nothing acknowledged.
#[tokio::test]
async fn recovers_by_itself_once_commits_work() {
    let f = Fixture::new();
    f.handle.append(commit(1, 2_000_000, 3)).await.unwrap();
    f.storage.fail_until_healed(FailMode::NotSaved);
    for n in 2..6 {
        let r = f.handle.append(commit(n, 2_000_000, 3)).await;
        assert!(matches!(r, Err(AppendError::Storage(_))), "{r:?}");
        let e = DomainError::from(r.unwrap_err());
        assert_eq!(e.code, "storage_unavailable");
    }
    assert_eq!(f.handle.published().size, 1);
    f.storage.heal();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let p = loop {
        match f.handle.append(commit(9, 2_000_000, 3)).await {
            Ok(p) => break p,
            Err(AppendError::Storage(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no recovery: {e}"),
        }
    };
    assert_eq!(p.index, 1);
    verify_answer(&p);
    assert!(f.storage.reopens() >= 1);
    assert_eq!(f.check(), 2);
}

// A restarted sequencer resumes from storage: same checkpoint, next index, old TIDs still decided.
#[tokio::test]
async fn restart_resumes() {
    let storage = Arc::new(MemoryStorage::new());
    let clock = Arc::new(ManualClock::new(1_000_000));
    let before = {
        let f = Fixture::on(storage.clone(), clock.clone());
        for n in 0..300 {
            f.handle.append(commit(n, 2_000_000, 3)).await.unwrap();
        }
        f.handle.published()
    };
    let f = Fixture::on(storage, clock);
    assert_eq!(*f.handle.published(), *before);
    let p = f.handle.append(commit(300, 2_000_000, 3)).await.unwrap();
    assert_eq!(p.index, 300);
    assert!(matches!(
        f.handle.append(commit(7, 2_000_000, 9)).await,
        Err(AppendError::Conflict { .. })
    ));
    assert_eq!(f.check(), 301);
}

// Two sequencers on one PostgreSQL database: the second is a standby that refuses appends with not_sequencer and follows the first's checkpoints; when the first stops (giving the lease up) the standby takes over within a renewal, continues the same tree, and the stored log checks out.
#[test]
fn a_standby_follows_and_takes_over_on_postgres() {
    use crate::storage::{LeaseTiming, PgStorage};
    let Some(url) =
        acd_testkit::pgdb::scratch_database("a_standby_follows_and_takes_over_on_postgres")
    else {
        return;
    };
    let timing = LeaseTiming::of(Duration::from_millis(500));
    let config = SequencerConfig {
        origin: ORIGIN.into(),
        max_batch: 64,
        queue: 1024,
        checkpoint_interval: Duration::from_millis(50),
        batch_window: Duration::ZERO,
        lease_renew: timing.renew,
    };
    let signer = || NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7; 32])).unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let a_store = Arc::new(PgStorage::connect(&url, timing).unwrap());
    let (a, a_thread) = start(a_store, signer(), clock.clone(), config.clone()).unwrap();
    let b_store = Arc::new(PgStorage::connect(&url, timing).unwrap());
    let (b, b_thread) = start(b_store.clone(), signer(), clock.clone(), config).unwrap();

    for n in 0..10 {
        let p = rt.block_on(a.append(commit(n, 2_000_000, 1))).unwrap();
        verify_answer(&p);
    }
    let refused = rt.block_on(b.append(commit(100, 2_000_000, 1)));
    assert!(
        matches!(refused, Err(AppendError::NotSequencer(_))),
        "{refused:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while b.published().size < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the standby does not follow"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(b.published(), a.published());

    // The active sequencer stops; its lease is given up on the way out.
    drop(a);
    a_thread.join().unwrap();
    let stopped = std::time::Instant::now();
    let p = loop {
        match rt.block_on(b.append(commit(10, 2_000_000, 1))) {
            Ok(p) => break p,
            Err(AppendError::NotSequencer(_)) => {
                assert!(stopped.elapsed() < Duration::from_secs(5), "no takeover");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(p.index, 10, "the standby continues the same tree");
    verify_answer(&p);
    // A repeat of an entry the first sequencer stored is answered as such.
    let again = rt.block_on(b.append(commit(3, 2_000_000, 1))).unwrap();
    assert_eq!(again.index, 3);
    let v = signer().verifier();
    assert_eq!(check_log(&*b_store, &v).unwrap(), 11);
    drop(b);
    b_thread.join().unwrap();
}
