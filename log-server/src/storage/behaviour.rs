//! One behaviour suite for every [`Storage`] implementation.

#![allow(clippy::unwrap_used)]

use acd_core::entry::Tid;

use super::{Batch, MemoryStorage, SledStorage, Storage, StorageError, StoredCheckpoint};

fn checkpoint(size: u64) -> StoredCheckpoint {
    StoredCheckpoint {
        size,
        note: format!("note {size}\n"),
    }
}

/// What every storage must do: read back each committed kind, keep every
/// checkpoint, name the newest as latest, and store a batch only if the
/// checkpoint it extends is still the latest (compare-and-swap).
pub(crate) fn suite(s: &dyn Storage) {
    assert!(s.lease().unwrap());
    assert_eq!(s.latest_checkpoint().unwrap(), None);
    assert_eq!(s.tile(0, 0).unwrap(), None);
    assert_eq!(s.bundle(0).unwrap(), None);
    assert_eq!(s.tid_index(&Tid([1; 16])).unwrap(), None);

    s.commit(&Batch {
        tiles: vec![(0, 0, vec![1; 64]), (1, 7, vec![2; 32])],
        bundles: vec![(0, vec![0, 1, 9])],
        tids: vec![(Tid([1; 16]), 0)],
        leaves: vec![([3; 32], 0)],
        checkpoint: Some(checkpoint(1)),
        previous: None,
    })
    .unwrap();
    // A second "first" batch, or one extending a checkpoint that is not the
    // latest, is refused and stores nothing.
    for previous in [None, Some(checkpoint(0)), Some(checkpoint(2))] {
        let refused = s.commit(&Batch {
            tiles: vec![(0, 0, vec![9; 64])],
            bundles: vec![(0, vec![9])],
            tids: vec![(Tid([9; 16]), 0)],
            leaves: vec![([9; 32], 0)],
            checkpoint: Some(checkpoint(5)),
            previous,
        });
        assert!(
            matches!(refused, Err(StorageError::NotSequencer(_))),
            "{refused:?}"
        );
    }
    assert_eq!(s.tile(0, 0).unwrap(), Some(vec![1; 64]));
    assert_eq!(s.tid_index(&Tid([9; 16])).unwrap(), None);
    assert_eq!(s.leaf_index(&[9; 32]).unwrap(), None);
    assert_eq!(s.checkpoint_at(5).unwrap(), None);
    assert_eq!(s.latest_checkpoint().unwrap(), Some(checkpoint(1)));
    s.commit(&Batch {
        tiles: vec![(0, 0, vec![1; 96])],
        tids: vec![(Tid([2; 16]), 1)],
        checkpoint: Some(checkpoint(2)),
        previous: Some(checkpoint(1)),
        ..Batch::default()
    })
    .unwrap();
    // The same checkpoint again (the sequencer's write probe) is fine.
    s.commit(&Batch {
        checkpoint: Some(checkpoint(2)),
        previous: Some(checkpoint(2)),
        ..Batch::default()
    })
    .unwrap();

    assert_eq!(s.tile(0, 0).unwrap(), Some(vec![1; 96]));
    assert_eq!(s.tile(1, 7).unwrap(), Some(vec![2; 32]));
    assert_eq!(s.tile(1, 6).unwrap(), None);
    assert_eq!(s.bundle(0).unwrap(), Some(vec![0, 1, 9]));
    assert_eq!(s.tid_index(&Tid([1; 16])).unwrap(), Some(0));
    assert_eq!(s.tid_index(&Tid([2; 16])).unwrap(), Some(1));
    assert_eq!(s.leaf_index(&[3; 32]).unwrap(), Some(0));
    assert_eq!(s.latest_checkpoint().unwrap(), Some(checkpoint(2)));
    assert_eq!(s.checkpoint_at(1).unwrap(), Some(checkpoint(1)));
    assert_eq!(s.checkpoint_at(3).unwrap(), None);
}

// The in-memory store passes the behaviour suite.
#[test]
fn memory_storage_behaves() {
    suite(&MemoryStorage::new());
}

// The sled store passes the behaviour suite, and keeps everything across a reopen.
#[test]
fn sled_storage_behaves_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SledStorage::open(dir.path()).unwrap();
        suite(&s);
    }
    let s = SledStorage::open(dir.path()).unwrap();
    assert_eq!(s.latest_checkpoint().unwrap(), Some(checkpoint(2)));
    assert_eq!(s.tile(0, 0).unwrap(), Some(vec![1; 96]));
}

