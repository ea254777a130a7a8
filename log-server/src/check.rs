//! `check_log`: re-verifies a whole stored log from scratch. Tests run it
//! after every step; an operator can run it against a stopped log's data.
//! It is O(n) on purpose: it trusts nothing the incremental code computed.

use acd_core::checkpoint::SignedCheckpoint;
use acd_core::entry::LogEntry;
use acd_core::merkle::{self, MemoryTree};
use acd_core::note::NoteVerifier;
use acd_core::tile::{self, TILE_WIDTH};

use crate::storage::Storage;

/// Checks that the latest checkpoint is signed, that its root is the root
/// of the stored entries, that every stored tile up to its size holds the
/// right hashes, that every entry decodes with a valid signature, and that
/// both indexes point at the right entries. Returns the checked size.
pub fn check_log(storage: &dyn Storage, verifier: &NoteVerifier) -> Result<u64, String> {
    let latest = storage
        .latest_checkpoint()
        .map_err(|e| e.to_string())?
        .ok_or("no checkpoint")?;
    let signed = SignedCheckpoint::open(&latest.note, verifier).map_err(|e| e.to_string())?;
    let size = signed.checkpoint.size;
    if size != latest.size {
        return Err(format!(
            "checkpoint of size {size} stored under {}",
            latest.size
        ));
    }
    let mut tree = MemoryTree::new();
    let mut seen = std::collections::HashSet::new();
    for bundle_index in 0..size.div_ceil(TILE_WIDTH) {
        let bytes = storage
            .bundle(bundle_index)
            .map_err(|e| e.to_string())?
            .ok_or(format!("bundle {bundle_index} missing"))?;
        let entries = tile::decode_bundle(&bytes).map_err(|e| e.to_string())?;
        let want = tile::tile_width(0, bundle_index, size) as usize;
        if entries.len() < want {
            return Err(format!(
                "bundle {bundle_index} has {} entries",
                entries.len()
            ));
        }
        for bytes in &entries[..want] {
            let index = tree.len();
            let entry = LogEntry::decode(bytes).map_err(|e| format!("entry {index}: {e}"))?;
            entry
                .verify_signature(&signed.checkpoint.origin)
                .map_err(|e| format!("entry {index}: {e}"))?;
            if !entry.timely() {
                return Err(format!("entry {index} breaks the expiration rule"));
            }
            if !seen.insert(entry.tid()) {
                return Err(format!("entry {index}: second outcome for {}", entry.tid()));
            }
            let leaf = merkle::leaf_hash(bytes);
            if storage.tid_index(&entry.tid()).map_err(|e| e.to_string())? != Some(index) {
                return Err(format!("TID index wrong for entry {index}"));
            }
            if storage.leaf_index(&leaf).map_err(|e| e.to_string())? != Some(index) {
                return Err(format!("leaf index wrong for entry {index}"));
            }
            tree.push(leaf);
        }
    }
    if tree.root() != signed.checkpoint.root {
        return Err(format!(
            "root of the {size} stored entries differs from the checkpoint"
        ));
    }
    let mut level = 0u8;
    loop {
        let count = size >> (8 * u32::from(level));
        if count == 0 {
            break;
        }
        for index in 0..count.div_ceil(TILE_WIDTH) {
            let width = tile::tile_width(level, index, size) as usize;
            let bytes = storage
                .tile(level, index)
                .map_err(|e| e.to_string())?
                .ok_or(format!("tile {level}/{index} missing"))?;
            let hashes = tile::tile_hashes(&bytes).map_err(|e| e.to_string())?;
            for (i, h) in hashes.iter().take(width).enumerate() {
                let node = index * TILE_WIDTH + i as u64;
                if *h != tree.subtree_hash(8 * level, node) {
                    return Err(format!("tile {level}/{index} hash {i} is wrong"));
                }
            }
            if hashes.len() < width {
                return Err(format!("tile {level}/{index} is short"));
            }
        }
        level += 1;
    }
    Ok(size)
}
