//! The log's JSON API: appends (P4 commit, abort), proofs (inclusion by
//! index or leaf hash, consistency), entries by range, and the customer's
//! query by TID (Q1/Q2). The C2SP read path is in [`crate::read_path`].

use std::collections::HashSet;
use std::sync::Arc;

use acd_core::entry::{EscrowNotice, KeyCommit, Tid};
use acd_core::log_api::{
    AbortRequest, CommitRequest, ConsistencyProof, Entries, EntryProof, IndexedEntry,
};
use acd_core::merkle::{Hash, ProveError};
use acd_core::note::NoteVerifier;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use crate::error::ApiError;
use crate::sequencer::{Append, Published, SequencerHandle, entry_proof};
use crate::storage::{Storage, StorageError};
use crate::tree::TreeReader;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub sequencer: SequencerHandle,
    pub storage: Arc<dyn Storage>,
    pub origin: Arc<str>,
    pub verifier: NoteVerifier,
    pub trusted_banks: Arc<HashSet<[u8; 32]>>,
    pub max_entries_per_request: u64,
    /// With witnesses: the checkpoint `/checkpoint` serves, cosigned.
    pub cosigned: Option<tokio::sync::watch::Receiver<Arc<crate::witnessing::Cosigned>>>,
    pub metrics: Arc<crate::metrics::LogMetrics>,
}

fn prove_error(e: ProveError<StorageError>) -> ApiError {
    match e {
        ProveError::Source(e) => e.into(),
        other => ApiError::bad("out_of_range", other.to_string()),
    }
}

/// `POST /api/v1/commit`: P4, the merchant's key commit.
pub async fn commit(
    State(state): State<AppState>,
    body: Result<Json<CommitRequest>, JsonRejection>,
) -> Result<Json<EntryProof>, ApiError> {
    let Json(req) = body?;
    KeyCommit {
        log_origin: state.origin.to_string(),
        tid: req.tid,
        merchant: req.merchant,
        expiration_ms: req.expiration_ms,
        key: req.key,
    }
    .verify(&req.signature)
    .map_err(|e| ApiError::bad("bad_signature", e.to_string()))?;
    Ok(Json(state.sequencer.append(Append::Commit(req)).await?))
}

/// `POST /api/v1/abort`: the bank's escrow notice for an expired TID.
pub async fn abort(
    State(state): State<AppState>,
    body: Result<Json<AbortRequest>, JsonRejection>,
) -> Result<Json<EntryProof>, ApiError> {
    let Json(req) = body?;
    if !state.trusted_banks.contains(&req.bank) {
        return Err(ApiError::Forbidden {
            code: "untrusted_bank",
            message: format!(
                "bank key {} is not trusted by this log",
                hex::encode(req.bank)
            ),
        });
    }
    EscrowNotice {
        log_origin: state.origin.to_string(),
        tid: req.tid,
        merchant: req.merchant,
        expiration_ms: req.expiration_ms,
    }
    .verify(&req.bank, &req.signature)
    .map_err(|e| ApiError::bad("bad_signature", e.to_string()))?;
    Ok(Json(state.sequencer.append(Append::Abort(req)).await?))
}

