//! The Merkle tree over stored tiles (RFC 6962 hashing, C2SP tlog-tiles
//! layout, height 8).
//!
//! Only tiles are stored: level L holds the nodes at tree height 8·L, so a
//! node at any other height is hashed up from at most 128 stored hashes.
//! Appending a leaf touches the rightmost tile of each level ([`Edge`], kept
//! in memory by the sequencer): O(log n) amortized, with no whole-tree
//! rebuild. A proof reads one tile per level ([`TreeReader`]): O(log n).

use std::collections::HashMap;

use acd_core::merkle::{self, Hash, ProveError};
use acd_core::tile::{self, TILE_WIDTH};

use crate::storage::{Batch, Storage, StorageError};

const WIDTH: usize = TILE_WIDTH as usize;

fn hashes_to_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

fn bytes_to_hashes(bytes: &[u8], what: &str) -> Result<Vec<Hash>, StorageError> {
    tile::tile_hashes(bytes).map_err(|e| StorageError::Corrupt(format!("{what}: {e}")))
}

/// The rightmost tile of one level.
#[derive(Debug, Clone)]
struct EdgeTile {
    index: u64,
    hashes: Vec<Hash>,
    dirty: bool,
}

/// The right edge of the tree and of the entry bundles: everything an append
/// changes. Owned by the sequencer.
#[derive(Debug, Clone)]
pub struct Edge {
    size: u64,
    tiles: Vec<EdgeTile>,
    bundle_index: u64,
    bundle: Vec<u8>,
    bundle_len: usize,
    bundle_dirty: bool,
}

