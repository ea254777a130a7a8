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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
use acd_core::cosignature::Cosigner;
use acd_core::evidence::Evidence;
use acd_core::merkle::{self, Hash};
use acd_core::note::NoteVerifier;
use acd_core::witness::AddCheckpoint;
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
    admin_token: Option<String>,
    /// Refused checkpoints already checked against the log's own proof.
    confirmed: Mutex<HashSet<Vec<u8>>>,
}

/// At most this many refused checkpoints are remembered as checked.
const CONFIRMED_LIMIT: usize = 4096;

/// What a peer's checkpoint says about the one cosigned here.
#[derive(Debug)]
pub enum PeerCheck {
    /// Not a log this witness follows, or nothing cosigned for it yet.
    Unknown,
    /// Not signed by the log: the peer's problem, not the log's.
    Unsigned(String),
    /// Same size and root as the one cosigned.
    Agrees,
    /// Already frozen, or part of evidence an operator cleared.
    Settled,
    /// Sizes differ: consistency from `from` to `to` must be checked.
    NeedsProof {
        from: u64,
        to: u64,
        ours: Latest,
        theirs: SignedCheckpoint,
    },
    /// Same size, another root.
    SplitView(Box<Evidence>),
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Witness({:?}, {} logs)", self.cosigner, self.logs.len())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Witness {
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
        self.admin_token = Some(token);
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

    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
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

    /// Compares a checkpoint a peer holds with the one cosigned.
    pub fn check_peer(&self, text: &str) -> Result<PeerCheck, WitnessError> {
        let origin = text.lines().next().unwrap_or_default();
        let Some(log) = self.logs.get(origin) else {
            return Ok(PeerCheck::Unknown);
        };
        let theirs = match SignedCheckpoint::open(text, log) {
            Ok(c) => c,
            Err(e) => return Ok(PeerCheck::Unsigned(e.to_string())),
        };
        inc(&self.metrics.checkpoints_verified);
        if self.frozen.is_frozen(origin)? || self.frozen.acknowledged(origin, &theirs.checkpoint)? {
            return Ok(PeerCheck::Settled);
        }
        let Some(ours) = self.latest(origin)? else {
            return Ok(PeerCheck::Unknown);
        };
        let (size, root) = (theirs.checkpoint.size, theirs.checkpoint.root);
        if size == ours.size {
            if root == ours.root {
                return Ok(PeerCheck::Agrees);
            }
            let mine = parse_body(&ours.note)?;
            return Ok(PeerCheck::SplitView(Box::new(Evidence::contradiction(
                origin,
                (&mine, &ours.note),
                (&theirs.checkpoint, text),
                Vec::new(),
                None,
            ))));
        }
        Ok(PeerCheck::NeedsProof {
            from: size.min(ours.size),
            to: size.max(ours.size),
            ours,
            theirs,
        })
    }

    /// Verifies `proof` (from the smaller to the larger size) between the
    /// cosigned checkpoint and a peer's; evidence if it fails.
    pub fn conclude(
        &self,
        ours: &Latest,
        theirs: &SignedCheckpoint,
        proof: Vec<Hash>,
    ) -> Result<Option<Evidence>, WitnessError> {
        let mine = parse_body(&ours.note)?;
        let (small, large) = if mine.size < theirs.checkpoint.size {
            (&mine, &theirs.checkpoint)
        } else {
            (&theirs.checkpoint, &mine)
        };
        if small.size == 0
            || merkle::verify_consistency(small.size, large.size, &proof, &small.root, &large.root)
                .is_ok()
        {
            return Ok(None);
        }
        Ok(Some(Evidence::contradiction(
            &mine.origin,
            (&mine, &ours.note),
            (&theirs.checkpoint, &theirs.to_text()),
            proof,
            None,
        )))
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

    /// Records a refused, contradicting request (stored with the note it
    /// contradicts) and returns it as evidence.
    fn keep_evidence(
        &self,
        origin: &str,
        stored: &Latest,
        request: &AddCheckpoint,
        signed: &SignedCheckpoint,
    ) -> Option<Evidence> {
        inc(&self.metrics.checkpoints_refused);
        let evidence = parse_body(&stored.note).ok().map(|mine| {
            let proof = if mine.size == signed.checkpoint.size {
                Vec::new()
            } else {
                request.proof.clone()
            };
            Evidence::contradiction(
                origin,
                (&mine, &stored.note),
                (&signed.checkpoint, &request.checkpoint),
                proof,
                None,
            )
        });
        let mut key = origin.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(
            &SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .to_be_bytes(),
        );
        let text = format!(
            "cosigned checkpoint:\n{}\nrefused add-checkpoint request:\n{}",
            stored.note,
            request.to_body()
        );
        let saved = self
            .evidence
            .insert(key, text.as_bytes())
            .and_then(|_| self.db.flush());
        if let Err(e) = saved {
            tracing::error!(error = %e, "cannot store evidence");
        }
        tracing::warn!(
            origin,
            "refused a checkpoint inconsistent with the cosigned one; evidence kept"
        );
        evidence
    }

    /// Whether a refused checkpoint should still be checked against the
    /// log's own consistency proof: once per checkpoint, so that requests
    /// replaying one bad proof do not make the witness hammer the log.
    pub fn should_confirm(&self, origin: &str, c: &Checkpoint) -> bool {
        if self.log_url(origin).is_none() {
            return false;
        }
        let mut key = origin.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&c.size.to_be_bytes());
        key.extend_from_slice(&c.root);
        let mut seen = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= CONFIRMED_LIMIT {
            seen.clear();
        }
        seen.insert(key)
    }

