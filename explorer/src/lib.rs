//! The log explorer's verifier: what the browser page (`explorer/web/`)
//! checks, done by the protocol core itself (`acd-core`) compiled to
//! WebAssembly, not by a second implementation in JavaScript.
//!
//! One call, [`call`]: a JSON request naming an `op`, a JSON answer
//! `{"ok": ...}` or `{"error": "..."}`. The ops are the explorer's checks:
//!
//! - `checkpoint`: a signed checkpoint (C2SP tlog-checkpoint) under the
//!   log's key, each cosignature (C2SP tlog-cosignature) against the
//!   witnesses the page trusts, and the checkpoint against the last one the
//!   page saw (RFC 9162 consistency): a split view is answered with both
//!   signed notes.
//! - `entry`: a TID's outcome with its inclusion proof (paper Q1/Q2: the
//!   answer of `GET /tx/<TID>`).
//! - `entries`: log entries decoded for browsing, each entry's own
//!   signature checked.
//! - `bundle`: a proof bundle (`acd wallet proof`), checked offline:
//!   certified delivery.
//! - `consistency_tiles` / `consistency_from_tiles`, `entry_bundles` /
//!   `bundle_entries`: the same checks on a mirror that serves only the
//!   C2SP read path (C2SP tlog-tiles): which tiles to fetch, then the RFC
//!   9162 consistency proof computed from them (checked by `checkpoint`
//!   like one from the API, so a mirror is trusted no more than the log),
//!   and the entries of the entry bundles.
//!
//! Nothing here does I/O: the page fetches, this module decides.

use acd_core::bundle::ProofBundle;
use acd_core::checkpoint::SignedCheckpoint;
use acd_core::cosignature::CosignatureVerifier;
use acd_core::entry::{LogEntry, Outcome};
use acd_core::log_api::{EntryProof, IndexedEntry};
use acd_core::merkle::{self, Hash};
use acd_core::note::NoteVerifier;
use acd_core::proof::{LogView, ProofError, WitnessPolicy, verify_entry_proof};
use acd_core::tile::{
    TILE_WIDTH, TileId, TilePath, decode_bundle, node_location, subtree_hash_from_tile,
    tile_hashes, tile_width,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[cfg(target_arch = "wasm32")]
mod abi;

/// What the page trusts: the log's key (`name+id+key`), the witnesses'
/// cosignature keys, and how many of them must have cosigned.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    pub log: String,
    #[serde(default)]
    pub witnesses: Vec<String>,
    #[serde(default)]
    pub threshold: usize,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Checkpoint {
        note: String,
        trust: Trust,
        /// The last checkpoint the page accepted for this log, if any.
        #[serde(default)]
        previous: Option<String>,
        /// Hex hashes of the consistency proof the previous answer asked
        /// for (`needs_consistency`).
        #[serde(default)]
        consistency: Option<Vec<String>>,
    },
    Entry {
        proof: EntryProof,
        trust: Trust,
    },
    Entries {
        origin: String,
        entries: Vec<IndexedEntry>,
    },
    Bundle {
        bundle: ProofBundle,
        trust: Trust,
    },
    ConsistencyTiles {
        from: u64,
        to: u64,
    },
    ConsistencyFromTiles {
        from: u64,
        to: u64,
        /// Hex contents by tile path, as `consistency_tiles` named them.
        tiles: std::collections::BTreeMap<String, String>,
    },
    EntryBundles {
        start: u64,
        end: u64,
        size: u64,
    },
    BundleEntries {
        origin: String,
        start: u64,
        end: u64,
        /// Hex contents of the bundles `entry_bundles` named, in order.
        bundles: Vec<String>,
    },
}

/// Runs one JSON request; always answers JSON, never panics on input.
pub fn call(request: &[u8]) -> Vec<u8> {
    let answer = match serde_json::from_slice::<Request>(request) {
        Ok(req) => match run(req) {
            Ok(v) => json!({ "ok": v }),
            Err(e) => json!({ "error": e }),
        },
        Err(e) => json!({ "error": format!("bad request: {e}") }),
    };
    // Serializing a `Value` cannot fail; an empty answer would be read as
    // an error by the page.
    serde_json::to_vec(&answer).unwrap_or_default()
}

