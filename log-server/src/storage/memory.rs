//! An in-memory [`Storage`] for tests, with failure injection: the next
//! commit can fail without saving, or fail after saving (the case a crash
//! between the write and its acknowledgement produces).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use acd_core::entry::Tid;
use acd_core::merkle::Hash;

use super::{Batch, Storage, StorageError, StoredCheckpoint};

/// How an injected commit failure behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// The commit fails and nothing is stored.
    NotSaved,
    /// The commit fails but everything was stored.
    Saved,
}

#[derive(Debug, Default)]
struct Inner {
    tiles: HashMap<(u8, u64), Vec<u8>>,
    bundles: HashMap<u64, Vec<u8>>,
    tids: HashMap<Tid, u64>,
    leaves: HashMap<Hash, u64>,
    checkpoints: BTreeMap<u64, String>,
    fail_next: Option<FailMode>,
    /// Every commit fails this way until healed (a full disk).
    failing: Option<FailMode>,
    commits: u64,
    reopens: u64,
}

/// Not durable: for tests only.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    inner: Mutex<Inner>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next commit fail in the given way.
    pub fn fail_next(&self, mode: FailMode) {
        self.lock().fail_next = Some(mode);
    }

    /// Makes every commit fail in the given way until
    /// [`MemoryStorage::heal`].
    pub fn fail_until_healed(&self, mode: FailMode) {
        self.lock().failing = Some(mode);
    }

    /// Ends [`MemoryStorage::fail_until_healed`].
    pub fn heal(&self) {
        self.lock().failing = None;
    }

    /// How many times the store was reopened.
    pub fn reopens(&self) -> u64 {
        self.lock().reopens
    }

    /// How many commits were applied.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock already failed; the
        // data is still consistent because every commit is applied whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for MemoryStorage {
    fn commit(&self, batch: &Batch) -> Result<(), StorageError> {
        let mut g = self.lock();
        let fail = g.fail_next.take().or(g.failing);
        if fail == Some(FailMode::NotSaved) {
            return Err(StorageError::Injected);
        }
        let latest = g
            .checkpoints
            .iter()
            .next_back()
            .map(|(size, note)| StoredCheckpoint {
                size: *size,
                note: note.clone(),
            });
        super::check_previous(latest.as_ref(), batch.previous.as_ref())?;
        for (level, index, bytes) in &batch.tiles {
            g.tiles.insert((*level, *index), bytes.clone());
        }
        for (index, bytes) in &batch.bundles {
            g.bundles.insert(*index, bytes.clone());
        }
        for (tid, index) in &batch.tids {
            g.tids.insert(*tid, *index);
        }
        for (hash, index) in &batch.leaves {
            g.leaves.insert(*hash, *index);
        }
        if let Some(c) = &batch.checkpoint {
            g.checkpoints.insert(c.size, c.note.clone());
        }
        g.commits += 1;
        match fail {
            Some(FailMode::Saved) => Err(StorageError::Injected),
            _ => Ok(()),
        }
    }

    fn reopen(&self) -> Result<(), StorageError> {
        // Every commit is durable whole or not at all: nothing to drop.
        self.lock().reopens += 1;
        Ok(())
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().tiles.get(&(level, index)).cloned())
    }

    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().bundles.get(&index).cloned())
    }

    fn tid_index(&self, tid: &Tid) -> Result<Option<u64>, StorageError> {
        Ok(self.lock().tids.get(tid).copied())
    }

    fn leaf_index(&self, leaf_hash: &Hash) -> Result<Option<u64>, StorageError> {
        Ok(self.lock().leaves.get(leaf_hash).copied())
    }

    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StorageError> {
        Ok(self
            .lock()
            .checkpoints
            .iter()
            .next_back()
            .map(|(size, note)| StoredCheckpoint {
                size: *size,
                note: note.clone(),
            }))
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StorageError> {
        Ok(self
            .lock()
            .checkpoints
            .get(&size)
            .map(|note| StoredCheckpoint {
                size,
                note: note.clone(),
            }))
    }
}