impl Edge {
    /// Loads the edge of a stored tree of `size` leaves.
    pub fn load<S: Storage + ?Sized>(storage: &S, size: u64) -> Result<Edge, StorageError> {
        let mut tiles = Vec::new();
        let mut level: u8 = 0;
        loop {
            let count = size >> (8 * u32::from(level));
            let index = count / TILE_WIDTH;
            let width = (count % TILE_WIDTH) as usize;
            let hashes = if width == 0 {
                Vec::new()
            } else {
                let bytes = storage.tile(level, index)?.ok_or_else(|| {
                    StorageError::Corrupt(format!("missing tile {level}/{index}"))
                })?;
                let mut h = bytes_to_hashes(&bytes, "edge tile")?;
                if h.len() < width {
                    return Err(StorageError::Corrupt(format!(
                        "tile {level}/{index} has {} hashes, tree needs {width}",
                        h.len()
                    )));
                }
                h.truncate(width);
                h
            };
            tiles.push(EdgeTile {
                index,
                hashes,
                dirty: false,
            });
            if count < TILE_WIDTH {
                break;
            }
            level += 1;
        }
        let bundle_index = size / TILE_WIDTH;
        let bundle_len = (size % TILE_WIDTH) as usize;
        let bundle = if bundle_len == 0 {
            Vec::new()
        } else {
            let bytes = storage.bundle(bundle_index)?.ok_or_else(|| {
                StorageError::Corrupt(format!("missing entry bundle {bundle_index}"))
            })?;
            let entries = tile::decode_bundle(&bytes)
                .map_err(|e| StorageError::Corrupt(format!("entry bundle: {e}")))?;
            let kept = entries.get(..bundle_len).ok_or_else(|| {
                StorageError::Corrupt(format!("entry bundle {bundle_index} too short"))
            })?;
            tile::encode_bundle(kept)
                .map_err(|e| StorageError::Corrupt(format!("entry bundle: {e}")))?
        };
        Ok(Edge {
            size,
            tiles,
            bundle_index,
            bundle,
            bundle_len,
            bundle_dirty: false,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one entry; full tiles and bundles go into `batch` at once,
    /// partial ones when [`Edge::flush_into`] is called.
    pub fn append(
        &mut self,
        entry: &[u8],
        leaf_hash: Hash,
        batch: &mut Batch,
    ) -> Result<(), tile::TileError> {
        tile::append_to_bundle(&mut self.bundle, entry)?;
        self.bundle_len += 1;
        self.bundle_dirty = true;
        if self.bundle_len == WIDTH {
            batch
                .bundles
                .push((self.bundle_index, std::mem::take(&mut self.bundle)));
            self.bundle_index += 1;
            self.bundle_len = 0;
            self.bundle_dirty = false;
        }

        let mut hash = leaf_hash;
        let mut level = 0usize;
        loop {
            if self.tiles.len() == level {
                self.tiles.push(EdgeTile {
                    index: 0,
                    hashes: Vec::new(),
                    dirty: false,
                });
            }
            let t = &mut self.tiles[level];
            t.hashes.push(hash);
            t.dirty = true;
            if t.hashes.len() < WIDTH {
                break;
            }
            hash = merkle::root_from_leaf_hashes(&t.hashes);
            batch
                .tiles
                .push((level as u8, t.index, hashes_to_bytes(&t.hashes)));
            t.hashes.clear();
            t.index += 1;
            t.dirty = false;
            level += 1;
        }
        self.size += 1;
        Ok(())
    }

    /// Puts the partial tiles and bundle changed since the last call into
    /// `batch`.
    pub fn flush_into(&mut self, batch: &mut Batch) {
        for (level, t) in self.tiles.iter_mut().enumerate() {
            if t.dirty && !t.hashes.is_empty() {
                batch
                    .tiles
                    .push((level as u8, t.index, hashes_to_bytes(&t.hashes)));
            }
            t.dirty = false;
        }
        if self.bundle_dirty && self.bundle_len > 0 {
            batch.bundles.push((self.bundle_index, self.bundle.clone()));
        }
        self.bundle_dirty = false;
    }

    /// A complete subtree's hash, if it lies in the edge tiles (every node
    /// of the current root's decomposition does).
    fn subtree(&self, level: u8, index: u64) -> Option<Hash> {
        let (tile_level, tile_index, start, count) = tile::node_location(level, index);
        let t = self.tiles.get(usize::from(tile_level))?;
        if t.index != tile_index {
            return None;
        }
        let hashes = t.hashes.get(start..start.checked_add(count)?)?;
        Some(merkle::root_from_leaf_hashes(hashes))
    }

    /// The root of the current tree.
    pub fn root(&self) -> Result<Hash, StorageError> {
        merkle::tree_root(self.size, |level, index| {
            self.subtree(level, index).ok_or_else(|| {
                StorageError::Corrupt(format!("node {level}/{index} is not on the edge"))
            })
        })
    }
}

/// Reads hashes of a published tree of `size` leaves from storage, for
/// proofs. Caches what it read, so proofs for neighbouring leaves share
/// work; make one per request or per batch.
pub struct TreeReader<'a, S: Storage + ?Sized> {
    storage: &'a S,
    size: u64,
    tiles: HashMap<(u8, u64), Vec<Hash>>,
    memo: HashMap<(u8, u64), Hash>,
}

impl<'a, S: Storage + ?Sized> TreeReader<'a, S> {
    pub fn new(storage: &'a S, size: u64) -> Self {
        TreeReader {
            storage,
            size,
            tiles: HashMap::new(),
            memo: HashMap::new(),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes of tile (level, index), read once per reader.
    fn tile(&mut self, level: u8, index: u64) -> Result<&[Hash], StorageError> {
        if !self.tiles.contains_key(&(level, index)) {
            let bytes = self
                .storage
                .tile(level, index)?
                .ok_or_else(|| StorageError::Corrupt(format!("missing tile {level}/{index}")))?;
            let hashes = bytes_to_hashes(&bytes, "tile")?;
            self.tiles.insert((level, index), hashes);
        }
        Ok(self
            .tiles
            .get(&(level, index))
            .map(Vec::as_slice)
            .unwrap_or_default())
    }

    /// The hash of a complete subtree inside the tree: hashed up from the
    /// at most 128 stored hashes below it in one tile.
    pub fn subtree(&mut self, level: u8, index: u64) -> Result<Hash, StorageError> {
        if let Some(h) = self.memo.get(&(level, index)) {
            return Ok(*h);
        }
        let (tile_level, tile_index, start, count) = tile::node_location(level, index);
        let hashes = self.tile(tile_level, tile_index)?;
        let below = hashes.get(start..start + count).ok_or_else(|| {
            StorageError::Corrupt(format!(
                "tile {tile_level}/{tile_index} lacks hashes {start}..{}",
                start + count
            ))
        })?;
        let h = merkle::root_from_leaf_hashes(below);
        self.memo.insert((level, index), h);
        Ok(h)
    }

    pub fn root(&mut self) -> Result<Hash, StorageError> {
        let size = self.size;
        merkle::tree_root(size, |l, i| self.subtree(l, i))
    }

    pub fn root_at(&mut self, size: u64) -> Result<Hash, ProveError<StorageError>> {
        if size > self.size {
            return Err(ProveError::OutOfRange {
                requested: size,
                size: self.size,
            });
        }
        merkle::tree_root(size, |l, i| self.subtree(l, i)).map_err(ProveError::Source)
    }

    pub fn inclusion(&mut self, index: u64) -> Result<Vec<Hash>, ProveError<StorageError>> {
        let size = self.size;
        merkle::inclusion_proof(index, size, |l, i| self.subtree(l, i))
    }

    pub fn consistency(&mut self, from: u64) -> Result<Vec<Hash>, ProveError<StorageError>> {
        let size = self.size;
        merkle::consistency_proof(from, size, |l, i| self.subtree(l, i))
    }

    /// The entry at `index`, read from its bundle.
    pub fn entry(&mut self, index: u64) -> Result<Vec<u8>, StorageError> {
        let bundle_index = index / TILE_WIDTH;
        let bytes = self
            .storage
            .bundle(bundle_index)?
            .ok_or_else(|| StorageError::Corrupt(format!("missing entry bundle {bundle_index}")))?;
        let entries = tile::decode_bundle(&bytes)
            .map_err(|e| StorageError::Corrupt(format!("entry bundle: {e}")))?;
        entries
            .get((index % TILE_WIDTH) as usize)
            .map(|e| e.to_vec())
            .ok_or_else(|| StorageError::Corrupt(format!("entry {index} missing from bundle")))
    }
}