fn run(req: Request) -> Result<Value, String> {
    match req {
        Request::Checkpoint {
            note,
            trust,
            previous,
            consistency,
        } => checkpoint(&note, &trust, previous.as_deref(), consistency.as_deref()),
        Request::Entry { proof, trust } => entry(&proof, &trust),
        Request::Entries { origin, entries } => Ok(entries_answer(&origin, &entries)),
        Request::Bundle { bundle, trust } => bundle_answer(&bundle, &trust),
        Request::ConsistencyTiles { from, to } => consistency_tiles(from, to),
        Request::ConsistencyFromTiles { from, to, tiles } => {
            consistency_from_tiles(from, to, &tiles)
        }
        Request::EntryBundles { start, end, size } => entry_bundles(start, end, size),
        Request::BundleEntries {
            origin,
            start,
            end,
            bundles,
        } => bundle_entries(&origin, start, end, &bundles),
    }
}

/// The hash tile of the tree of `size` that holds node (`level`, `index`):
/// its path for that size, and the full tile's path, which a mirror serves
/// instead once the tree has grown past it (it holds the same hashes first).
fn hash_tile(level: u8, index: u64, size: u64) -> (String, String) {
    let (tile_level, tile_index, _, _) = node_location(level, index);
    let width = tile_width(tile_level, tile_index, size);
    let path = |width: u64| {
        TilePath::Hashes(TileId {
            level: tile_level,
            index: tile_index,
            width: width as u16,
        })
        .to_path()
    };
    (path(width), path(TILE_WIDTH))
}

fn sizes(from: u64, to: u64) -> Result<(), String> {
    if from == 0 || from >= to {
        return Err(format!(
            "no consistency proof is needed from {from} to {to}"
        ));
    }
    Ok(())
}

fn consistency_tiles(from: u64, to: u64) -> Result<Value, String> {
    sizes(from, to)?;
    let mut tiles: Vec<(String, String)> = Vec::new();
    merkle::consistency_proof(from, to, |level, index| {
        let t = hash_tile(level, index, to);
        if !tiles.contains(&t) {
            tiles.push(t);
        }
        Ok::<Hash, ()>([0; 32])
    })
    .map_err(|e| format!("{e:?}"))?;
    let list: Vec<Value> = tiles
        .into_iter()
        .map(|(path, full)| json!({"path": path, "full": full}))
        .collect();
    Ok(json!({ "tiles": list }))
}

fn consistency_from_tiles(
    from: u64,
    to: u64,
    tiles: &std::collections::BTreeMap<String, String>,
) -> Result<Value, String> {
    sizes(from, to)?;
    let proof = merkle::consistency_proof(from, to, |level, index| {
        let (path, full) = hash_tile(level, index, to);
        let text = tiles
            .get(&path)
            .or_else(|| tiles.get(&full))
            .ok_or_else(|| format!("{path} was not fetched"))?;
        let bytes = hex::decode(text).map_err(|_| format!("{path}: not hex"))?;
        let hashes = tile_hashes(&bytes).map_err(|e| format!("{path}: {e}"))?;
        subtree_hash_from_tile(&hashes, level, index).map_err(|e| format!("{path}: {e}"))
    })
    .map_err(|e| match e {
        merkle::ProveError::Source(s) => s,
        other => other.to_string(),
    })?;
    Ok(json!({ "proof": proof.iter().map(hex::encode).collect::<Vec<_>>() }))
}

/// At most this many entries per `entry_bundles` request, as the API's.
const MAX_ENTRIES: u64 = 1000;

fn entry_bundles(start: u64, end: u64, size: u64) -> Result<Value, String> {
    if start >= end || end > size || end - start > MAX_ENTRIES {
        return Err(format!(
            "entries {start}..{end} of a tree of {size}: at most {MAX_ENTRIES}, inside the tree"
        ));
    }
    let list: Vec<Value> = (start / TILE_WIDTH..=(end - 1) / TILE_WIDTH)
        .map(|n| {
            let width = size.saturating_sub(n * TILE_WIDTH).min(TILE_WIDTH);
            let path = |width: u64| {
                TilePath::Entries {
                    index: n,
                    width: width as u16,
                }
                .to_path()
            };
            json!({"index": n, "path": path(width), "full": path(TILE_WIDTH)})
        })
        .collect();
    Ok(json!({ "bundles": list }))
}

