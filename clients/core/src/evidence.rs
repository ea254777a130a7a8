//! Evidence that a log misbehaved, and its offline verification.
//!
//! Auditors (the monitor, the witness, gossip between them) write one JSON
//! file per finding; [`verify`] re-checks such a file with nothing but the
//! log's vkey, so that anyone can be convinced without trusting the auditor.
//! This covers the protocol's auditor invariants 1 to 4 (`PROTOCOL.md`,
//! "Invariants that auditors check").
//!
//! The file is one [`Evidence`] object:
//!
//! ```json
//! {
//!   "kind": "split-view",
//!   "origin": "log.example/1",
//!   "detail": "two checkpoints of size 6 with different roots",
//!   "checkpoints": ["<signed note>", "<signed note>"],
//!   "entries": [[300, "<hex entry bytes>"]],
//!   "inclusion": [["<hex hash>", ...]],
//!   "leaf_hash": "<hex>",
//!   "proof": ["<hex hash>", ...],
//!   "prefix_root": "<hex>"
//! }
//! ```
//!
//! `entries`, `inclusion` and `proof` may be empty; `leaf_hash` and
//! `prefix_root` appear only where a kind uses them. What each kind claims
//! and what [`verify`] checks:
//!
//! | kind | claim | checked | conclusive |
//! |---|---|---|---|
//! | `split-view` | two checkpoints of one size, different roots | both signed by the log, same size, roots differ | yes |
//! | `inconsistent` | the first (smaller) checkpoint is not a prefix of the second | both signed, sizes grow; with `prefix_root`: `proof` proves it is the second tree's root at the first size, and it differs from the first root; without: `proof` really fails | with `prefix_root` |
//! | `rollback` | the log served a smaller tree after a larger one | both signed, the second smaller | no |
//! | `bad-checkpoint` | the log served a checkpoint that does not verify | it really does not verify | no |
//! | `entry-hash` | a served entry does not hash to the leaf the tree commits to | `leaf_hash` is included at the entry's index under the first checkpoint; the entry hashes to something else | no |
//! | `bad-entry` | the log included an entry that is malformed or badly signed | the entry is included; it fails to decode or its signature fails | yes |
//! | `untimely` | a commit logged at or after its expiration, or an abort before it (invariant 4) | the entry is included; its own timestamps break the rule | yes |
//! | `second-outcome` | two outcomes for one TID (invariant 3) | two entries at different indices, both included, same TID | yes |
//! | `bad-bundle`, `tree-mismatch` | the served tiles or bundles are malformed or do not hash to the root | the checkpoint is signed; the rest is not in the file | no |
//!
//! Entry proofs (`inclusion[i]` for `entries[i]`) are under the first
//! checkpoint. A finding is *conclusive* when the log's signatures alone
//! prove it: a log cannot sign two roots of one size, or a root over an
//! invalid entry, by accident. An `inconsistent` file without a
//! `prefix_root` shows only that the proof the auditor was given fails; a
//! third party confirms it by asking the log for any consistency proof
//! between the two sizes, which a forked log cannot produce.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::entry::LogEntry;
use crate::log_api::{hex_array, hex_hashes, hex_vec};
use crate::merkle::{self, Hash};
use crate::note::NoteVerifier;

