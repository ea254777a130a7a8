//! The monitor: follows a log through the C2SP tlog-tiles read path only
//! (checkpoint, tiles, entry bundles), so it works against any static
//! mirror. For every new checkpoint it checks the signature and a
//! consistency proof it computes itself from tiles against the last
//! checkpoint it verified; then it audits the new entries: each one's leaf
//! hash equals the level-0 tile, the entries hash to the checkpoint's root,
//! and the protocol's invariants 3 and 4 hold (one outcome per TID; a
//! commit signed by its merchant and logged before its expiration, an abort
//! signed by a bank and logged at or after it). State is in sled, so a
//! restarted monitor resumes where it stopped and each checkpoint costs only
//! its new entries.
//!
//! A violation is written as an evidence file ([`acd_core::evidence`]): the
//! signed checkpoints involved, and for entries their bytes with inclusion
//! proofs computed from the tiles, so that the file convinces a third party
//! offline. [`Monitor::compare_peer`] checks a checkpoint that a gossip peer
//! holds against the monitor's own (see [`crate::gossip`]). The run loop
//! over every followed log is [`MonitorRunner`] (`runner.rs`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
use acd_core::compact::CompactRange;
use acd_core::entry::LogEntry;
use acd_core::evidence::{Evidence, EvidenceEntry, HexHash, InclusionProof, Kind};
use acd_core::merkle::{self, Hash, ProveError};
use acd_core::note::NoteVerifier;
use acd_core::tile::{self, TILE_WIDTH, TileId, TilePath};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::metrics::{Metrics, inc};

mod peer;
mod runner;
pub use peer::PeerOutcome;
pub use runner::{MonitorRunner, RunOutcome, RunSettings};

/// A log to follow: its read-path URL and its key.
#[derive(Debug, Clone)]
pub struct FollowedLog {
    pub url: String,
    pub verifier: NoteVerifier,
}

/// Failures that are not the log's fault (retry later).
#[derive(Debug, Error)]
pub enum MonitorError {
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("monitor storage: {0}")]
    Storage(String),
}

impl From<sled::Error> for MonitorError {
    fn from(e: sled::Error) -> Self {
        MonitorError::Storage(e.to_string())
    }
}

/// The outcome of one check of one log.
#[derive(Debug)]
pub enum Outcome {
    /// Everything up to this size verified and audited.
    Verified { size: u64, new_entries: u64 },
    /// The log misbehaved; the evidence file is at this path.
    Violation {
        evidence: Box<Evidence>,
        path: PathBuf,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    size: u64,
    root: String,
    note: String,
    range: Vec<String>,
}

/// Tiles fetched for one check, by (level, index); each holds the widest
/// width fetched.
#[derive(Default)]
struct Tiles(HashMap<(u8, u64), Vec<Hash>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Missing(u8, u64);

impl Tiles {
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, Missing> {
        let (tl, ti, _, _) = tile::node_location(level, index);
        let hashes = self.0.get(&(tl, ti)).ok_or(Missing(tl, ti))?;
        tile::subtree_hash_from_tile(hashes, level, index).map_err(|_| Missing(tl, ti))
    }
}

/// The monitor and its state.
pub struct Monitor {
    db: sled::Db,
    state: sled::Tree,
    tids: sled::Tree,
    http: reqwest::Client,
    evidence_dir: PathBuf,
    metrics: Arc<Metrics>,
}

fn decode_hash(s: &str) -> Option<Hash> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).ok()?;
    Some(h)
}

impl Monitor {
    /// Whether its database answers a read (`/readyz`).
    pub fn storage_ready(&self) -> Result<(), sled::Error> {
        self.state.get(b"").map(drop)
    }