fn bundle_entries(origin: &str, start: u64, end: u64, bundles: &[String]) -> Result<Value, String> {
    if start >= end || end - start > MAX_ENTRIES {
        return Err(format!("entries {start}..{end}: at most {MAX_ENTRIES}"));
    }
    let first = start / TILE_WIDTH;
    let mut entries = Vec::new();
    for (i, text) in bundles.iter().enumerate() {
        let n = first + i as u64;
        let bytes = hex::decode(text).map_err(|_| format!("entry bundle {n}: not hex"))?;
        let decoded = decode_bundle(&bytes).map_err(|e| format!("entry bundle {n}: {e}"))?;
        for (j, entry) in decoded.iter().enumerate() {
            let index = n * TILE_WIDTH + j as u64;
            if (start..end).contains(&index) {
                entries.push(IndexedEntry {
                    index,
                    entry: entry.to_vec(),
                });
            }
        }
    }
    if entries.len() as u64 != end - start {
        return Err(format!(
            "the entry bundles hold {} of the entries {start}..{end}",
            entries.len()
        ));
    }
    Ok(entries_answer(origin, &entries))
}

struct Trusted {
    log: NoteVerifier,
    witnesses: Vec<CosignatureVerifier>,
    policy: WitnessPolicy,
}

fn trusted(trust: &Trust) -> Result<Trusted, String> {
    let log = NoteVerifier::from_vkey(trust.log.trim())
        .map_err(|e| format!("the log's key {:?}: {e}", trust.log))?;
    let witnesses = trust
        .witnesses
        .iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
        .map(|w| {
            CosignatureVerifier::from_vkey(w).map_err(|e| format!("the witness key {w:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if trust.threshold > witnesses.len() {
        return Err(format!(
            "the policy asks for {} cosignatures but names {} witnesses",
            trust.threshold,
            witnesses.len()
        ));
    }
    let policy = WitnessPolicy::new(trust.threshold, witnesses.clone());
    Ok(Trusted {
        log,
        witnesses,
        policy,
    })
}

/// Every signature line of a checkpoint: the log's, each configured
/// witness's (verified or not), and lines from keys the page does not know.
fn signatures(cp: &SignedCheckpoint, t: &Trusted) -> Vec<Value> {
    cp.note
        .signatures
        .iter()
        .map(|sig| {
            let key_id = format!("{:08x}", sig.key_id);
            if sig.name == t.log.name() && sig.key_id == t.log.key_id() {
                return json!({"name": sig.name, "key_id": key_id, "role": "log", "type": "ed25519",
                    "verified": t.log.verifies(&cp.note, sig)});
            }
            match t
                .witnesses
                .iter()
                .find(|w| w.name() == sig.name && w.key_id() == sig.key_id)
            {
                Some(w) => match w.verify(&cp.note, sig) {
                    Some(ts) => json!({"name": sig.name, "key_id": key_id, "role": "witness",
                        "type": w.kind().as_str(), "verified": true, "timestamp": ts}),
                    None => json!({"name": sig.name, "key_id": key_id, "role": "witness",
                        "type": w.kind().as_str(), "verified": false}),
                },
                None => json!({"name": sig.name, "key_id": key_id, "role": "unknown",
                    "verified": false}),
            }
        })
        .collect()
}

fn describe(cp: &SignedCheckpoint, t: &Trusted) -> Value {
    let c = &cp.checkpoint;
    let cosigned = acd_core::cosignature::cosigners(&cp.note, &t.witnesses).len();
    json!({
        "origin": c.origin,
        "size": c.size,
        "root": hex::encode(c.root),
        "extensions": c.extensions,
        "note": cp.note.to_text(),
        "signatures": signatures(cp, t),
        "cosigned": cosigned,
        "threshold": t.policy.threshold,
        "policy_met": t.policy.check(cp).is_ok(),
    })
}

fn open(note: &str, t: &Trusted) -> Result<SignedCheckpoint, String> {
    SignedCheckpoint::open(note, &t.log).map_err(|e| format!("checkpoint: {e}"))
}

fn hashes(hex_hashes: &[String]) -> Result<Vec<Hash>, String> {
    hex_hashes
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out)
                .map_err(|e| format!("consistency proof hash {h:?}: {e}"))?;
            Ok(out)
        })
        .collect()
}

fn checkpoint(
    note: &str,
    trust: &Trust,
    previous: Option<&str>,
    consistency: Option<&[String]>,
) -> Result<Value, String> {
    let t = trusted(trust)?;
    let cp = open(note, &t)?;
    let mut answer = describe(&cp, &t);
    let view = match previous {
        None => json!({"state": "first"}),
        Some(prev_text) => match open(prev_text, &t) {
            // The page's stored checkpoint is not under the key it trusts
            // now (the key was changed): nothing to compare with.
            Err(e) => json!({"state": "first", "reason": format!("the stored checkpoint: {e}")}),
            Ok(prev) if prev.checkpoint.origin != cp.checkpoint.origin => {
                json!({"state": "first", "reason": "the stored checkpoint is of another origin"})
            }
            Ok(prev) => compare(&prev, &cp, consistency)?,
        },
    };
    if let Some(obj) = answer.as_object_mut() {
        obj.insert("view".into(), view);
    }
    Ok(answer)
}

