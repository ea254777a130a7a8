//! The log's answers to readers: Q1/Q2, the outcome of a TID with its
//! inclusion proof (how the customer learns the key of P6, or that the
//! transaction was aborted); inclusion proofs by index or leaf hash and
//! consistency proofs between two sizes (RFC 9162 §2.1.3, §2.1.4); entries
//! by range. Proofs answer under a published checkpoint, with the
//! witnesses' cosignatures when it went through a witness round.

use acd_core::checkpoint::SignedCheckpoint;
use acd_core::entry::{EntryError, Tid};
use acd_core::error::DomainError;
use acd_core::log_api::{ConsistencyProof, Entries, EntryProof, IndexedEntry};
use acd_core::merkle::{Hash, ProveError};
use acd_core::tile::{self, TILE_WIDTH};
use serde::Deserialize;

use super::Engine;
use crate::sequencer::{Published, entry_proof};
use crate::storage::StorageError;
use crate::tree::TreeReader;
use crate::witnessing::Cosigned;

/// `?index=I` or `?leaf_hash=H` (exactly one), optionally `&size=N` for an
/// earlier published checkpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    pub index: Option<u64>,
    pub leaf_hash: Option<String>,
    pub size: Option<u64>,
}

/// `?from=M&to=N`; `to` defaults to the published size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub from: u64,
    pub to: Option<u64>,
}

/// `?start=S&end=E`: entries S..E, end exclusive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    pub start: u64,
    pub end: u64,
}

fn prove_error(e: ProveError<StorageError>) -> DomainError {
    match e {
        ProveError::Source(e) => e.into(),
        other => DomainError::bad("out_of_range", other.to_string()),
    }
}

fn parse_hash(s: &str) -> Result<Hash, DomainError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| DomainError::bad("bad_hash", "leaf_hash must be 64 hex digits"))?;
    Ok(out)
}

impl Engine {
    /// Q1/Q2: the outcome for `tid` with its inclusion proof, under the
    /// newest cosigned checkpoint that holds it (see `Engine::tree_at`).
    pub fn transaction(&self, tid: &str) -> Result<EntryProof, DomainError> {
        let tid: Tid = tid
            .parse()
            .map_err(|e: EntryError| DomainError::bad("bad_tid", e.to_string()))?;
        let published = self.sequencer.published().size;
        let index = self
            .storage
            .tid_index(&tid)?
            .filter(|i| *i < published)
            .ok_or_else(|| {
                DomainError::not_found("unknown_tid", format!("TID {tid} has no outcome"))
            })?;
        let tree = self.tree_at(None, index)?;
        self.prove(&tree, index)
    }

    /// The inclusion proof of one entry, by index or by leaf hash.
    pub fn inclusion(&self, q: &InclusionQuery) -> Result<EntryProof, DomainError> {
        let index = match (q.index, q.leaf_hash.as_deref()) {
            (Some(i), None) => i,
            (None, Some(h)) => self.storage.leaf_index(&parse_hash(h)?)?.ok_or_else(|| {
                DomainError::not_found("unknown_leaf", "no entry has this leaf hash")
            })?,
            _ => {
                return Err(DomainError::bad(
                    "bad_query",
                    "give exactly one of index and leaf_hash",
                ));
            }
        };
        let tree = self.tree_at(q.size, index)?;
        if index >= tree.size {
            return Err(DomainError::not_found(
                "out_of_range",
                format!("index {index} is not in the tree of size {}", tree.size),
            ));
        }
        self.prove(&tree, index)
    }

    /// The consistency proof between two published sizes.
    pub fn consistency(&self, q: &ConsistencyQuery) -> Result<ConsistencyProof, DomainError> {
        let published = self.sequencer.published().size;
        let to = q.to.unwrap_or(published);
        if to > published || q.from > to {
            return Err(DomainError::bad(
                "out_of_range",
                format!(
                    "need from <= to <= {published}; got from={} to={to}",
                    q.from
                ),
            ));
        }
        let mut reader = TreeReader::new(&*self.storage, to);
        let proof = reader.consistency(q.from).map_err(prove_error)?;
        Ok(ConsistencyProof {
            from: q.from,
            to,
            proof,
        })
    }

