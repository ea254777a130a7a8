//! Where the log keeps its state: hash tiles, entry bundles, the TID and
//! leaf-hash indexes, and every checkpoint it signed.
//!
//! The log writes only through [`Storage::commit`], one [`Batch`] per group
//! commit, so a crash leaves either the state before a batch or the state
//! after it. Three implementations: [`SledStorage`] (the default, one
//! process), [`PgStorage`] (PostgreSQL, shared by an active log and its
//! standbys) and [`MemoryStorage`] (for tests, with failure injection).
//!
//! A batch names the checkpoint it extends ([`Batch::previous`]) and is
//! stored only if that is still the latest one: a compare-and-swap, so two
//! writers can never publish conflicting checkpoints. A storage shared by
//! several processes also grants a lease ([`Storage::lease`]); only its
//! holder's commits succeed.

mod memory;
mod postgres;
mod sled_store;

pub use memory::{FailMode, MemoryStorage};
pub use postgres::{LeaseTiming, PgStorage};
pub use sled_store::SledStorage;

use acd_core::entry::Tid;
use acd_core::merkle::Hash;
use thiserror::Error;

/// A storage failure. The sequencer answers 503 and reloads its state.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("storage I/O failed: {0}")]
    Io(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("injected failure")]
    Injected,
    /// This process may not write: another one holds the lease, or the
    /// latest checkpoint is no longer the one the batch extends.
    #[error("not the sequencer: {0}")]
    NotSequencer(String),
}

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        StorageError::Io(e.to_string())
    }
}

/// A disk that failed is worth a retry (503 `storage_unavailable`); corrupt
/// data is a bug or a broken disk (internal, detail logged only).
impl From<StorageError> for acd_core::error::DomainError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Corrupt(_) => acd_core::error::DomainError::internal(e.to_string()),
            StorageError::Io(_) | StorageError::Injected => {
                acd_core::error::DomainError::unavailable("storage_unavailable", e.to_string())
            }
            StorageError::NotSequencer(_) => {
                acd_core::error::DomainError::unavailable("not_sequencer", e.to_string())
            }
        }
    }
}

/// A checkpoint as stored: tree size and the signed note text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub note: String,
}

/// Everything one group commit writes.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Hash tiles, full or partial: (level, index, concatenated hashes).
    pub tiles: Vec<(u8, u64, Vec<u8>)>,
    /// Entry bundles, full or partial: (index, bundle bytes).
    pub bundles: Vec<(u64, Vec<u8>)>,
    /// TID -> leaf index of its outcome.
    pub tids: Vec<(Tid, u64)>,
    /// Leaf hash -> leaf index.
    pub leaves: Vec<(Hash, u64)>,
    /// The checkpoint that covers this batch.
    pub checkpoint: Option<StoredCheckpoint>,
    /// The latest checkpoint when the batch was made (`None`: the store is
    /// empty). The commit fails with [`StorageError::NotSequencer`], storing
    /// nothing, unless it is still the latest.
    pub previous: Option<StoredCheckpoint>,
}

/// The log's store. Implementations are usable concurrently: one writer
/// (the sequencer) and any number of readers.
pub trait Storage: Send + Sync + 'static {
    /// Applies the whole batch atomically, and durably: once this returns
    /// `Ok`, all of it survives a crash. On `Err` either none or all of it
    /// may have been stored; the caller must reload what it caches.
    fn commit(&self, batch: &Batch) -> Result<(), StorageError>;
    /// A hash tile as last written (possibly wider than a caller's tree).
    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StorageError>;
    /// An entry bundle as last written.
    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError>;
    /// The leaf index of the outcome recorded for `tid`.
    fn tid_index(&self, tid: &Tid) -> Result<Option<u64>, StorageError>;
    /// The leaf index of the entry with this leaf hash.
    fn leaf_index(&self, leaf_hash: &Hash) -> Result<Option<u64>, StorageError>;
    /// The latest checkpoint.
    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StorageError>;
    /// The checkpoint signed at exactly this size, if any.
    fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StorageError>;
    /// After a failed commit: closes and reopens the store, so that it
    /// holds exactly what is durable and takes writes again if the disk
    /// does. Readers meanwhile get [`StorageError::Io`].
    fn reopen(&self) -> Result<(), StorageError> {
        Ok(())
    }
    /// Takes or renews the lease to sequence: `Ok(true)` if this process
    /// holds it now. A store only one process can open always grants it.
    fn lease(&self) -> Result<bool, StorageError> {
        Ok(true)
    }
    /// Gives the lease up (on shutdown), so that a standby takes over at
    /// once instead of when it expires.
    fn release(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The compare-and-swap of every implementation: is `previous` the latest
/// checkpoint `latest`?
fn check_previous(
    latest: Option<&StoredCheckpoint>,
    previous: Option<&StoredCheckpoint>,
) -> Result<(), StorageError> {
    if latest == previous {
        return Ok(());
    }
    Err(StorageError::NotSequencer(format!(
        "the latest checkpoint has size {}, the batch extends size {}",
        latest.map_or_else(|| "none".to_owned(), |c| c.size.to_string()),
        previous.map_or_else(|| "none".to_owned(), |c| c.size.to_string()),
    )))
}

#[cfg(test)]
pub(crate) mod behaviour;