fn compare(
    prev: &SignedCheckpoint,
    cp: &SignedCheckpoint,
    consistency: Option<&[String]>,
) -> Result<Value, String> {
    let mut view = LogView::new(Some(prev.clone()));
    let needed = view.proof_needed(cp);
    let proof = match (needed, consistency) {
        (Some((from, to)), None) => {
            return Ok(json!({"state": "needs_consistency", "from": from, "to": to}));
        }
        (Some(_), Some(p)) => hashes(p)?,
        (None, _) => Vec::new(),
    };
    let (a, b) = (prev.checkpoint.size, cp.checkpoint.size);
    Ok(match view.accept(cp, &proof) {
        Ok(true) => json!({"state": "newer", "from": a}),
        Ok(false) if a == b => json!({"state": "same"}),
        Ok(false) => json!({"state": "older", "latest": a}),
        Err(e) => {
            // Two signed roots for one size prove a fork on their own; a
            // consistency proof that fails is the log's own unsigned answer,
            // so it shows either a fork or a broken server.
            let definite = matches!(e, ProofError::SplitView { .. });
            json!({"state": "split", "definite": definite, "reason": e.to_string(),
                "previous": prev.note.to_text(), "current": cp.note.to_text()})
        }
    })
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Commit => "commit",
        Outcome::Abort => "abort",
    }
}

fn entry_fields(e: &LogEntry) -> Value {
    json!({
        "outcome": outcome_name(e.outcome()),
        "tid": e.tid().to_string(),
        "merchant": hex::encode(e.merchant()),
        "timestamp_ms": e.timestamp_ms(),
        "expiration_ms": e.expiration_ms(),
        "timely": e.timely(),
    })
}

fn entry(proof: &EntryProof, trust: &Trust) -> Result<Value, String> {
    let t = trusted(trust)?;
    let v = verify_entry_proof(proof, &t.log, &t.policy).map_err(|e| e.to_string())?;
    let mut answer = entry_fields(&v.entry);
    if let Some(obj) = answer.as_object_mut() {
        obj.insert("index".into(), json!(proof.index));
        obj.insert("leaf_hash".into(), json!(hex::encode(proof.leaf_hash)));
        obj.insert("inclusion".into(), json!(proof.inclusion.len()));
        obj.insert("checkpoint".into(), describe(&v.checkpoint, &t));
    }
    Ok(answer)
}

fn entries_answer(origin: &str, entries: &[IndexedEntry]) -> Value {
    let list: Vec<Value> = entries
        .iter()
        .map(|ie| match LogEntry::decode(&ie.entry) {
            Ok(e) => {
                let mut v = entry_fields(&e);
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("index".into(), json!(ie.index));
                    obj.insert(
                        "signature_ok".into(),
                        json!(e.verify_signature(origin).is_ok()),
                    );
                }
                v
            }
            Err(err) => json!({"index": ie.index, "error": err.to_string()}),
        })
        .collect();
    json!({ "entries": list })
}

fn bundle_answer(bundle: &ProofBundle, trust: &Trust) -> Result<Value, String> {
    let t = trusted(trust)?;
    let v = bundle
        .verify(&t.log, &t.policy)
        .map_err(|e| e.to_string())?;
    let offer = &bundle.offer.offer;
    let mut answer = entry_fields(&v.entry);
    if let Some(obj) = answer.as_object_mut() {
        obj.insert("index".into(), json!(v.index));
        obj.insert("description".into(), json!(offer.description));
        obj.insert("price".into(), json!(offer.price));
        obj.insert("key".into(), json!(hex::encode(v.key)));
        obj.insert(
            "plaintext_hash".into(),
            json!(hex::encode(offer.plaintext_hash)),
        );
        obj.insert(
            "ciphertext_hash".into(),
            json!(hex::encode(offer.ciphertext_hash)),
        );
        obj.insert("checkpoint".into(), describe(&v.checkpoint, &t));
    }
    Ok(answer)
}

/// What the answers look like to Rust callers (tests, and anyone embedding
/// the explorer's checks natively).
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    #[serde(default)]
    pub ok: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
