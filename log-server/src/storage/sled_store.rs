//! The sled implementation of [`Storage`]: one tree, key prefixes per kind,
//! one atomic `apply_batch` and one `flush` (fsync) per group commit.
//! After an I/O error sled refuses every later write, so
//! [`Storage::reopen`] closes the database and opens it again.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use acd_core::entry::Tid;
use acd_core::merkle::Hash;

use super::{Batch, Storage, StorageError, StoredCheckpoint};

const TILE: u8 = b't';
const BUNDLE: u8 = b'b';
const TID: u8 = b'x';
const LEAF: u8 = b'h';
const CHECKPOINT: u8 = b'c';

fn tile_key(level: u8, index: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = TILE;
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

fn u64_key(prefix: u8, v: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&v.to_be_bytes());
    k
}

fn tid_key(tid: &Tid) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = TID;
    k[1..].copy_from_slice(&tid.0);
    k
}

fn leaf_key(hash: &Hash) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = LEAF;
    k[1..].copy_from_slice(hash);
    k
}

fn decode_u64(v: &[u8]) -> Result<u64, StorageError> {
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("index of {} bytes", v.len())))?;
    Ok(u64::from_be_bytes(b))
}

/// The log's state in a sled database.
#[derive(Debug)]
pub struct SledStorage {
    dir: PathBuf,
    /// `None` only while [`Storage::reopen`] runs or after it failed.
    open: RwLock<Option<Open>>,
    /// Held from the compare-and-swap's read to its write.
    commit: Mutex<()>,
}

#[derive(Debug)]
struct Open {
    db: sled::Db,
    tree: sled::Tree,
}

fn open_at(dir: &Path) -> Result<Open, StorageError> {
    let db = acd_serve::open_sled(
        &sled::Config::new()
            .path(dir)
            .cache_capacity(512 * 1024 * 1024),
    )?;
    let tree = db.open_tree("log")?;
    Ok(Open { db, tree })
}

impl SledStorage {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Ok(SledStorage {
            dir: dir.to_owned(),
            open: RwLock::new(Some(open_at(dir)?)),
            commit: Mutex::new(()),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Open) -> Result<T, StorageError>) -> Result<T, StorageError> {
        // Every change under the lock is one assignment: a panic elsewhere
        // cannot leave it half made.
        let g: RwLockReadGuard<'_, Option<Open>> =
            self.open.read().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(open) => f(open),
            None => Err(StorageError::Io("the database is being reopened".into())),
        }
    }

    fn tree_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StorageError> {
        self.with(|o| Ok(o.tree.get(key)?))
    }
}

impl Storage for SledStorage {
    fn commit(&self, batch: &Batch) -> Result<(), StorageError> {
        let mut b = sled::Batch::default();
        for (level, index, bytes) in &batch.tiles {
            b.insert(&tile_key(*level, *index)[..], bytes.as_slice());
        }
        for (index, bytes) in &batch.bundles {
            b.insert(&u64_key(BUNDLE, *index)[..], bytes.as_slice());
        }
        for (tid, index) in &batch.tids {
            b.insert(&tid_key(tid)[..], &index.to_be_bytes()[..]);
        }
        for (hash, index) in &batch.leaves {
            b.insert(&leaf_key(hash)[..], &index.to_be_bytes()[..]);
        }
        if let Some(c) = &batch.checkpoint {
            b.insert(&u64_key(CHECKPOINT, c.size)[..], c.note.as_bytes());
        }
        let _one_writer = self.commit.lock().unwrap_or_else(|e| e.into_inner());
        super::check_previous(self.latest_checkpoint()?.as_ref(), batch.previous.as_ref())?;
        self.with(|o| {
            o.tree.apply_batch(b)?;
            o.db.flush()?;
            Ok(())
        })
    }

    fn reopen(&self) -> Result<(), StorageError> {
        // Until the disk takes a write again the old database keeps serving
        // reads (of the published tree, which is durable): closing it first
        // and failing to open it again would refuse those too.
        probe_disk(&self.dir.with_extension("probe"))
            .map_err(|e| StorageError::Io(format!("the disk takes no writes: {e}")))?;
        // The old database must be closed first: it holds the lock on the
        // files. Readers meanwhile get an error at once instead of waiting.
        *self.open.write().unwrap_or_else(|e| e.into_inner()) = None;
        let reopened = open_at(&self.dir)?;
        *self.open.write().unwrap_or_else(|e| e.into_inner()) = Some(reopened);
        Ok(())
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tree_get(&tile_key(level, index))?.map(|v| v.to_vec()))
    }

    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tree_get(&u64_key(BUNDLE, index))?.map(|v| v.to_vec()))
    }

    fn tid_index(&self, tid: &Tid) -> Result<Option<u64>, StorageError> {
        self.tree_get(&tid_key(tid))?
            .map(|v| decode_u64(&v))
            .transpose()
    }

    fn leaf_index(&self, leaf_hash: &Hash) -> Result<Option<u64>, StorageError> {
        self.tree_get(&leaf_key(leaf_hash))?
            .map(|v| decode_u64(&v))
            .transpose()
    }

    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StorageError> {
        let last = self.with(|o| {
            Ok(o.tree
                .range(u64_key(CHECKPOINT, 0)..=u64_key(CHECKPOINT, u64::MAX))
                .next_back()
                .transpose()?)
        })?;
        last.map(|(k, v)| stored_checkpoint(&k, &v)).transpose()
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StorageError> {
        let key = u64_key(CHECKPOINT, size);
        self.tree_get(&key)?
            .map(|v| stored_checkpoint(&key, &v))
            .transpose()
    }
}

/// Writes, syncs and removes a page-sized file at `path`.
fn probe_disk(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let result = std::fs::File::create(path).and_then(|mut f| {
        f.write_all(&[0u8; 4096])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(path);
    result
}

fn stored_checkpoint(key: &[u8], note: &[u8]) -> Result<StoredCheckpoint, StorageError> {
    let size = decode_u64(key.get(1..).unwrap_or_default())?;
    let note = String::from_utf8(note.to_vec())
        .map_err(|_| StorageError::Corrupt("checkpoint is not UTF-8".into()))?;
    Ok(StoredCheckpoint { size, note })
}