    /// Handles one `add-checkpoint` body; returns the cosignature lines.
    pub fn add_checkpoint(&self, body: &str) -> Result<String, WitnessError> {
        let request =
            AddCheckpoint::parse(body).map_err(|e| WitnessError::Malformed(e.to_string()))?;
        let first = request.checkpoint.lines().next().unwrap_or_default();
        let log = self
            .logs
            .get(first)
            .ok_or_else(|| WitnessError::UnknownOrigin(first.to_owned()))?;
        let signed = SignedCheckpoint::open(&request.checkpoint, log).map_err(|e| match e {
            acd_core::checkpoint::CheckpointError::Note(_) => {
                WitnessError::Unsigned(first.to_owned())
            }
            other => WitnessError::Malformed(other.to_string()),
        })?;
        inc(&self.metrics.checkpoints_verified);
        if let Some(record) = self.frozen.get(first)? {
            return Err(WitnessError::Frozen {
                origin: first.to_owned(),
                evidence_file: record.evidence_file,
            });
        }
        let (old, size, root) = (
            request.old_size,
            signed.checkpoint.size,
            signed.checkpoint.root,
        );
        if old > size {
            return Err(WitnessError::OldTooLarge { old, size });
        }

        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let stored = self.latest(first)?;
        let latest_size = stored.as_ref().map(|l| l.size).unwrap_or(0);
        if old != latest_size {
            return Err(WitnessError::SizeMismatch {
                old,
                latest: latest_size,
            });
        }
        match &stored {
            // Two checkpoints the log signed, of one size, with two roots:
            // conclusive on their own, whoever sent the second one.
            Some(s) if s.size == size && s.root != root => {
                if let Some(evidence) = self.keep_evidence(first, s, &request, &signed)
                    && !self.frozen.acknowledged(first, &signed.checkpoint)?
                {
                    self.freeze(&evidence)?;
                }
                return Err(WitnessError::RootMismatch { size });
            }
            Some(s) if s.size == size => {}
            // Every tree extends the empty one; the spec requires no proof.
            _ if old == 0 && !request.proof.is_empty() => {
                return Err(WitnessError::Inconsistent {
                    old,
                    size,
                    reason: "the proof must be empty from size 0".into(),
                });
            }
            _ if old == 0 => {}
            Some(s) => {
                if let Err(e) =
                    merkle::verify_consistency(s.size, size, &request.proof, &s.root, &root)
                {
                    // Anyone may send a signed checkpoint with a wrong proof,
                    // so this alone freezes nothing; the server asks the log
                    // for its own proof (see `crate::gossip::confirm`).
                    if let Some(evidence) = self.keep_evidence(first, s, &request, &signed) {
                        self.write_evidence(&evidence);
                    }
                    return Err(WitnessError::Inconsistent {
                        old,
                        size,
                        reason: e.to_string(),
                    });
                }
            }
            None => {}
        }
        // Keep the checkpoint as the log signed it: its text and the log's
        // own signature, not what else a sender attached (a repeated line,
        // other keys' lines), which gossip would otherwise pass on.
        let mut note = signed.note.clone();
        note.signatures
            .retain(|s| s.name == log.name() && s.key_id == log.key_id());
        note.signatures.truncate(1);
        let latest = Latest {
            size,
            root,
            note: note.to_text(),
        };
        self.latest
            .insert(first.as_bytes(), encode_latest(&latest))?;
        self.db.flush()?;
        drop(_guard);
        let line = self.cosigner.cosign(&signed.note.text, now_secs());
        inc(&self.metrics.cosignatures);
        Ok(line.to_line())
    }
}