/// The tree a proof answers under: the stored checkpoint of the requested
/// size, or else the newest checkpoint that holds `index`. Checkpoints that
/// went through a witness round are given with their cosignatures, so that
/// clients whose witness policy needs them can use the proof as it is.
fn tree_at(state: &AppState, size: Option<u64>, index: u64) -> Result<Published, ApiError> {
    let latest = state.sequencer.published();
    let cosigned = state.cosigned.as_ref().map(|c| c.borrow().clone());
    let as_published = |c: &crate::witnessing::Cosigned| Published {
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
        return Err(ApiError::bad(
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
    let stored = state.storage.checkpoint_at(size)?.ok_or_else(|| {
        ApiError::not_found(
            "no_checkpoint",
            format!("no checkpoint was published at size {size}"),
        )
    })?;
    let parsed = acd_core::checkpoint::SignedCheckpoint::open(&stored.note, &state.verifier)
        .map_err(|e| ApiError::Internal(format!("stored checkpoint {size}: {e}")))?;
    Ok(Published {
        size,
        root: parsed.checkpoint.root,
        checkpoint: stored.note,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    index: Option<u64>,
    leaf_hash: Option<String>,
    size: Option<u64>,
}

fn parse_hash(s: &str) -> Result<Hash, ApiError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| ApiError::bad("bad_hash", "leaf_hash must be 64 hex digits"))?;
    Ok(out)
}

/// `GET /api/v1/inclusion?index=I` or `?leaf_hash=H`, optionally `&size=N`
/// for an earlier published checkpoint.
pub async fn inclusion(
    State(state): State<AppState>,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<EntryProof>, ApiError> {
    let Query(q) = query?;
    let index = match (q.index, q.leaf_hash.as_deref()) {
        (Some(i), None) => i,
        (None, Some(h)) => state
            .storage
            .leaf_index(&parse_hash(h)?)?
            .ok_or_else(|| ApiError::not_found("unknown_leaf", "no entry has this leaf hash"))?,
        _ => {
            return Err(ApiError::bad(
                "bad_query",
                "give exactly one of index and leaf_hash",
            ));
        }
    };
    let tree = tree_at(&state, q.size, index)?;
    if index >= tree.size {
        return Err(ApiError::not_found(
            "out_of_range",
            format!("index {index} is not in the tree of size {}", tree.size),
        ));
    }
    let mut reader = TreeReader::new(&*state.storage, tree.size);
    let entry = reader.entry(index)?;
    Ok(Json(entry_proof(&mut reader, &tree, index, entry)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

/// `GET /api/v1/consistency?from=M&to=N` (N defaults to the published size).
pub async fn consistency(
    State(state): State<AppState>,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let Query(q) = query?;
    let published = state.sequencer.published().size;
    let to = q.to.unwrap_or(published);
    if to > published || q.from > to {
        return Err(ApiError::bad(
            "out_of_range",
            format!(
                "need from <= to <= {published}; got from={} to={to}",
                q.from
            ),
        ));
    }
    let mut reader = TreeReader::new(&*state.storage, to);
    let proof = reader.consistency(q.from).map_err(prove_error)?;
    Ok(Json(ConsistencyProof {
        from: q.from,
        to,
        proof,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    start: u64,
    end: u64,
}

/// `GET /api/v1/entries?start=S&end=E`: entries S..E (end exclusive).
pub async fn entries(
    State(state): State<AppState>,
    query: Result<Query<EntriesQuery>, QueryRejection>,
) -> Result<Json<Entries>, ApiError> {
    let Query(q) = query?;
    let size = state.sequencer.published().size;
    if q.start > q.end || q.end > size {
        return Err(ApiError::bad(
            "out_of_range",
            format!(
                "need start <= end <= {size}; got start={} end={}",
                q.start, q.end
            ),
        ));
    }
    if q.end - q.start > state.max_entries_per_request {
        return Err(ApiError::bad(
            "too_many",
            format!(
                "at most {} entries per request",
                state.max_entries_per_request
            ),
        ));
    }
    let mut out = Vec::new();
    let mut index = q.start;
    while index < q.end {
        let bundle_index = index / acd_core::tile::TILE_WIDTH;
        let bytes = state
            .storage
            .bundle(bundle_index)?
            .ok_or_else(|| ApiError::Internal(format!("missing entry bundle {bundle_index}")))?;
        let bundle = acd_core::tile::decode_bundle(&bytes)
            .map_err(|e| ApiError::Internal(format!("entry bundle {bundle_index}: {e}")))?;
        while index < q.end && index / acd_core::tile::TILE_WIDTH == bundle_index {
            let entry = bundle
                .get((index % acd_core::tile::TILE_WIDTH) as usize)
                .ok_or_else(|| ApiError::Internal(format!("entry {index} missing")))?;
            out.push(IndexedEntry {
                index,
                entry: entry.to_vec(),
            });
            index += 1;
        }
    }
    Ok(Json(Entries { entries: out }))
}

/// `GET /tx/<TID>`: the outcome for a TID with its inclusion proof (Q1/Q2),
/// under the newest cosigned checkpoint that holds it (see [`tree_at`]).
pub async fn transaction(
    State(state): State<AppState>,
    tid: Result<Path<String>, PathRejection>,
) -> Result<Json<EntryProof>, ApiError> {
    let Path(tid) = tid?;
    let tid: Tid = tid
        .parse()
        .map_err(|e: acd_core::entry::EntryError| ApiError::bad("bad_tid", e.to_string()))?;
    let published = state.sequencer.published().size;
    let index = state
        .storage
        .tid_index(&tid)?
        .filter(|i| *i < published)
        .ok_or_else(|| ApiError::not_found("unknown_tid", format!("TID {tid} has no outcome")))?;
    let tree = tree_at(&state, None, index)?;
    let mut reader = TreeReader::new(&*state.storage, tree.size);
    let entry = reader.entry(index)?;
    Ok(Json(entry_proof(&mut reader, &tree, index, entry)?))
}
