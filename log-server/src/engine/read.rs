//! The C2SP tlog-tiles read path (<https://c2sp.org/tlog-tiles>): the signed
//! checkpoint, hash tiles and entry bundles, byte for byte as the spec lays
//! them out, so that any static file server or CDN could serve them.
//!
//! Only what a published checkpoint covers is served: a tile or bundle past
//! the published size is not found, so nothing not yet durable ever leaves
//! the log.

use acd_core::error::DomainError;
use acd_core::tile::{self, TilePath};

use super::Engine;
use crate::storage::Storage;

impl Engine {
    /// The latest checkpoint that went through a witness round, with the
    /// cosignatures collected (the latest published one when no witness is
    /// configured).
    pub fn checkpoint(&self) -> String {
        match &self.cosigned {
            Some(cosigned) => cosigned.borrow().note.clone(),
            None => self.sequencer.published().checkpoint.clone(),
        }
    }

    /// The bytes at `tile/<path>`: a hash tile `<L>/<N>[.p/<W>]` or an
    /// entry bundle `entries/<N>[.p/<W>]`, cut to the published width.
    pub fn tile(&self, path: &str) -> Result<Vec<u8>, DomainError> {
        // The route already consumed the `tile/` prefix: re-adding it means
        // a second `tile/` (as in /tile/tile/0/000) is not an alias.
        let parsed = tile::parse_tile_path(&format!("tile/{path}"))
            .map_err(|e| DomainError::not_found("bad_tile_path", e.to_string()))?;
        tile_bytes(&*self.storage, parsed, self.sequencer.published().size)
    }
}

/// The bytes at tile path `parsed` in the tree of `size` (a published
/// size): what the read path serves there, and what the publisher
/// ([`crate::publish`]) writes to its target.
pub fn tile_bytes(
    storage: &dyn Storage,
    parsed: TilePath,
    size: u64,
) -> Result<Vec<u8>, DomainError> {
    let full = parsed.to_path();
    let path = full.strip_prefix("tile/").unwrap_or(&full);
    match parsed {
        TilePath::Hashes(id) => {
            let wanted = u64::from(id.width);
            let available = tile::tile_width(id.level, id.index, size);
            if wanted > available {
                return Err(DomainError::not_found(
                    "no_such_tile",
                    format!("tile {path} is not published"),
                ));
            }
            let bytes = storage.tile(id.level, id.index)?.ok_or_else(|| {
                DomainError::internal(format!("published tile {path} missing from storage"))
            })?;
            let len = (wanted as usize) * 32;
            let slice = bytes
                .get(..len)
                .ok_or_else(|| DomainError::internal(format!("stored tile {path} is short")))?;
            Ok(slice.to_vec())
        }
        TilePath::Entries { index, width } => {
            let wanted = u64::from(width);
            if wanted > tile::tile_width(0, index, size) {
                return Err(DomainError::not_found(
                    "no_such_bundle",
                    format!("entry bundle {path} is not published"),
                ));
            }
            let bytes = storage.bundle(index)?.ok_or_else(|| {
                DomainError::internal(format!("published bundle {path} missing from storage"))
            })?;
            let entries = tile::decode_bundle(&bytes)
                .map_err(|e| DomainError::internal(format!("stored bundle {path}: {e}")))?;
            let kept = entries
                .get(..wanted as usize)
                .ok_or_else(|| DomainError::internal(format!("stored bundle {path} is short")))?;
            tile::encode_bundle(kept)
                .map_err(|e| DomainError::internal(format!("bundle {path}: {e}")))
        }
    }
}
