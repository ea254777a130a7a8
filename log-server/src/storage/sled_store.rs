//! The sled implementation of [`Storage`]: one tree, key prefixes per kind,
//! one atomic `apply_batch` and one `flush` (fsync) per group commit.

use std::path::Path;

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
#[derive(Debug, Clone)]
pub struct SledStorage {
    db: sled::Db,
    tree: sled::Tree,
}

impl SledStorage {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = acd_serve::open_sled(
            &sled::Config::new()
                .path(dir)
                .cache_capacity(512 * 1024 * 1024),
        )?;
        let tree = db.open_tree("log")?;
        Ok(SledStorage { db, tree })
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
        self.tree.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    fn tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tree.get(tile_key(level, index))?.map(|v| v.to_vec()))
    }

    fn bundle(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tree.get(u64_key(BUNDLE, index))?.map(|v| v.to_vec()))
    }

    fn tid_index(&self, tid: &Tid) -> Result<Option<u64>, StorageError> {
        self.tree
            .get(tid_key(tid))?
            .map(|v| decode_u64(&v))
            .transpose()
    }

    fn leaf_index(&self, leaf_hash: &Hash) -> Result<Option<u64>, StorageError> {
        self.tree
            .get(leaf_key(leaf_hash))?
            .map(|v| decode_u64(&v))
            .transpose()
    }

    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StorageError> {
        let last = self
            .tree
            .range(u64_key(CHECKPOINT, 0)..=u64_key(CHECKPOINT, u64::MAX))
            .next_back()
            .transpose()?;
        last.map(|(k, v)| stored_checkpoint(&k, &v)).transpose()
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<StoredCheckpoint>, StorageError> {
        let key = u64_key(CHECKPOINT, size);
        self.tree
            .get(key)?
            .map(|v| stored_checkpoint(&key, &v))
            .transpose()
    }
}

fn stored_checkpoint(key: &[u8], note: &[u8]) -> Result<StoredCheckpoint, StorageError> {
    let size = decode_u64(key.get(1..).unwrap_or_default())?;
    let note = String::from_utf8(note.to_vec())
        .map_err(|_| StorageError::Corrupt("checkpoint is not UTF-8".into()))?;
    Ok(StoredCheckpoint { size, note })
}
