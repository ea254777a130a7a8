//! Where the ledger keeps its books: one ordered key-value table that is
//! written only in whole batches, so that a crash leaves the books before a
//! batch or after it, never in between.
//!
//! Three implementations: [`SledStore`] (one process, the default),
//! [`crate::postgres::PgStore`] (PostgreSQL: any number of bank processes
//! on one database) and [`MemoryStore`] (for tests: it injects write
//! failures, including the ones a real disk produces, and simulates a
//! crash by dropping what was not yet durable).
//!
//! The ledger decides a batch inside a [`StoreTx`]: its reads and its one
//! write are one transaction. On sled and in memory the ledger's single
//! writer thread is what makes that true; on PostgreSQL the database does,
//! across processes.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use acd_core::error::DomainError;
use thiserror::Error;

/// One batch of writes: key to new value, `None` deletes.
pub type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Key-value pairs in key order.
pub type Items<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a>;

/// A storage failure.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum StoreError {
    /// The disk failed; the request may be retried.
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// The database itself is damaged.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    /// A failure injected by a test.
    #[error("injected storage failure")]
    Injected,
    /// A concurrent transaction (another bank process) conflicted with
    /// this one, which changed nothing: decide the batch again.
    #[error("storage conflict: {0}")]
    Conflict(String),
}

/// A disk that failed may work on a retry (503 `storage_unavailable`); a
/// damaged database is a 500 whose detail is only logged.
impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(_) | StoreError::Injected => {
                DomainError::unavailable("storage_unavailable", e.to_string())
            }
            StoreError::Conflict(_) => DomainError::unavailable("busy", e.to_string()),
            StoreError::Corrupt(_) => DomainError::internal(format!("storage: {e}")),
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(e) => StoreError::Io(e.to_string()),
            other => StoreError::Corrupt(other.to_string()),
        }
    }
}

/// The ledger's table. One writer (the ledger's writer thread) and any
/// number of readers use it at once.
pub trait Store: Send + Sync + 'static {
    /// The value stored under `key`, counting writes applied but not yet
    /// durable.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// The pairs with `start <= key <= end`, in key order.
    fn range(&self, start: &[u8], end: &[u8]) -> Items<'_>;
    /// The pairs whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Items<'_>;
    /// Applies `writes` atomically and makes them durable. `Ok` means all
    /// of them survive a crash. On `Err` none of them or all of them were
    /// applied, and applied ones may or may not survive a crash: so every
    /// change the ledger makes must be safe to decide again.
    fn write(&self, writes: &Writes) -> Result<(), StoreError>;
    /// A transaction: reads of one state that no other writer changes
    /// until [`StoreTx::commit`] writes the batch decided on them.
    fn begin(&self) -> Result<Box<dyn StoreTx + '_>, StoreError>;
    /// Reads of one state (the sums' scan), written by no one meanwhile.
    /// The ledger's gate already gives that on sled and in memory.
    fn snapshot(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        self.begin()
    }
}

/// Reads inside a transaction, then its one write.
pub trait StoreTx {
    /// [`Store::get`] inside the transaction.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// [`Store::range`] inside the transaction.
    fn range(&self, start: &[u8], end: &[u8]) -> Items<'_>;
    /// [`Store::scan_prefix`] inside the transaction.
    fn scan_prefix(&self, prefix: &[u8]) -> Items<'_>;
    /// Writes `writes` as [`Store::write`] does and ends the transaction;
    /// dropping it instead changes nothing.
    fn commit(self: Box<Self>, writes: &Writes) -> Result<(), StoreError>;
}

/// The transaction of a store that has one writer: reads and the write go
/// straight to the store.
struct Direct<'a, S: ?Sized>(&'a S);

impl<S: Store + ?Sized> StoreTx for Direct<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key)
    }

    fn range(&self, start: &[u8], end: &[u8]) -> Items<'_> {
        self.0.range(start, end)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Items<'_> {
        self.0.scan_prefix(prefix)
    }

    fn commit(self: Box<Self>, writes: &Writes) -> Result<(), StoreError> {
        self.0.write(writes)
    }
}

/// The ledger on sled: one tree, one atomic batch and one flush per write.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
}

impl SledStore {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &std::path::Path) -> Result<SledStore, sled::Error> {
        let db = acd_serve::open_sled(&sled::Config::new().path(path))?;
        Ok(SledStore { db })
    }
}

fn sled_items<'a>(
    iter: impl Iterator<Item = Result<(sled::IVec, sled::IVec), sled::Error>> + 'a,
) -> Items<'a> {
    Box::new(iter.map(|item| {
        item.map(|(k, v)| (k.to_vec(), v.to_vec()))
            .map_err(StoreError::from)
    }))
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn range(&self, start: &[u8], end: &[u8]) -> Items<'_> {
        sled_items(self.db.range(start.to_vec()..=end.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Items<'_> {
        sled_items(self.db.scan_prefix(prefix))
    }

    fn write(&self, writes: &Writes) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            match v {
                Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                None => batch.remove(k.as_slice()),
            }
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    fn begin(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        Ok(Box::new(Direct(self)))
    }
}

/// How an injected write failure behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Nothing is applied.
    NotApplied,
    /// Applied but not durable: readers see it, a crash loses it (sled's
    /// batch applied, its flush failed).
    NotDurable,
    /// Applied and durable, but the caller is told it failed (the answer
    /// lost between the disk and the ledger).
    Durable,
}

#[derive(Debug, Default)]
struct Inner {
    live: BTreeMap<Vec<u8>, Vec<u8>>,
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    fail_next: Option<FailMode>,
    /// Every write fails this way until healed (a full disk).
    failing: Option<FailMode>,
    writes: u64,
}