fn parse_body(note: &str) -> Result<Checkpoint, WitnessError> {
    acd_core::note::Note::parse(note)
        .ok()
        .and_then(|n| Checkpoint::parse(&n.text).ok())
        .ok_or_else(|| WitnessError::Storage("a stored checkpoint does not parse".into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use acd_core::checkpoint::Checkpoint;
    use acd_core::merkle::MemoryTree;
    use acd_core::note::{Note, NoteSigner};
    use ed25519_dalek::SigningKey;

    const ORIGIN: &str = "log.test/w";

    fn log_key() -> NoteSigner {
        NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap()
    }

    fn witness(dir: &Path) -> Witness {
        let cosigner = Cosigner::new("witness.test/w1", SigningKey::from_bytes(&[2; 32])).unwrap();
        Witness::open(dir, cosigner, vec![log_key().verifier()]).unwrap()
    }

    fn tree(n: u64, salt: u8) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.push(merkle::leaf_hash(&[salt, i as u8, (i >> 8) as u8]));
        }
        t
    }

    fn signed(t: &MemoryTree, signer: &NoteSigner) -> String {
        let c = Checkpoint {
            origin: ORIGIN.into(),
            size: t.len(),
            root: t.root(),
            extensions: vec![],
        };
        SignedCheckpoint::sign(c, signer).unwrap().to_text()
    }

    fn request(old: u64, t: &MemoryTree, signer: &NoteSigner) -> String {
        AddCheckpoint {
            old_size: old,
            proof: if old == 0 {
                vec![]
            } else {
                t.consistency_proof(old, t.len()).unwrap()
            },
            checkpoint: signed(t, signer),
        }
        .to_body()
    }

    // What the witness keeps (and gossips) is the checkpoint as the log
    // signed it: a sender's repeated signature line or another key's line
    // is accepted, as signed-note allows, but not stored.
    #[test]
    fn keeps_only_the_logs_signature() {
        let dir = tempfile::tempdir().unwrap();
        let w = witness(dir.path());
        let t = tree(10, 0);
        let genuine = signed(&t, &log_key());
        let sig_line = genuine.lines().last().unwrap();
        let other = NoteSigner::new("other.test/k", SigningKey::from_bytes(&[9; 32])).unwrap();
        let foreign = other.sign(&format!("{ORIGIN}\n")).unwrap();
        let foreign_line = foreign.lines().last().unwrap();
        let body = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: format!("{genuine}{sig_line}\n{foreign_line}\n"),
        }
        .to_body();
        w.add_checkpoint(&body).unwrap();
        assert_eq!(w.latest(ORIGIN).unwrap().unwrap().note, genuine);
    }

    // The witness cosigns a first checkpoint, then only consistent extensions of it; its cosignatures verify.
    #[test]
    fn cosigns_consistent_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let w = witness(dir.path());
        let t = tree(300, 0);
        let first = tree(10, 0);
        let line = w.add_checkpoint(&request(0, &first, &log_key())).unwrap();
        let note = Note::parse(&format!("{}{line}", signed(&first, &log_key()))).unwrap();
        let cosigned =
            acd_core::cosignature::cosigners(&note, std::slice::from_ref(w.cosigner().verifier()));
        assert_eq!(cosigned.len(), 1);
        w.add_checkpoint(&request(10, &t, &log_key())).unwrap();
        assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 300);
        // The same checkpoint again is fine (cosigned anew).
        w.add_checkpoint(&request(300, &t, &log_key())).unwrap();
    }

    // A log whose first cosigned checkpoint is the empty tree gets its next one cosigned without a proof.
    #[test]
    fn from_the_empty_tree() {
        let dir = tempfile::tempdir().unwrap();
        let w = witness(dir.path());
        w.add_checkpoint(&request(0, &tree(0, 0), &log_key()))
            .unwrap();
        w.add_checkpoint(&request(0, &tree(3, 0), &log_key()))
            .unwrap();
        assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 3);
        assert!(w.evidence().unwrap().is_empty());
    }

    // Wrong old sizes, unknown origins, untrusted signatures and shrinking trees are refused as the spec says.
    #[test]
    fn refusals() {
        let dir = tempfile::tempdir().unwrap();
        let w = witness(dir.path());
        let t = tree(20, 0);
        w.add_checkpoint(&request(0, &tree(5, 0), &log_key()))
            .unwrap();
        assert!(matches!(
            w.add_checkpoint(&request(4, &t, &log_key())),
            Err(WitnessError::SizeMismatch { old: 4, latest: 5 })
        ));
        let stranger = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
        assert!(matches!(
            w.add_checkpoint(&request(5, &t, &stranger)),
            Err(WitnessError::Unsigned(_))
        ));
        let other = NoteSigner::new("other.test/log", SigningKey::from_bytes(&[1; 32])).unwrap();
        let c = SignedCheckpoint::sign(
            Checkpoint {
                origin: "other.test/log".into(),
                size: 1,
                root: [0; 32],
                extensions: vec![],
            },
            &other,
        )
        .unwrap();
        let body = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: c.to_text(),
        }
        .to_body();
        assert!(matches!(
            w.add_checkpoint(&body),
            Err(WitnessError::UnknownOrigin(_))
        ));
        assert!(matches!(
            w.add_checkpoint(&request(5, &tree(5, 0), &log_key()).replace("old 5", "old 6")),
            Err(WitnessError::OldTooLarge { .. })
        ));
        assert!(matches!(
            w.add_checkpoint("garbage"),
            Err(WitnessError::Malformed(_))
        ));
        assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 5);
    }

    // A fork is refused with evidence and the state does not move: a larger tree with a proof that does not verify freezes nothing (anyone can send a bad proof), a checkpoint of the same size with another root freezes the origin.
    #[test]
    fn forks_are_refused_with_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let w = witness(dir.path());
        w.add_checkpoint(&request(0, &tree(8, 0), &log_key()))
            .unwrap();
        let bigger_fork = tree(12, 1);
        assert!(matches!(
            w.add_checkpoint(&request(8, &bigger_fork, &log_key())),
            Err(WitnessError::Inconsistent { .. })
        ));
        assert!(!w.frozen().is_frozen(ORIGIN).unwrap());
        let same_size = AddCheckpoint {
            old_size: 8,
            proof: vec![],
            checkpoint: signed(&tree(8, 1), &log_key()),
        };
        assert!(matches!(
            w.add_checkpoint(&same_size.to_body()),
            Err(WitnessError::RootMismatch { size: 8 })
        ));
        assert!(w.frozen().is_frozen(ORIGIN).unwrap());
        let record = w.frozen().get(ORIGIN).unwrap().unwrap();
        assert_eq!(record.kind, acd_core::evidence::Kind::SplitView);
        assert_eq!(record.checkpoints[1], same_size.checkpoint);
        assert!(matches!(
            w.add_checkpoint(&request(8, &tree(9, 0), &log_key())),
            Err(WitnessError::Frozen { .. })
        ));
        assert_eq!(w.latest(ORIGIN).unwrap().unwrap().root, tree(8, 0).root());
        let evidence = w.evidence().unwrap();
        assert_eq!(evidence.len(), 2);
        assert!(evidence[0].1.contains(&signed(&tree(8, 0), &log_key())));

        // Cleared, the same contradiction (acknowledged) does not freeze again.
        assert!(w.frozen().clear(ORIGIN).unwrap());
        assert!(matches!(
            w.add_checkpoint(&same_size.to_body()),
            Err(WitnessError::RootMismatch { size: 8 })
        ));
        assert!(!w.frozen().is_frozen(ORIGIN).unwrap());
        w.add_checkpoint(&request(8, &tree(9, 0), &log_key()))
            .unwrap();
    }

    // The cosigned state survives a restart.
    #[test]
    fn state_persists() {
        let dir = tempfile::tempdir().unwrap();
        {
            let w = witness(dir.path());
            w.add_checkpoint(&request(0, &tree(3, 0), &log_key()))
                .unwrap();
        }
        let w = witness(dir.path());
        assert_eq!(w.latest(ORIGIN).unwrap().unwrap().size, 3);
        assert!(matches!(
            w.add_checkpoint(&request(0, &tree(4, 0), &log_key())),
            Err(WitnessError::SizeMismatch { latest: 3, .. })
        ));
    }

    // Of two racing requests from the same old size, exactly one is cosigned: the witness never rolls back.
    #[test]
    fn racing_requests_do_not_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let w = std::sync::Arc::new(witness(dir.path()));
        w.add_checkpoint(&request(0, &tree(4, 0), &log_key()))
            .unwrap();
        let a = request(4, &tree(10, 0), &log_key());
        let b = request(4, &tree(20, 0), &log_key());
        let (wa, wb) = (w.clone(), w.clone());
        let ta = std::thread::spawn(move || wa.add_checkpoint(&a).is_ok());
        let tb = std::thread::spawn(move || wb.add_checkpoint(&b).is_ok());
        let oks = [ta.join().unwrap(), tb.join().unwrap()];
        assert_eq!(oks.iter().filter(|x| **x).count(), 1);
        let size = w.latest(ORIGIN).unwrap().unwrap().size;
        assert!(size == 10 || size == 20);
    }

    // A peer's checkpoint of the same size with another root freezes the origin: evidence verifies offline, requests are refused, a restart stays frozen, and clearing acknowledges that evidence so the same peer checkpoint does not freeze it again.
    #[test]
    fn split_view_from_a_peer_freezes_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let evidence_dir = dir.path().join("evidence");
        let db = dir.path().join("db");
        let w = witness(&db).with_evidence_dir(evidence_dir.clone());
        w.add_checkpoint(&request(0, &tree(8, 0), &log_key()))
            .unwrap();
        assert!(matches!(
            w.check_peer(&signed(&tree(8, 0), &log_key())).unwrap(),
            PeerCheck::Agrees
        ));
        let stranger = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
        assert!(matches!(
            w.check_peer(&signed(&tree(8, 1), &stranger)).unwrap(),
            PeerCheck::Unsigned(_)
        ));
        let theirs = signed(&tree(8, 1), &log_key());
        let PeerCheck::SplitView(ev) = w.check_peer(&theirs).unwrap() else {
            panic!("not a split view");
        };
        let path = w.freeze(&ev).unwrap().unwrap();
        let on_disk: Evidence =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let finding = acd_core::evidence::verify(&on_disk, &log_key().verifier()).unwrap();
        assert!(finding.conclusive);
        assert!(matches!(
            w.add_checkpoint(&request(8, &tree(9, 0), &log_key())),
            Err(WitnessError::Frozen { .. })
        ));
        assert!(matches!(w.check_peer(&theirs).unwrap(), PeerCheck::Settled));
        drop(w);

        let w = witness(&db);
        assert!(matches!(
            w.add_checkpoint(&request(8, &tree(9, 0), &log_key())),
            Err(WitnessError::Frozen { .. })
        ));
        assert!(w.frozen().clear(ORIGIN).unwrap());
        assert!(!w.frozen().clear(ORIGIN).unwrap());
        assert!(matches!(w.check_peer(&theirs).unwrap(), PeerCheck::Settled));
        w.add_checkpoint(&request(8, &tree(9, 0), &log_key()))
            .unwrap();
        // A new contradiction is a new split view.
        assert!(matches!(
            w.check_peer(&signed(&tree(9, 2), &log_key())).unwrap(),
            PeerCheck::SplitView(_)
        ));
    }

    // A peer's checkpoint of another size needs a consistency proof: a valid one settles it, a failing one is evidence.
    #[test]
    fn peer_of_another_size_needs_a_proof() {
        let dir = tempfile::tempdir().unwrap();
        let w = witness(dir.path());
        w.add_checkpoint(&request(0, &tree(8, 0), &log_key()))
            .unwrap();
        let grown = tree(20, 0);
        let PeerCheck::NeedsProof {
            from,
            to,
            ours,
            theirs,
        } = w.check_peer(&signed(&grown, &log_key())).unwrap()
        else {
            panic!("no proof asked");
        };
        assert_eq!((from, to), (8, 20));
        let proof = grown.consistency_proof(8, 20).unwrap();
        assert!(w.conclude(&ours, &theirs, proof).unwrap().is_none());

        let fork = tree(20, 1);
        let PeerCheck::NeedsProof { ours, theirs, .. } =
            w.check_peer(&signed(&fork, &log_key())).unwrap()
        else {
            panic!("no proof asked");
        };
        let ev = w
            .conclude(&ours, &theirs, fork.consistency_proof(8, 20).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(ev.kind, acd_core::evidence::Kind::Inconsistent);
        let finding = acd_core::evidence::verify(&ev, &log_key().verifier()).unwrap();
        assert!(!finding.conclusive);
    }
}
