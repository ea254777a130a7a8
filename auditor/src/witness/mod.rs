//! The witness (C2SP tlog-witness `add-checkpoint`, tlog-cosignature v1):
//! for each configured log it remembers the latest checkpoint it cosigned
//! and cosigns a new one only with a valid consistency proof from it.
//! Checking the old size and persisting the new checkpoint happen under one
//! lock, so two racing requests cannot roll the witness back. A checkpoint
//! that contradicts the remembered one is refused and kept as evidence; one
//! of the same size with another root is a split view by itself (two notes
//! the log signed) and freezes the origin. A consistency proof that does
//! not verify may be the sender's fault, not the log's: the server then
//! asks the log for its own proof ([`crate::gossip::confirm`]).
//!
//! Gossip ([`crate::gossip`]) compares the checkpoints peers hold with the
//! one cosigned here ([`Witness::check_peer`]); a split view freezes the
//! origin ([`crate::frozen`]): every later request for it is refused with
//! [`WitnessError::Frozen`] until an operator clears it.
//!
//! Layout: this file holds the witness's state (sled) and the split-view
//! freeze; `add_checkpoint.rs` the tlog-witness step itself; `peer.rs` the
//! comparisons with a gossip peer's checkpoint.

mod add_checkpoint;
mod peer;

pub use peer::PeerCheck;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use acd_core::checkpoint::Checkpoint;
use acd_core::clock::{Clock, SystemClock};
use acd_core::cosignature::Cosigner;
use acd_core::error::DomainError;
use acd_core::evidence::Evidence;
use acd_core::merkle::Hash;
use acd_core::note::NoteVerifier;
use acd_serve::{AdminToken, AdminTokenSource};
use thiserror::Error;

use crate::frozen::Frozen;
use crate::metrics::{Metrics, inc};

/// Why a checkpoint was not cosigned; each maps to the status the spec
/// requires.
#[derive(Debug, Error)]
pub enum WitnessError {
    #[error("{0}")]
    Malformed(String),
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    #[error("no signature from a trusted key of log {0:?}")]
    Unsigned(String),
    #[error("old size {old} is larger than the checkpoint size {size}")]
    OldTooLarge { old: u64, size: u64 },
    #[error("old size {old} differs from the latest cosigned size {latest}")]
    SizeMismatch { old: u64, latest: u64 },
    #[error("checkpoint of size {size} has another root than the one cosigned")]
    RootMismatch { size: u64 },
    #[error("consistency proof from {old} to {size} does not verify: {reason}")]
    Inconsistent { old: u64, size: u64, reason: String },
    #[error("log origin {origin:?} is frozen after a split view; an operator must clear it")]
    Frozen {
        origin: String,
        evidence_file: Option<String>,
    },
    #[error("witness storage failed: {0}")]
    Storage(String),
}

impl From<sled::Error> for WitnessError {
    fn from(e: sled::Error) -> Self {
        WitnessError::Storage(e.to_string())
    }
}

/// The refusals with the codes and kinds C2SP tlog-witness fixes. Storage
/// trouble is logged here with its detail and answered as a retryable
/// `unavailable`. (The HTTP layer answers a size mismatch with the spec's
/// size body and a frozen origin with its own JSON, see [`crate::http`].)
impl From<WitnessError> for DomainError {
    fn from(e: WitnessError) -> Self {
        let message = e.to_string();
        match e {
            WitnessError::Malformed(_) => DomainError::bad("malformed", message),
            WitnessError::UnknownOrigin(_) => DomainError::not_found("unknown_origin", message),
            WitnessError::Unsigned(_) => DomainError::forbidden("unsigned", message),
            WitnessError::OldTooLarge { .. } => DomainError::bad("old_too_large", message),
            WitnessError::SizeMismatch { .. } => DomainError::conflict("size_mismatch", message),
            WitnessError::RootMismatch { .. } => DomainError::conflict("root_mismatch", message),
            WitnessError::Inconsistent { .. } => {
                DomainError::unprocessable("inconsistent", message)
            }
            WitnessError::Frozen { .. } => DomainError::forbidden("frozen", message),
            WitnessError::Storage(detail) => {
                tracing::error!(%detail, "witness storage failed");
                DomainError::unavailable("unavailable", "witness storage failed")
            }
        }
    }
}

/// The latest checkpoint cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub size: u64,
    pub root: Hash,
    pub note: String,
}

fn encode_latest(l: &Latest) -> Vec<u8> {
    let mut v = Vec::with_capacity(40 + l.note.len());
    v.extend_from_slice(&l.size.to_be_bytes());
    v.extend_from_slice(&l.root);
    v.extend_from_slice(l.note.as_bytes());
    v
}

fn decode_latest(v: &[u8]) -> Result<Latest, WitnessError> {
    let corrupt = || WitnessError::Storage("corrupt witness record".into());
    let size = u64::from_be_bytes(
        v.get(..8)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?,
    );
    let root: Hash = v
        .get(8..40)
        .ok_or_else(corrupt)?
        .try_into()
        .map_err(|_| corrupt())?;
    let note =
        String::from_utf8(v.get(40..).ok_or_else(corrupt)?.to_vec()).map_err(|_| corrupt())?;
    Ok(Latest { size, root, note })
}