    /// Opens the monitor's state in `<data>/db`; a damaged database is an
    /// error naming it, never a panic.
    pub fn open(data: &Path) -> Result<Monitor, MonitorError> {
        let path = data.join(acd_serve::secret::DATABASE);
        let (db, state, tids) = acd_serve::storage::guard_sled(&path, || {
            let db = acd_serve::open_sled(&sled::Config::new().path(&path))?;
            let state = db.open_tree("state")?;
            let tids = db.open_tree("tids")?;
            for kv in state.iter() {
                kv?;
            }
            Ok((db, state, tids))
        })
        .map_err(|e| MonitorError::Storage(e.to_string()))?;
        Ok(Monitor {
            state,
            tids,
            db,
            http: acd_serve::http_client(),
            evidence_dir: data.join("evidence"),
            metrics: Arc::new(Metrics::default()),
        })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The latest verified checkpoint of every log, as (origin, note): what
    /// the monitor gossips.
    pub fn held(&self) -> Result<Vec<(String, String)>, MonitorError> {
        let mut out = Vec::new();
        for kv in self.state.iter() {
            let (k, v) = kv?;
            let s: State =
                serde_json::from_slice(&v).map_err(|e| MonitorError::Storage(e.to_string()))?;
            out.push((String::from_utf8_lossy(&k).into_owned(), s.note));
        }
        Ok(out)
    }

    /// Runs `f` over the tiles of the tree of `size`, fetching each tile it
    /// misses, until it succeeds.
    async fn with_tiles<T>(
        &self,
        log: &FollowedLog,
        tiles: &mut Tiles,
        size: u64,
        mut f: impl FnMut(&Tiles) -> Result<T, ProveError<Missing>>,
    ) -> Result<T, MonitorError> {
        let mut fetched = HashSet::new();
        loop {
            match f(tiles) {
                Ok(t) => return Ok(t),
                Err(ProveError::Source(m @ Missing(l, i))) if fetched.insert(m) => {
                    self.fetch_tile(log, tiles, l, i, size).await?
                }
                Err(e) => {
                    return Err(MonitorError::Fetch {
                        url: log.url.clone(),
                        reason: format!("the tiles of size {size} do not give a proof: {e:?}"),
                    });
                }
            }
        }
    }

    /// The inclusion proof of entry `index` in the tree of `size`.
    async fn inclusion(
        &self,
        log: &FollowedLog,
        tiles: &mut Tiles,
        index: u64,
        size: u64,
    ) -> Result<InclusionProof, MonitorError> {
        let proof = self
            .with_tiles(log, tiles, size, |t| {
                merkle::inclusion_proof(index, size, |l, i| t.subtree(l, i))
            })
            .await?;
        Ok(InclusionProof(proof))
    }

    /// Entry `index` as served in the tree of `size`.
    async fn entry(
        &self,
        log: &FollowedLog,
        index: u64,
        size: u64,
    ) -> Result<Vec<u8>, MonitorError> {
        let bundle = index / TILE_WIDTH;
        let path = TilePath::Entries {
            index: bundle,
            width: tile::tile_width(0, bundle, size) as u16,
        }
        .to_path();
        let bytes = self.fetch(format!("{}/{path}", log.url)).await?;
        let entries = tile::decode_bundle(&bytes).map_err(|e| MonitorError::Fetch {
            url: path.clone(),
            reason: e.to_string(),
        })?;
        entries
            .get((index % TILE_WIDTH) as usize)
            .map(|e| e.to_vec())
            .ok_or(MonitorError::Fetch {
                url: path,
                reason: "short bundle".into(),
            })
    }

    /// A consistency proof from `old` to the tree of `new` from its tiles,
    /// and, when `old_root` is not a prefix of that tree, the tree's own
    /// root at the old size if the tiles prove it into `new`'s root.
    async fn consistency(
        &self,
        log: &FollowedLog,
        tiles: &mut Tiles,
        old: (u64, Hash),
        new: (u64, Hash),
    ) -> Result<(Vec<Hash>, Option<Hash>, bool), MonitorError> {
        let ((old_size, old_root), (size, root)) = (old, new);
        let proof = self
            .with_tiles(log, tiles, size, |t| {
                merkle::consistency_proof(old_size, size, |l, i| t.subtree(l, i))
            })
            .await?;
        if merkle::verify_consistency(old_size, size, &proof, &old_root, &root).is_ok() {
            return Ok((proof, None, true));
        }
        let prefix = self
            .with_tiles(log, tiles, size, |t| {
                merkle::tree_root(old_size, |l, i| t.subtree(l, i)).map_err(ProveError::Source)
            })
            .await?;
        let proven = merkle::verify_consistency(old_size, size, &proof, &prefix, &root).is_ok();
        Ok((proof, proven.then_some(prefix), false))
    }

    async fn fetch(&self, url: String) -> Result<Vec<u8>, MonitorError> {
        let fail = |reason: String| MonitorError::Fetch {
            url: url.clone(),
            reason,
        };
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("status {}", resp.status())));
        }
        Ok(resp
            .bytes()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_vec())
    }

    async fn fetch_tile(
        &self,
        log: &FollowedLog,
        tiles: &mut Tiles,
        level: u8,
        index: u64,
        size: u64,
    ) -> Result<(), MonitorError> {
        let width = tile::tile_width(level, index, size) as u16;
        let path = TilePath::Hashes(TileId {
            level,
            index,
            width,
        })
        .to_path();
        let bytes = self.fetch(format!("{}/{path}", log.url)).await?;
        let hashes = tile::tile_hashes(&bytes).map_err(|e| MonitorError::Fetch {
            url: path.clone(),
            reason: e.to_string(),
        })?;
        tiles.0.insert((level, index), hashes);
        Ok(())
    }

    fn load(&self, origin: &str) -> Result<Option<State>, MonitorError> {
        self.state
            .get(origin)?
            .map(|v| serde_json::from_slice(&v).map_err(|e| MonitorError::Storage(e.to_string())))
            .transpose()
    }

    fn violation(&self, evidence: Evidence) -> Result<Outcome, MonitorError> {
        let path = crate::evidence_file::write(&self.evidence_dir, &evidence)
            .map_err(|e| MonitorError::Storage(e.to_string()))?;
        if evidence.kind.is_split_view() {
            inc(&self.metrics.split_views);
        } else {
            inc(&self.metrics.violations);
        }
        tracing::error!(origin = %evidence.origin, kind = %evidence.kind, path = %path.display(), "{}", evidence.detail);
        Ok(Outcome::Violation {
            evidence: Box::new(evidence),
            path,
        })
    }

    /// One check of one log: verify its newest checkpoint against the last
    /// one verified, and audit the entries in between.
    pub async fn check(&self, log: &FollowedLog) -> Result<Outcome, MonitorError> {
        let origin = log.verifier.name().to_owned();
        let text = String::from_utf8(self.fetch(format!("{}/checkpoint", log.url)).await?)
            .map_err(|_| MonitorError::Fetch {
                url: log.url.clone(),
                reason: "checkpoint is not UTF-8".into(),
            })?;
        let evidence = |kind: Kind, detail: String, checkpoints: Vec<String>| {
            Evidence::new(kind, &origin, detail, checkpoints)
        };
        let new = match SignedCheckpoint::open(&text, &log.verifier) {
            Ok(c) => {
                inc(&self.metrics.checkpoints_verified);
                c
            }
            Err(e) => {
                return self.violation(evidence(
                    Kind::BadCheckpoint,
                    format!("the served checkpoint does not verify: {e}"),
                    vec![text],
                ));
            }
        };
        let (size, root) = (new.checkpoint.size, new.checkpoint.root);
        let old = self.load(&origin)?;
        let (old_size, old_root, old_note, mut range) = match &old {
            Some(s) => (
                s.size,
                decode_hash(&s.root).ok_or(MonitorError::Storage("bad root".into()))?,
                s.note.clone(),
                CompactRange::from_parts(
                    s.size,
                    s.range.iter().filter_map(|h| decode_hash(h)).collect(),
                )
                .ok_or(MonitorError::Storage("bad compact range".into()))?,
            ),
            None => (0, merkle::empty_root(), String::new(), CompactRange::new()),
        };
        if size < old_size {
            return self.violation(evidence(
                Kind::Rollback,
                format!("the log went back from size {old_size} to {size}"),
                vec![old_note, text],
            ));
        }
        if size == old_size && old.is_some() && root != old_root {
            return self.violation(evidence(
                Kind::SplitView,
                format!("two checkpoints of size {size} with different roots"),
                vec![old_note, text],
            ));
        }

        // Consistency, computed from tiles of the new tree.
        let mut tiles = Tiles::default();
        if old_size > 0 && size > old_size {
            let (proof, prefix, consistent) = self
                .consistency(log, &mut tiles, (old_size, old_root), (size, root))
                .await?;
            if !consistent {
                let before = parse_checkpoint(&old_note)?;
                return self.violation(Evidence::contradiction(
                    &origin,
                    (&before, &old_note),
                    (&new.checkpoint, &text),
                    proof,
                    prefix,
                ));
            }
        }

        // Audit the new entries, saying how far a long catch-up has come.
        let mut index = old_size;
        let started = std::time::Instant::now();
        let mut reported = started;
        let every = progress_every();
        while index < size {
            if reported.elapsed() >= every {
                reported = std::time::Instant::now();
                let (rate, eta_s) =
                    catch_up_rate(index - old_size, size - index, started.elapsed());
                tracing::info!(
                    origin = %origin,
                    audited = index,
                    size,
                    entries_per_s = rate as u64,
                    eta_s,
                    "catching up: {index}/{size} entries audited, {rate:.0} entries/s, ETA {eta_s} s"
                );
            }
            let bundle = index / TILE_WIDTH;
            let width = tile::tile_width(0, bundle, size) as u16;
            let path = TilePath::Entries {
                index: bundle,
                width,
            }
            .to_path();
            let bytes = self.fetch(format!("{}/{path}", log.url)).await?;
            if tiles
                .0
                .get(&(0, bundle))
                .is_none_or(|t| t.len() < usize::from(width))
            {
                self.fetch_tile(log, &mut tiles, 0, bundle, size).await?;
            }
            let leaves = tiles.0.get(&(0, bundle)).cloned().unwrap_or_default();
            let entries = match tile::decode_bundle(&bytes) {
                Ok(e) if e.len() == usize::from(width) => e,
                _ => {
                    return self.violation(evidence(
                        Kind::BadBundle,
                        format!("entry bundle {path} is malformed"),
                        vec![text],
                    ));
                }
            };
            let first = (index % TILE_WIDTH) as usize;
            let signatures = verify_signatures(&origin, &entries[first..]);
            for (i, bytes) in entries.iter().enumerate().skip(first) {
                let at = bundle * TILE_WIDTH + i as u64;
                let leaf = merkle::leaf_hash(bytes);
                let problem = if leaves.get(i) != Some(&leaf) {
                    Some((
                        Kind::EntryHash,
                        "the entry does not hash to its leaf in the tile".to_owned(),
                        None,
                    ))
                } else if let Some(Err(e)) = signatures.get(i - first) {
                    Some((Kind::BadEntry, e.clone(), None))
                } else {
                    self.entry_problem(&origin, at, bytes)?
                };
                if let Some((kind, detail, earlier)) = problem {
                    let mut ev = evidence(kind, format!("entry {at}: {detail}"), vec![text]);
                    if let Some(f) = earlier {
                        ev.entries
                            .push(EvidenceEntry(f, self.entry(log, f, size).await?));
                        ev.inclusion
                            .push(self.inclusion(log, &mut tiles, f, size).await?);
                    }
                    ev.entries.push(EvidenceEntry(at, bytes.to_vec()));
                    ev.inclusion
                        .push(self.inclusion(log, &mut tiles, at, size).await?);
                    if kind == Kind::EntryHash {
                        ev.leaf_hash = leaves.get(i).copied().map(HexHash);
                    }
                    return self.violation(ev);
                }
                range.push(leaf);
                self.tids
                    .insert(tid_key(&origin, bytes), &at.to_be_bytes())?;
            }
            index = (bundle + 1) * TILE_WIDTH;
        }
        if range.root() != root {
            return self.violation(evidence(
                Kind::TreeMismatch,
                format!("the {size} entries do not hash to the checkpoint's root"),
                vec![text],
            ));
        }
        let state = State {
            size,
            root: hex::encode(root),
            note: text,
            range: range.hashes().iter().map(hex::encode).collect(),
        };
        let value = serde_json::to_vec(&state).map_err(|e| MonitorError::Storage(e.to_string()))?;
        self.state.insert(origin.as_bytes(), value)?;
        self.db.flush()?;
        Ok(Outcome::Verified {
            size,
            new_entries: size - old_size,
        })
    }

    /// Invariants 3 and 4 for one entry: the kind, a detail, and the index
    /// of the earlier entry involved.
    fn entry_problem(
        &self,
        origin: &str,
        index: u64,
        bytes: &[u8],
    ) -> Result<Option<(Kind, String, Option<u64>)>, MonitorError> {
        // Decoding and signatures were checked by `verify_signatures`.
        let entry = match LogEntry::decode(bytes) {
            Ok(e) => e,
            Err(e) => return Ok(Some((Kind::BadEntry, e.to_string(), None))),
        };
        if !entry.timely() {
            return Ok(Some((
                Kind::Untimely,
                format!(
                    "{} logged at {} ms for expiration {} ms",
                    entry.outcome(),
                    entry.timestamp_ms(),
                    entry.expiration_ms()
                ),
                None,
            )));
        }
        if let Some(first) = self.tids.get(tid_key(origin, bytes))? {
            let first = u64::from_be_bytes(first.as_ref().try_into().unwrap_or([0; 8]));
            if first != index {
                return Ok(Some((
                    Kind::SecondOutcome,
                    format!(
                        "TID {} already had an outcome at entry {first}",
                        entry.tid()
                    ),
                    Some(first),
                )));
            }
        }
        Ok(None)
    }
}