    /// The published entries `start..end`, at most
    /// `max_entries_per_request` of them.
    pub fn entries(&self, q: &EntriesQuery) -> Result<Entries, DomainError> {
        let size = self.sequencer.published().size;
        if q.start > q.end || q.end > size {
            return Err(DomainError::bad(
                "out_of_range",
                format!(
                    "need start <= end <= {size}; got start={} end={}",
                    q.start, q.end
                ),
            ));
        }
        if q.end - q.start > self.max_entries_per_request {
            return Err(DomainError::bad(
                "too_many",
                format!(
                    "at most {} entries per request",
                    self.max_entries_per_request
                ),
            ));
        }
        let mut out = Vec::new();
        let mut index = q.start;
        while index < q.end {
            let bundle_index = index / TILE_WIDTH;
            let bytes = self.storage.bundle(bundle_index)?.ok_or_else(|| {
                DomainError::internal(format!("missing entry bundle {bundle_index}"))
            })?;
            let bundle = tile::decode_bundle(&bytes)
                .map_err(|e| DomainError::internal(format!("entry bundle {bundle_index}: {e}")))?;
            while index < q.end && index / TILE_WIDTH == bundle_index {
                let entry = bundle
                    .get((index % TILE_WIDTH) as usize)
                    .ok_or_else(|| DomainError::internal(format!("entry {index} missing")))?;
                out.push(IndexedEntry {
                    index,
                    entry: entry.to_vec(),
                });
                index += 1;
            }
        }
        Ok(Entries { entries: out })
    }

    /// Entry `index` with its inclusion proof under `tree`.
    fn prove(&self, tree: &Published, index: u64) -> Result<EntryProof, DomainError> {
        let mut reader = TreeReader::new(&*self.storage, tree.size);
        let entry = reader.entry(index)?;
        Ok(entry_proof(&mut reader, tree, index, entry)?)
    }

    /// The tree a proof answers under: the stored checkpoint of the
    /// requested size, or else the newest checkpoint that holds `index`.
    /// Checkpoints that went through a witness round are given with their
    /// cosignatures, so that clients whose witness policy needs them can
    /// use the proof as it is.
    fn tree_at(&self, size: Option<u64>, index: u64) -> Result<Published, DomainError> {
        let latest = self.sequencer.published();
        let cosigned = self.cosigned.as_ref().map(|c| c.borrow().clone());
        let as_published = |c: &Cosigned| Published {
            size: c.size,
            root: c.root,
            checkpoint: c.note.clone(),
        };
        let Some(size) = size else {
            return Ok(match cosigned {
                Some(c) if c.size > index && c.size <= latest.size => as_published(&c),
                _ => (*latest).clone(),
            });
        };
        if size > latest.size {
            return Err(DomainError::bad(
                "out_of_range",
                format!("size {size} is beyond the published size {}", latest.size),
            ));
        }
        if let Some(c) = cosigned.filter(|c| c.size == size) {
            return Ok(as_published(&c));
        }
        if size == latest.size {
            return Ok((*latest).clone());
        }
        let stored = self.storage.checkpoint_at(size)?.ok_or_else(|| {
            DomainError::not_found(
                "no_checkpoint",
                format!("no checkpoint was published at size {size}"),
            )
        })?;
        let parsed = SignedCheckpoint::open(&stored.note, &self.verifier)
            .map_err(|e| DomainError::internal(format!("stored checkpoint {size}: {e}")))?;
        Ok(Published {
            size,
            root: parsed.checkpoint.root,
            checkpoint: stored.note,
        })
    }
}