// An injected "failed but saved" commit stores the batch; "not saved" stores nothing.
#[test]
fn memory_failure_injection() {
    use super::FailMode;
    let s = MemoryStorage::new();
    s.fail_next(FailMode::NotSaved);
    assert!(
        s.commit(&Batch {
            checkpoint: Some(checkpoint(1)),
            ..Batch::default()
        })
        .is_err()
    );
    assert_eq!(s.latest_checkpoint().unwrap(), None);
    s.fail_next(FailMode::Saved);
    assert!(
        s.commit(&Batch {
            checkpoint: Some(checkpoint(1)),
            ..Batch::default()
        })
        .is_err()
    );
    assert_eq!(s.latest_checkpoint().unwrap(), Some(checkpoint(1)));
}

fn pg(url: &str, lease: std::time::Duration) -> super::PgStorage {
    super::PgStorage::connect(url, super::LeaseTiming::of(lease)).unwrap()
}

// The PostgreSQL store passes the behaviour suite, and a second process on
// the same database reads everything back.
#[test]
fn postgres_storage_behaves_and_persists() {
    let Some(url) = acd_testkit::pgdb::scratch_database("postgres_storage_behaves_and_persists")
    else {
        return;
    };
    let lease = std::time::Duration::from_secs(5);
    suite(&pg(&url, lease));
    let s = pg(&url, lease);
    assert_eq!(s.latest_checkpoint().unwrap(), Some(checkpoint(2)));
    assert_eq!(s.tile(0, 0).unwrap(), Some(vec![1; 96]));
    assert_eq!(s.bundle(0).unwrap(), Some(vec![0, 1, 9]));
    assert_eq!(s.leaf_index(&[3; 32]).unwrap(), Some(0));
}

// One lease holder at a time: a store whose lease expired (or was given up)
// is taken over, and the deposed holder's commits fail and store nothing,
// whether the lease is gone or it took the lease back but extends a stale
// checkpoint.
#[test]
fn postgres_lease_fences_a_deposed_writer() {
    use std::time::Duration;
    let Some(url) = acd_testkit::pgdb::scratch_database("postgres_lease_fences_a_deposed_writer")
    else {
        return;
    };
    let lease = Duration::from_millis(400);
    let a = pg(&url, lease);
    let b = pg(&url, lease);
    assert!(a.lease().unwrap());
    assert!(!b.lease().unwrap(), "the lease has one holder");
    // Without the lease nothing is stored, not even the first checkpoint.
    let refused = b.commit(&Batch {
        checkpoint: Some(checkpoint(1)),
        ..Batch::default()
    });
    assert!(
        matches!(refused, Err(StorageError::NotSequencer(_))),
        "{refused:?}"
    );
    a.commit(&Batch {
        checkpoint: Some(checkpoint(1)),
        ..Batch::default()
    })
    .unwrap();
    assert!(a.lease().unwrap(), "the holder renews");

    // `a` stops renewing (a paused process): `b` takes over once it expires.
    std::thread::sleep(lease + Duration::from_millis(100));
    assert!(b.lease().unwrap());
    assert!(!a.lease().unwrap());
    let stale = a.commit(&Batch {
        tids: vec![(Tid([7; 16]), 1)],
        checkpoint: Some(StoredCheckpoint {
            size: 2,
            note: "fork\n".into(),
        }),
        previous: Some(checkpoint(1)),
        ..Batch::default()
    });
    assert!(
        matches!(stale, Err(StorageError::NotSequencer(_))),
        "{stale:?}"
    );
    b.commit(&Batch {
        checkpoint: Some(checkpoint(2)),
        previous: Some(checkpoint(1)),
        ..Batch::default()
    })
    .unwrap();

    // `b` gives the lease up; `a` takes it at once, but its stale view of
    // the tree (size 1) is refused by the compare-and-swap.
    b.release().unwrap();
    assert!(a.lease().unwrap());
    let stale = a.commit(&Batch {
        tids: vec![(Tid([7; 16]), 1)],
        checkpoint: Some(StoredCheckpoint {
            size: 2,
            note: "fork\n".into(),
        }),
        previous: Some(checkpoint(1)),
        ..Batch::default()
    });
    assert!(
        matches!(stale, Err(StorageError::NotSequencer(_))),
        "{stale:?}"
    );
    assert_eq!(a.tid_index(&Tid([7; 16])).unwrap(), None);
    assert_eq!(a.latest_checkpoint().unwrap(), Some(checkpoint(2)));
    assert_eq!(a.checkpoint_at(2).unwrap(), Some(checkpoint(2)));
}
