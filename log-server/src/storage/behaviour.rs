//! One behaviour suite for every [`Storage`] implementation.

#![allow(clippy::unwrap_used)]

use acd_core::entry::Tid;

use super::{Batch, MemoryStorage, SledStorage, Storage, StoredCheckpoint};

fn checkpoint(size: u64) -> StoredCheckpoint {
    StoredCheckpoint {
        size,
        note: format!("note {size}\n"),
    }
}

/// What every storage must do: read back each committed kind, keep every
/// checkpoint, and name the largest as latest.
fn suite(s: &dyn Storage) {
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
    })
    .unwrap();
    s.commit(&Batch {
        tiles: vec![(0, 0, vec![1; 96])],
        tids: vec![(Tid([2; 16]), 1)],
        checkpoint: Some(checkpoint(2)),
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