fn apply(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, writes: &Writes) {
    for (k, v) in writes {
        match v {
            Some(v) => map.insert(k.clone(), v.clone()),
            None => map.remove(k),
        };
    }
}

/// Not durable across processes: for tests only.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next write fail in the given way.
    pub fn fail_next(&self, mode: FailMode) {
        self.lock().fail_next = Some(mode);
    }

    /// Makes every write fail in the given way until [`MemoryStore::heal`].
    pub fn fail_until_healed(&self, mode: FailMode) {
        self.lock().failing = Some(mode);
    }

    /// Forgets a failure set by [`MemoryStore::fail_next`] that no write
    /// has met yet, and ends [`MemoryStore::fail_until_healed`].
    pub fn heal(&self) {
        let mut g = self.lock();
        g.fail_next = None;
        g.failing = None;
    }

    /// Simulates a crash and restart: what was not durable is gone.
    pub fn crash(&self) {
        let mut g = self.lock();
        g.live = g.durable.clone();
    }

    /// Everything readers see, for comparing two ledgers.
    pub fn contents(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.lock().live.clone()
    }

    /// How many writes were applied (failed or not).
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock already failed; the
        // maps are consistent because every write is applied whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn collect(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>, prefix: &[u8]) -> Items<'_> {
        let g = self.lock();
        let items: Vec<_> = g
            .live
            .range::<[u8], _>((lower, upper))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Box::new(items.into_iter())
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().live.get(key).cloned())
    }

    fn range(&self, start: &[u8], end: &[u8]) -> Items<'_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        self.collect(Bound::Included(start), Bound::Included(end), b"")
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Items<'_> {
        self.collect(Bound::Included(prefix), Bound::Unbounded, prefix)
    }

    fn write(&self, writes: &Writes) -> Result<(), StoreError> {
        let mut g = self.lock();
        let fail = g.fail_next.take().or(g.failing);
        if fail == Some(FailMode::NotApplied) {
            return Err(StoreError::Injected);
        }
        g.writes += 1;
        apply(&mut g.live, writes);
        if fail == Some(FailMode::NotDurable) {
            return Err(StoreError::Injected);
        }
        // Like sled's flush, a durable write also makes durable every
        // earlier write that was applied.
        g.durable = g.live.clone();
        match fail {
            Some(_) => Err(StoreError::Injected),
            None => Ok(()),
        }
    }

    fn begin(&self) -> Result<Box<dyn StoreTx + '_>, StoreError> {
        Ok(Box::new(Direct(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(pairs: &[(&[u8], Option<&[u8]>)]) -> Writes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect()
    }

    fn keys(items: Items<'_>) -> Vec<Vec<u8>> {
        items
            .map(|i| i.map(|(k, _)| k))
            .collect::<Result<_, _>>()
            .unwrap_or_default()
    }

    /// Both stores answer the same reads after the same writes.
    fn behaves(store: &dyn Store) {
        let w = writes(&[
            (b"a/1", Some(b"x")),
            (b"a/2", Some(b"y")),
            (b"b/1", Some(b"z")),
            (b"a", Some(b"top")),
        ]);
        assert_eq!(store.write(&w), Ok(()));
        assert_eq!(store.get(b"a/2"), Ok(Some(b"y".to_vec())));
        assert_eq!(store.get(b"c"), Ok(None));
        assert_eq!(
            keys(store.scan_prefix(b"a/")),
            vec![b"a/1".to_vec(), b"a/2".to_vec()]
        );
        assert_eq!(
            keys(store.range(b"a/2", b"b/1")),
            vec![b"a/2".to_vec(), b"b/1".to_vec()]
        );
        assert!(keys(store.range(b"b", b"a")).is_empty());
        assert_eq!(store.write(&writes(&[(b"a/1", None)])), Ok(()));
        assert_eq!(store.get(b"a/1"), Ok(None));
        assert_eq!(keys(store.scan_prefix(b"a/")), vec![b"a/2".to_vec()]);
    }

    #[test]
    fn sled_and_memory_agree() {
        let dir = tempfile::tempdir().expect("tempdir");
        behaves(&SledStore::open(dir.path()).expect("sled"));
        behaves(&MemoryStore::new());
    }

    #[test]
    fn injected_failures_and_crashes() {
        let s = MemoryStore::new();
        s.fail_next(FailMode::NotApplied);
        assert!(s.write(&writes(&[(b"k", Some(b"1"))])).is_err());
        assert_eq!(s.get(b"k"), Ok(None));

        s.fail_next(FailMode::NotDurable);
        assert!(s.write(&writes(&[(b"k", Some(b"2"))])).is_err());
        assert_eq!(s.get(b"k"), Ok(Some(b"2".to_vec())));
        s.crash();
        assert_eq!(s.get(b"k"), Ok(None));

        s.fail_next(FailMode::NotDurable);
        assert!(s.write(&writes(&[(b"k", Some(b"3"))])).is_err());
        assert_eq!(s.write(&writes(&[(b"j", Some(b"4"))])), Ok(()));
        s.crash();
        assert_eq!(
            s.get(b"k"),
            Ok(Some(b"3".to_vec())),
            "flushed by the next write"
        );

        s.fail_next(FailMode::Durable);
        assert!(s.write(&writes(&[(b"k", Some(b"5"))])).is_err());
        s.crash();
        assert_eq!(s.get(b"k"), Ok(Some(b"5".to_vec())));
        assert_eq!(s.writes(), 4);
    }
}