/// How often a catch-up reports its progress: every 5 s, or every
/// `ACD_PROGRESS_INTERVAL_MS` milliseconds.
fn progress_every() -> std::time::Duration {
    std::env::var("ACD_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_millis,
        )
}

/// Entries per second so far, and the seconds `left` entries take at that
/// rate.
fn catch_up_rate(done: u64, left: u64, elapsed: std::time::Duration) -> (f64, u64) {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let eta = if rate > 0.0 {
        (left as f64 / rate).ceil() as u64
    } else {
        0
    };
    (rate, eta)
}

/// Decodes the entries and checks their signatures, on every core: the
/// signatures are most of an audit's work.
fn verify_signatures(origin: &str, entries: &[&[u8]]) -> Vec<Result<(), String>> {
    let check = |bytes: &&[u8]| {
        LogEntry::decode(bytes)
            .map_err(|e| e.to_string())
            .and_then(|e| e.verify_signature(origin).map_err(|e| e.to_string()))
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = entries.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| {
                let h = scope.spawn(move || part.iter().map(check).collect::<Vec<_>>());
                (part.len(), h)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(len, h)| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("verification failed".into()); len])
            })
            .collect()
    })
}

fn parse_checkpoint(note: &str) -> Result<Checkpoint, MonitorError> {
    acd_core::note::Note::parse(note)
        .ok()
        .and_then(|n| Checkpoint::parse(&n.text).ok())
        .ok_or_else(|| MonitorError::Storage("a stored checkpoint does not parse".into()))
}

fn own_checkpoint(state: &State) -> Result<Checkpoint, MonitorError> {
    parse_checkpoint(&state.note)
}

fn tid_key(origin: &str, entry: &[u8]) -> Vec<u8> {
    let mut k = origin.as_bytes().to_vec();
    k.push(0);
    // The TID sits at bytes 9..25 of every entry; a malformed entry is
    // refused before its key is stored.
    k.extend_from_slice(entry.get(9..25).unwrap_or_default());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catch_up_reports_its_rate_and_what_is_left() {
        let (rate, eta) = catch_up_rate(200_000, 800_000, std::time::Duration::from_secs(5));
        assert_eq!((rate as u64, eta), (40_000, 20));
        assert_eq!(catch_up_rate(0, 10, std::time::Duration::ZERO), (0.0, 0));
    }
}