/// What the evidence shows; serialized as the kebab-case names of the
/// module table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    SplitView,
    Inconsistent,
    Rollback,
    BadCheckpoint,
    BadBundle,
    TreeMismatch,
    EntryHash,
    BadEntry,
    Untimely,
    SecondOutcome,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SplitView => "split-view",
            Kind::Inconsistent => "inconsistent",
            Kind::Rollback => "rollback",
            Kind::BadCheckpoint => "bad-checkpoint",
            Kind::BadBundle => "bad-bundle",
            Kind::TreeMismatch => "tree-mismatch",
            Kind::EntryHash => "entry-hash",
            Kind::BadEntry => "bad-entry",
            Kind::Untimely => "untimely",
            Kind::SecondOutcome => "second-outcome",
        }
    }

    /// Whether two signed checkpoints of one log contradict each other: the
    /// kinds that make a split view.
    pub fn is_split_view(self) -> bool {
        matches!(self, Kind::SplitView | Kind::Inconsistent)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry as served: `[index, "hex bytes"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceEntry(pub u64, #[serde(with = "hex_vec")] pub Vec<u8>);

/// An inclusion proof: hex hashes, from the leaf up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof(#[serde(with = "hex_hashes")] pub Vec<Hash>);

/// A hash as hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HexHash(#[serde(with = "hex_array")] pub Hash);

/// One evidence file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub kind: Kind,
    /// The log's origin (its key name).
    pub origin: String,
    /// What the auditor saw, for people; [`verify`] does not rely on it.
    pub detail: String,
    /// The signed checkpoint notes involved, exactly as served.
    pub checkpoints: Vec<String>,
    /// The entries involved.
    #[serde(default)]
    pub entries: Vec<EvidenceEntry>,
    /// An inclusion proof for each entry, under the first checkpoint.
    #[serde(default)]
    pub inclusion: Vec<InclusionProof>,
    /// `entry-hash`: the leaf hash the tree holds at the entry's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_hash: Option<HexHash>,
    /// The consistency proof attempted between the two checkpoints.
    #[serde(default, with = "hex_hashes")]
    pub proof: Vec<Hash>,
    /// `inconsistent`: the second tree's root at the first checkpoint's
    /// size, which `proof` proves into the second checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_root: Option<HexHash>,
}

impl Evidence {
    /// Evidence of `kind` with these checkpoints and nothing else yet.
    pub fn new(kind: Kind, origin: &str, detail: String, checkpoints: Vec<String>) -> Self {
        Evidence {
            kind,
            origin: origin.to_owned(),
            detail,
            checkpoints,
            entries: Vec::new(),
            inclusion: Vec::new(),
            leaf_hash: None,
            proof: Vec::new(),
            prefix_root: None,
        }
    }

    /// Evidence from two signed checkpoints of one log that contradict each
    /// other: `split-view` when their sizes are equal, `inconsistent`
    /// (smaller first) otherwise. `proof` is the consistency proof attempted
    /// between them; `prefix_root`, when known, the larger tree's root at
    /// the smaller size, which `proof` proves.
    pub fn contradiction(
        origin: &str,
        a: (&Checkpoint, &str),
        b: (&Checkpoint, &str),
        proof: Vec<Hash>,
        prefix_root: Option<Hash>,
    ) -> Self {
        let (small, large) = if a.0.size <= b.0.size { (a, b) } else { (b, a) };
        let checkpoints = vec![small.1.to_owned(), large.1.to_owned()];
        if small.0.size == large.0.size {
            return Evidence::new(
                Kind::SplitView,
                origin,
                format!(
                    "two checkpoints of size {} with different roots",
                    small.0.size
                ),
                checkpoints,
            );
        }
        let mut ev = Evidence::new(
            Kind::Inconsistent,
            origin,
            format!(
                "no valid consistency from size {} to size {}",
                small.0.size, large.0.size
            ),
            checkpoints,
        );
        ev.proof = proof;
        ev.prefix_root = prefix_root.map(HexHash);
        ev
    }
}

/// What a verified evidence file proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub origin: String,
    /// The log's signatures alone prove the misbehaviour. When false the
    /// file also rests on data the log served unsigned (a bundle, a tile)
    /// or on a proof the log failed to give; see the module doc.
    pub conclusive: bool,
    /// One line for people.
    pub summary: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} ({})",
            self.origin,
            self.kind,
            self.summary,
            if self.conclusive {
                "proven by the log's signatures"
            } else {
                "not conclusive by signatures alone"
            }
        )
    }
}

/// Why an evidence file does not show what it claims.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EvidenceError {
    #[error("malformed evidence: {0}")]
    Malformed(String),
    #[error("the evidence is about {evidence:?}, the key is of {key:?}")]
    OriginMismatch { evidence: String, key: String },
    #[error("checkpoint {index} is not a valid checkpoint of the log: {error}")]
    Checkpoint {
        index: usize,
        error: CheckpointError,
    },
    #[error("entry {index} is not included under the checkpoint: {reason}")]
    NotIncluded { index: u64, reason: String },
    #[error("the consistency proof does not prove the claimed prefix root: {0}")]
    BadPrefixProof(String),
    #[error("the evidence shows no violation: {0}")]
    NoViolation(String),
}

fn malformed(s: impl Into<String>) -> EvidenceError {
    EvidenceError::Malformed(s.into())
}

fn open(ev: &Evidence, index: usize, log: &NoteVerifier) -> Result<Checkpoint, EvidenceError> {
    let text = ev
        .checkpoints
        .get(index)
        .ok_or_else(|| malformed(format!("{} needs checkpoint {index}", ev.kind)))?;
    SignedCheckpoint::open(text, log)
        .map(|c| c.checkpoint)
        .map_err(|error| EvidenceError::Checkpoint { index, error })
}

fn two(ev: &Evidence, log: &NoteVerifier) -> Result<(Checkpoint, Checkpoint), EvidenceError> {
    if ev.checkpoints.len() != 2 {
        return Err(malformed(format!(
            "{} needs exactly two checkpoints",
            ev.kind
        )));
    }
    Ok((open(ev, 0, log)?, open(ev, 1, log)?))
}

/// Entry `i` of the evidence, checked to be included under `cp`.
fn included<'a>(
    ev: &'a Evidence,
    i: usize,
    cp: &Checkpoint,
) -> Result<(u64, &'a [u8]), EvidenceError> {
    let EvidenceEntry(index, bytes) = ev
        .entries
        .get(i)
        .ok_or_else(|| malformed(format!("{} needs entry {i}", ev.kind)))?;
    let proof = ev
        .inclusion
        .get(i)
        .ok_or_else(|| malformed(format!("entry {index} has no inclusion proof")))?;
    merkle::verify_inclusion(
        &merkle::leaf_hash(bytes),
        *index,
        cp.size,
        &proof.0,
        &cp.root,
    )
    .map_err(|e| EvidenceError::NotIncluded {
        index: *index,
        reason: e.to_string(),
    })?;
    Ok((*index, bytes))
}

/// Re-checks everything `evidence` claims, with the log's vkey only. See
/// the module doc for what each kind must show.
pub fn verify(evidence: &Evidence, log: &NoteVerifier) -> Result<Finding, EvidenceError> {
    let ev = evidence;
    if ev.origin != log.name() {
        return Err(EvidenceError::OriginMismatch {
            evidence: ev.origin.clone(),
            key: log.name().to_owned(),
        });
    }
    let finding = |conclusive: bool, summary: String| Finding {
        kind: ev.kind,
        origin: ev.origin.clone(),
        conclusive,
        summary,
    };
    let none = |s: &str| EvidenceError::NoViolation(s.to_owned());
    match ev.kind {
        Kind::SplitView => {
            let (a, b) = two(ev, log)?;
            if a.size != b.size {
                return Err(malformed("a split view needs two checkpoints of one size"));
            }
            if a.root == b.root {
                return Err(none("the two checkpoints have the same root"));
            }
            Ok(finding(
                true,
                format!(
                    "two signed checkpoints of size {} with roots {} and {}",
                    a.size,
                    hex::encode(a.root),
                    hex::encode(b.root)
                ),
            ))
        }
        Kind::Inconsistent => {
            let (a, b) = two(ev, log)?;
            if a.size >= b.size {
                return Err(malformed(
                    "inconsistent needs the smaller checkpoint first (equal sizes are a split view)",
                ));
            }
            if a.size == 0 {
                return Err(none("every tree extends the empty tree"));
            }
            match ev.prefix_root {
                Some(HexHash(prefix)) => {
                    merkle::verify_consistency(a.size, b.size, &ev.proof, &prefix, &b.root)
                        .map_err(|e| EvidenceError::BadPrefixProof(e.to_string()))?;
                    if prefix == a.root {
                        return Err(none("the larger tree extends the smaller one"));
                    }
                    Ok(finding(
                        true,
                        format!(
                            "the signed tree of size {} has root {} at size {}, the signed checkpoint of size {} has root {}",
                            b.size,
                            hex::encode(prefix),
                            a.size,
                            a.size,
                            hex::encode(a.root)
                        ),
                    ))
                }
                None => {
                    match merkle::verify_consistency(a.size, b.size, &ev.proof, &a.root, &b.root) {
                        Ok(()) => Err(none("the consistency proof verifies")),
                        Err(e) => Ok(finding(
                            false,
                            format!(
                                "the consistency proof from size {} to size {} fails ({e}); ask the log for one",
                                a.size, b.size
                            ),
                        )),
                    }
                }
            }
        }
        Kind::Rollback => {
            let (a, b) = two(ev, log)?;
            if b.size >= a.size {
                return Err(none("the second checkpoint is not smaller"));
            }
            Ok(finding(
                false,
                format!(
                    "the log served size {} after size {} (checkpoints carry no time: an old checkpoint replayed)",
                    b.size, a.size
                ),
            ))
        }
        Kind::BadCheckpoint => {
            let text = ev
                .checkpoints
                .first()
                .ok_or_else(|| malformed("bad-checkpoint needs the checkpoint served"))?;
            match SignedCheckpoint::open(text, log) {
                Ok(_) => Err(none("the checkpoint verifies")),
                Err(e) => Ok(finding(
                    false,
                    format!("the checkpoint served does not verify: {e}"),
                )),
            }
        }
        Kind::BadBundle | Kind::TreeMismatch => {
            let cp = open(ev, 0, log)?;
            Ok(finding(
                false,
                format!(
                    "the tiles or bundles served for the signed tree of size {} are wrong; the file cannot show it",
                    cp.size
                ),
            ))
        }
        Kind::EntryHash => {
            let cp = open(ev, 0, log)?;
            let EvidenceEntry(index, bytes) = ev
                .entries
                .first()
                .ok_or_else(|| malformed("entry-hash needs the entry"))?;
            let HexHash(leaf) = ev
                .leaf_hash
                .ok_or_else(|| malformed("entry-hash needs the leaf hash"))?;
            let proof = ev
                .inclusion
                .first()
                .ok_or_else(|| malformed("entry-hash needs an inclusion proof"))?;
            merkle::verify_inclusion(&leaf, *index, cp.size, &proof.0, &cp.root).map_err(|e| {
                EvidenceError::NotIncluded {
                    index: *index,
                    reason: e.to_string(),
                }
            })?;
            if merkle::leaf_hash(bytes) == leaf {
                return Err(none("the entry hashes to its leaf"));
            }
            Ok(finding(
                false,
                format!(
                    "the entry served at {index} does not hash to the leaf the signed tree of size {} holds",
                    cp.size
                ),
            ))
        }
        Kind::BadEntry => {
            let cp = open(ev, 0, log)?;
            let (index, bytes) = included(ev, 0, &cp)?;
            let problem = LogEntry::decode(bytes)
                .and_then(|e| e.verify_signature(&ev.origin))
                .err()
                .ok_or_else(|| none("the entry decodes and its signature verifies"))?;
            Ok(finding(
                true,
                format!(
                    "entry {index} of the signed tree of size {}: {problem}",
                    cp.size
                ),
            ))
        }
        Kind::Untimely => {
            let cp = open(ev, 0, log)?;
            let (index, bytes) = included(ev, 0, &cp)?;
            let entry = LogEntry::decode(bytes).map_err(|e| malformed(e.to_string()))?;
            if entry.timely() {
                return Err(none("the entry was logged in time"));
            }
            Ok(finding(
                true,
                format!(
                    "entry {index}: {} logged at {} ms for expiration {} ms",
                    entry.outcome(),
                    entry.timestamp_ms(),
                    entry.expiration_ms()
                ),
            ))
        }
        Kind::SecondOutcome => {
            let cp = open(ev, 0, log)?;
            let (i, first) = included(ev, 0, &cp)?;
            let (j, second) = included(ev, 1, &cp)?;
            if i == j {
                return Err(none("both entries are at the same index"));
            }
            let (first, second) = (
                LogEntry::decode(first).map_err(|e| malformed(e.to_string()))?,
                LogEntry::decode(second).map_err(|e| malformed(e.to_string()))?,
            );
            if first.tid() != second.tid() {
                return Err(none("the entries have different TIDs"));
            }
            Ok(finding(
                true,
                format!(
                    "TID {} has a {} at entry {i} and a {} at entry {j}",
                    first.tid(),
                    first.outcome(),
                    second.outcome()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::entry::{KeyCommit, Tid};
    use crate::merkle::MemoryTree;
    use crate::note::NoteSigner;

    const ORIGIN: &str = "evidence.test/log";

    fn log_key() -> NoteSigner {
        NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap()
    }

    fn merchant() -> SigningKey {
        SigningKey::from_bytes(&[5; 32])
    }

    /// A commit entry, validly signed by the merchant.
    fn commit(tid: u8, timestamp_ms: u64, expiration_ms: u64) -> Vec<u8> {
        let m = merchant();
        let kc = KeyCommit {
            log_origin: ORIGIN.into(),
            tid: Tid([tid; 16]),
            merchant: m.verifying_key().to_bytes(),
            expiration_ms,
            key: [tid; 32],
        };
        LogEntry::Commit {
            timestamp_ms,
            tid: kc.tid,
            merchant: kc.merchant,
            expiration_ms,
            key: kc.key,
            signature: kc.sign(&m),
        }
        .encode()
    }

    fn tree(entries: &[Vec<u8>]) -> MemoryTree {
        let mut t = MemoryTree::new();
        for e in entries {
            t.push(merkle::leaf_hash(e));
        }
        t
    }

    fn history(n: u8, salt: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| commit(i ^ salt, 1_000, 2_000)).collect()
    }

    fn checkpoint(t: &MemoryTree, size: u64, signer: &NoteSigner) -> (Checkpoint, String) {
        let c = Checkpoint {
            origin: signer.name().into(),
            size,
            root: t.root_at(size),
            extensions: vec![],
        };
        let text = SignedCheckpoint::sign(c.clone(), signer).unwrap().to_text();
        (c, text)
    }

    fn entry_evidence(kind: Kind, t: &MemoryTree, entries: &[(u64, Vec<u8>)]) -> Evidence {
        let (_, text) = checkpoint(t, t.len(), &log_key());
        let mut ev = Evidence::new(kind, ORIGIN, "test".into(), vec![text]);
        for (i, bytes) in entries {
            ev.entries.push(EvidenceEntry(*i, bytes.clone()));
            ev.inclusion
                .push(InclusionProof(t.inclusion_proof(*i, t.len()).unwrap()));
        }
        ev
    }

    fn check(ev: &Evidence) -> Result<Finding, EvidenceError> {
        // Every file goes through JSON, as it would on disk.
        let json = serde_json::to_string_pretty(ev).unwrap();
        verify(&serde_json::from_str(&json).unwrap(), &log_key().verifier())
    }

    // Two signed checkpoints of one size with different roots verify as a conclusive split view; forged variants are rejected.
    #[test]
    fn split_view() {
        let (a, b) = (tree(&history(6, 0)), tree(&history(6, 0x80)));
        let (ca, ta) = checkpoint(&a, 6, &log_key());
        let (cb, tb) = checkpoint(&b, 6, &log_key());
        let ev = Evidence::contradiction(ORIGIN, (&ca, &ta), (&cb, &tb), vec![], None);
        assert_eq!(ev.kind, Kind::SplitView);
        let f = check(&ev).unwrap();
        assert!(f.conclusive);
        assert!(f.to_string().contains("split-view"));
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["kind"], "split-view");

        // The same note twice is no split view.
        let mut same = ev.clone();
        same.checkpoints[1] = ta.clone();
        assert!(matches!(check(&same), Err(EvidenceError::NoViolation(_))));
        // A note signed by another key with the log's name is not the log's.
        let stranger = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
        let mut forged = ev.clone();
        forged.checkpoints[1] = checkpoint(&b, 6, &stranger).1;
        assert!(matches!(
            check(&forged),
            Err(EvidenceError::Checkpoint { index: 1, .. })
        ));
        // A note whose text was edited after signing.
        let mut edited = ev.clone();
        edited.checkpoints[1] = tb.replacen("\n6\n", "\n7\n", 1);
        assert!(matches!(
            check(&edited),
            Err(EvidenceError::Checkpoint { index: 1, .. })
        ));
        // Evidence about another log.
        let mut other = ev.clone();
        other.origin = "other.test/log".into();
        assert!(matches!(
            check(&other),
            Err(EvidenceError::OriginMismatch { .. })
        ));
        // Different sizes are not a split view.
        let mut sizes = ev;
        sizes.checkpoints[1] = checkpoint(&a, 5, &log_key()).1;
        assert!(matches!(check(&sizes), Err(EvidenceError::Malformed(_))));
    }

    // A larger tree whose proven prefix root differs from a signed smaller checkpoint is a conclusive fork; a proof that verifies, or a prefix root the proof does not prove, is rejected.
    #[test]
    fn inconsistent_with_prefix_root() {
        let a = tree(&history(6, 0));
        let mut b_entries = history(6, 0x80);
        b_entries.extend(history(5, 0x40));
        let b = tree(&b_entries);
        let (ca, ta) = checkpoint(&a, 6, &log_key());
        let (cb, tb) = checkpoint(&b, 11, &log_key());
        let proof = b.consistency_proof(6, 11).unwrap();
        let ev = Evidence::contradiction(
            ORIGIN,
            (&cb, &tb),
            (&ca, &ta),
            proof.clone(),
            Some(b.root_at(6)),
        );
        assert_eq!(ev.kind, Kind::Inconsistent);
        assert_eq!(ev.checkpoints[0], ta, "the smaller checkpoint comes first");
        assert!(check(&ev).unwrap().conclusive);

        // Without the prefix root, the attempted proof really fails: not conclusive.
        let mut weak = ev.clone();
        weak.prefix_root = None;
        assert!(!check(&weak).unwrap().conclusive);

        // A claimed prefix root that the proof does not lead from.
        let mut forged = ev.clone();
        forged.prefix_root = Some(HexHash([7; 32]));
        assert!(matches!(
            check(&forged),
            Err(EvidenceError::BadPrefixProof(_))
        ));
        // A consistent pair claimed inconsistent: the proof verifies.
        let (cb6, tb6) = checkpoint(&b, 6, &log_key());
        let honest = Evidence::contradiction(ORIGIN, (&cb6, &tb6), (&cb, &tb), proof.clone(), None);
        assert!(matches!(check(&honest), Err(EvidenceError::NoViolation(_))));
        let honest_prefix =
            Evidence::contradiction(ORIGIN, (&cb6, &tb6), (&cb, &tb), proof, Some(b.root_at(6)));
        assert!(matches!(
            check(&honest_prefix),
            Err(EvidenceError::NoViolation(_))
        ));
        // The larger checkpoint first.
        let mut swapped = ev;
        swapped.checkpoints.swap(0, 1);
        assert!(matches!(check(&swapped), Err(EvidenceError::Malformed(_))));
    }

    // A rollback and a checkpoint that does not verify are reported, but not as conclusive; a verifying checkpoint is no evidence.
    #[test]
    fn rollback_and_bad_checkpoint() {
        let t = tree(&history(6, 0));
        let (_, big) = checkpoint(&t, 6, &log_key());
        let (_, small) = checkpoint(&t, 4, &log_key());
        let ev = Evidence::new(
            Kind::Rollback,
            ORIGIN,
            "went back".into(),
            vec![big.clone(), small.clone()],
        );
        assert!(!check(&ev).unwrap().conclusive);
        let forward = Evidence::new(Kind::Rollback, ORIGIN, "x".into(), vec![small, big.clone()]);
        assert!(matches!(
            check(&forward),
            Err(EvidenceError::NoViolation(_))
        ));

        let bad = Evidence::new(
            Kind::BadCheckpoint,
            ORIGIN,
            "x".into(),
            vec![big.replacen("\n6\n", "\n5\n", 1)],
        );
        assert!(!check(&bad).unwrap().conclusive);
        let good = Evidence::new(Kind::BadCheckpoint, ORIGIN, "x".into(), vec![big]);
        assert!(matches!(check(&good), Err(EvidenceError::NoViolation(_))));
    }

    // An entry served with bytes other than its leaf is shown against the included leaf hash; the true bytes are no evidence.
    #[test]
    fn entry_hash() {
        let entries = history(9, 0);
        let t = tree(&entries);
        let mut served = entries[4].clone();
        served[70] ^= 0xff;
        let mut ev = entry_evidence(Kind::EntryHash, &t, &[(4, served)]);
        ev.leaf_hash = Some(HexHash(merkle::leaf_hash(&entries[4])));
        assert!(!check(&ev).unwrap().conclusive);

        let mut honest = ev.clone();
        honest.entries[0].1 = entries[4].clone();
        assert!(matches!(check(&honest), Err(EvidenceError::NoViolation(_))));
        // A leaf hash that the tree does not hold at that index.
        let mut forged = ev;
        forged.leaf_hash = Some(HexHash([3; 32]));
        assert!(matches!(
            check(&forged),
            Err(EvidenceError::NotIncluded { index: 4, .. })
        ));
    }

    // An included entry with a broken signature is conclusive; a valid one, or a bad one not in the tree, is rejected.
    #[test]
    fn bad_entry() {
        let mut entries = history(5, 0);
        entries[2][150] ^= 1; // inside the merchant's signature
        let t = tree(&entries);
        let ev = entry_evidence(Kind::BadEntry, &t, &[(2, entries[2].clone())]);
        let f = check(&ev).unwrap();
        assert!(f.conclusive, "{f}");

        let valid = entry_evidence(Kind::BadEntry, &t, &[(1, entries[1].clone())]);
        assert!(matches!(check(&valid), Err(EvidenceError::NoViolation(_))));
        // The bad entry claimed at another index is not included there.
        let mut moved = ev;
        moved.entries[0].0 = 3;
        assert!(matches!(
            check(&moved),
            Err(EvidenceError::NotIncluded { index: 3, .. })
        ));
    }

    // A commit logged after its expiration is conclusive; a timely one is not evidence, and an untimely entry outside the tree is rejected.
    #[test]
    fn untimely() {
        let mut entries = history(4, 0);
        entries.push(commit(0x77, 5_000, 4_000));
        let t = tree(&entries);
        let ev = entry_evidence(Kind::Untimely, &t, &[(4, entries[4].clone())]);
        assert!(check(&ev).unwrap().conclusive);

        let timely = entry_evidence(Kind::Untimely, &t, &[(0, entries[0].clone())]);
        assert!(matches!(check(&timely), Err(EvidenceError::NoViolation(_))));
        let mut outside = ev;
        outside.entries[0].1 = commit(0x78, 5_000, 4_000);
        assert!(matches!(
            check(&outside),
            Err(EvidenceError::NotIncluded { .. })
        ));
        // No inclusion proof at all.
        let mut bare = outside;
        bare.inclusion.clear();
        assert!(matches!(check(&bare), Err(EvidenceError::Malformed(_))));
    }

    // Two included outcomes for one TID are conclusive; two TIDs, or one entry twice, are not evidence.
    #[test]
    fn second_outcome() {
        let mut entries = history(6, 0);
        entries.push(commit(2, 1_500, 2_000)); // TID 2 again, other key
        let t = tree(&entries);
        let ev = entry_evidence(
            Kind::SecondOutcome,
            &t,
            &[(2, entries[2].clone()), (6, entries[6].clone())],
        );
        assert!(check(&ev).unwrap().conclusive);

        let two_tids = entry_evidence(
            Kind::SecondOutcome,
            &t,
            &[(1, entries[1].clone()), (6, entries[6].clone())],
        );
        assert!(matches!(
            check(&two_tids),
            Err(EvidenceError::NoViolation(_))
        ));
        let twice = entry_evidence(
            Kind::SecondOutcome,
            &t,
            &[(2, entries[2].clone()), (2, entries[2].clone())],
        );
        assert!(matches!(check(&twice), Err(EvidenceError::NoViolation(_))));
        // Proofs under a checkpoint signed by someone else.
        let stranger = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[9; 32])).unwrap();
        let mut forged = ev;
        forged.checkpoints[0] = checkpoint(&t, t.len(), &stranger).1;
        assert!(matches!(
            check(&forged),
            Err(EvidenceError::Checkpoint { index: 0, .. })
        ));
    }

    // Tile and bundle findings need a signed checkpoint and are never conclusive; unknown kinds do not parse.
    #[test]
    fn served_data_and_unknown_kinds() {
        let t = tree(&history(3, 0));
        let (_, text) = checkpoint(&t, 3, &log_key());
        let ev = Evidence::new(Kind::TreeMismatch, ORIGIN, "x".into(), vec![text]);
        assert!(!check(&ev).unwrap().conclusive);
        let json = serde_json::to_string(&ev)
            .unwrap()
            .replace("tree-mismatch", "made-up");
        assert!(serde_json::from_str::<Evidence>(&json).is_err());
    }
}