/// A witness over sled.
pub struct Witness {
    db: sled::Db,
    latest: sled::Tree,
    evidence: sled::Tree,
    cosigner: Cosigner,
    logs: HashMap<String, NoteVerifier>,
    lock: Mutex<()>,
    frozen: Frozen,
    metrics: Arc<Metrics>,
    evidence_dir: Option<PathBuf>,
    log_urls: HashMap<String, String>,
    admin_token: Option<AdminToken>,
    /// Stamps cosignatures (tlog-cosignature v1 timestamps).
    clock: Arc<dyn Clock>,
    /// Refused checkpoints already checked against the log's own proof.
    confirmed: Mutex<HashSet<Vec<u8>>>,
}

/// At most this many refused checkpoints are remembered as checked.
const CONFIRMED_LIMIT: usize = 4096;

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Witness({:?}, {} logs)", self.cosigner, self.logs.len())
    }
}

impl Witness {
    /// Whether its database answers a read (`/readyz`).
    pub fn storage_ready(&self) -> Result<(), sled::Error> {
        self.latest.get(b"").map(drop)
    }

    /// Opens the witness state in `dir`, cosigning for `logs` (keyed by
    /// their origin, which is their key name).
    pub fn open(
        dir: &Path,
        cosigner: Cosigner,
        logs: Vec<NoteVerifier>,
    ) -> Result<Self, WitnessError> {
        let db = acd_serve::open_sled(&sled::Config::new().path(dir))?;
        let latest = db.open_tree("latest")?;
        let evidence = db.open_tree("evidence")?;
        let frozen = Frozen::open(&db)?;
        Ok(Witness {
            db,
            latest,
            evidence,
            cosigner,
            logs: logs.into_iter().map(|v| (v.name().to_owned(), v)).collect(),
            lock: Mutex::new(()),
            frozen,
            metrics: Arc::new(Metrics::default()),
            evidence_dir: None,
            log_urls: HashMap::new(),
            admin_token: None,
            clock: Arc::new(SystemClock),
            confirmed: Mutex::new(HashSet::new()),
        })
    }

    /// Writes evidence files (of split views and refused checkpoints) into
    /// `dir`.
    pub fn with_evidence_dir(mut self, dir: PathBuf) -> Self {
        self.evidence_dir = Some(dir);
        self
    }

    /// The read URL of log `origin`, asked for consistency proofs
    /// (`/api/v1/consistency`) when a peer holds another size.
    pub fn with_log_url(mut self, origin: &str, url: &str) -> Self {
        self.log_urls
            .insert(origin.to_owned(), url.trim_end_matches('/').to_owned());
        self
    }

    /// Enables `POST /admin/clear`, for requests bearing this token.
    pub fn with_admin_token(mut self, token: String) -> Self {
        self.admin_token = Some(AdminToken::new(&token));
        self
    }

    /// Reads the time for cosignatures from `clock` instead of the system.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn frozen(&self) -> &Frozen {
        &self.frozen
    }

    /// Whether `POST /admin/clear` is enabled.
    pub fn has_admin_token(&self) -> bool {
        self.admin_token.is_some()
    }

    pub fn log_url(&self, origin: &str) -> Option<&str> {
        self.log_urls.get(origin).map(String::as_str)
    }

    /// The latest cosigned checkpoint of every log, as (origin, note): what
    /// the witness gossips.
    pub fn held(&self) -> Result<Vec<(String, String)>, WitnessError> {
        let mut out = Vec::new();
        for origin in self.logs.keys() {
            if let Some(l) = self.latest(origin)? {
                out.push((origin.clone(), l.note));
            }
        }
        out.sort();
        Ok(out)
    }

    /// A split view: write the evidence file, count it, freeze the origin.
    /// Returns the file's path.
    pub fn freeze(&self, evidence: &Evidence) -> Result<Option<PathBuf>, WitnessError> {
        let path = self.write_evidence(evidence);
        if self.frozen.freeze(evidence, path.as_deref())? {
            inc(&self.metrics.split_views);
            tracing::error!(
                origin = %evidence.origin,
                kind = %evidence.kind,
                evidence = ?path,
                "split view: {}; the origin is frozen until an operator clears it",
                evidence.detail
            );
        }
        Ok(path)
    }

    fn write_evidence(&self, evidence: &Evidence) -> Option<PathBuf> {
        let dir = self.evidence_dir.as_ref()?;
        match crate::evidence_file::write(dir, evidence) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "cannot write an evidence file");
                None
            }
        }
    }

    /// The latest checkpoint cosigned for `origin`.
    pub fn latest(&self, origin: &str) -> Result<Option<Latest>, WitnessError> {
        self.latest
            .get(origin.as_bytes())?
            .map(|v| decode_latest(&v))
            .transpose()
    }

    /// Stored evidence of refused, contradicting checkpoints: (origin, text).
    pub fn evidence(&self) -> Result<Vec<(String, String)>, WitnessError> {
        self.evidence
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let origin = k.split(|b| *b == 0).next().unwrap_or_default();
                Ok((
                    String::from_utf8_lossy(origin).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ))
            })
            .collect()
    }
}

fn parse_body(note: &str) -> Result<Checkpoint, WitnessError> {
    acd_core::note::Note::parse(note)
        .ok()
        .and_then(|n| Checkpoint::parse(&n.text).ok())
        .ok_or_else(|| WitnessError::Storage("a stored checkpoint does not parse".into()))
}

/// `POST /admin/clear` is authorized by the shared bearer-token extractor.
impl AdminTokenSource for Witness {
    fn admin_token(&self) -> Option<&AdminToken> {
        self.admin_token.as_ref()
    }
}

#[cfg(test)]
mod tests;
