//! Checking what the log says, offline (paper P5, P6, Q1/Q2, deposit,
//! refund): an entry with its inclusion proof under a checkpoint signed by a
//! trusted log and cosigned per a witness policy, and a view of one log that
//! only ever moves forward along consistency proofs.
//!
//! The caller does the I/O (fetching a consistency proof when
//! [`LogView::proof_needed`] asks for one); everything here is pure.

use thiserror::Error;

use crate::checkpoint::SignedCheckpoint;
use crate::cosignature::{self, CosignatureVerifier};
use crate::entry::LogEntry;
use crate::log_api::EntryProof;
use crate::merkle::{self, Hash};
use crate::note::NoteVerifier;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("the checkpoint has {got} of the {need} witness cosignatures required")]
    Witnesses { got: usize, need: usize },
    #[error("the proof is for tree size {proof} but the checkpoint has {checkpoint}")]
    SizeMismatch { proof: u64, checkpoint: u64 },
    #[error("the leaf hash does not match the entry bytes")]
    LeafHash,
    #[error("inclusion proof: {0}")]
    Inclusion(String),
    #[error("entry: {0}")]
    Entry(String),
    #[error("the entry differs from the answer's summary (TID or outcome)")]
    Summary,
    #[error("consistency proof from {from} to {to}: {reason}")]
    Inconsistent { from: u64, to: u64, reason: String },
    #[error("two checkpoints of size {size} with different roots: a split view")]
    SplitView { size: u64 },
}

/// "k of these n witnesses must have cosigned": what makes a checkpoint final
/// for a party. `k = 0` trusts the log's signature alone.
#[derive(Debug, Clone, Default)]
pub struct WitnessPolicy {
    pub threshold: usize,
    pub witnesses: Vec<CosignatureVerifier>,
}

impl WitnessPolicy {
    /// No cosignatures needed.
    pub fn none() -> Self {
        WitnessPolicy::default()
    }

    pub fn new(threshold: usize, witnesses: Vec<CosignatureVerifier>) -> Self {
        WitnessPolicy {
            threshold,
            witnesses,
        }
    }

    /// Checks that at least `threshold` distinct listed witnesses cosigned.
    pub fn check(&self, checkpoint: &SignedCheckpoint) -> Result<(), ProofError> {
        if self.threshold == 0 {
            return Ok(());
        }
        let got = cosignature::cosigners(&checkpoint.note, &self.witnesses).len();
        if got >= self.threshold {
            Ok(())
        } else {
            Err(ProofError::Witnesses {
                got,
                need: self.threshold,
            })
        }
    }
}

/// An entry proven to be in a checkpoint's tree.
#[derive(Debug, Clone)]
pub struct VerifiedEntry {
    pub proof: EntryProof,
    pub entry: LogEntry,
    pub checkpoint: SignedCheckpoint,
}

/// Checks an [`EntryProof`] completely: checkpoint signed by `log` (the
/// checkpoint's origin must be the key's name), the witness policy, the leaf
/// hash of the entry bytes, the inclusion proof to the root, the entry's own
/// signature, and that the summary fields match the entry.
pub fn verify_entry_proof(
    proof: &EntryProof,
    log: &NoteVerifier,
    policy: &WitnessPolicy,
) -> Result<VerifiedEntry, ProofError> {
    let checkpoint = SignedCheckpoint::open(&proof.checkpoint, log)
        .map_err(|e| ProofError::Checkpoint(e.to_string()))?;
    policy.check(&checkpoint)?;
    let entry = verify_entry_under(proof, &checkpoint)?;
    Ok(VerifiedEntry {
        proof: proof.clone(),
        entry,
        checkpoint,
    })
}

/// The same, for a checkpoint already opened (so already verified).
pub fn verify_entry_under(
    proof: &EntryProof,
    checkpoint: &SignedCheckpoint,
) -> Result<LogEntry, ProofError> {
    if checkpoint.checkpoint.size != proof.tree_size {
        return Err(ProofError::SizeMismatch {
            proof: proof.tree_size,
            checkpoint: checkpoint.checkpoint.size,
        });
    }
    if merkle::leaf_hash(&proof.entry) != proof.leaf_hash {
        return Err(ProofError::LeafHash);
    }
    merkle::verify_inclusion(
        &proof.leaf_hash,
        proof.index,
        proof.tree_size,
        &proof.inclusion,
        &checkpoint.checkpoint.root,
    )
    .map_err(|e| ProofError::Inclusion(e.to_string()))?;
    let entry = LogEntry::decode(&proof.entry).map_err(|e| ProofError::Entry(e.to_string()))?;
    if entry.tid() != proof.tid
        || entry.outcome() != proof.outcome
        || entry.timestamp_ms() != proof.timestamp_ms
    {
        return Err(ProofError::Summary);
    }
    entry
        .verify_signature(&checkpoint.checkpoint.origin)
        .map_err(|e| ProofError::Entry(e.to_string()))?;
    Ok(entry)
}

/// What a party has seen of one log: the largest checkpoint it verified.
/// Every other checkpoint it accepts must be consistent with it, so all the
/// checkpoints it ever accepted lie on one append-only history.
#[derive(Debug, Clone, Default)]
pub struct LogView {
    latest: Option<SignedCheckpoint>,
}

impl LogView {
    pub fn new(latest: Option<SignedCheckpoint>) -> Self {
        LogView { latest }
    }

    pub fn latest(&self) -> Option<&SignedCheckpoint> {
        self.latest.as_ref()
    }

    /// The consistency proof needed to accept `new` as `(from, to)` sizes,
    /// or `None` when no proof is needed (first checkpoint, equal size, or
    /// an empty tree on one side).
    pub fn proof_needed(&self, new: &SignedCheckpoint) -> Option<(u64, u64)> {
        let old = self.latest.as_ref()?;
        let (a, b) = (old.checkpoint.size, new.checkpoint.size);
        match a.cmp(&b) {
            std::cmp::Ordering::Equal => None,
            _ if a.min(b) == 0 => None,
            std::cmp::Ordering::Less => Some((a, b)),
            std::cmp::Ordering::Greater => Some((b, a)),
        }
    }

    /// Accepts `new` (already signature-checked) if `proof` (for the sizes
    /// [`Self::proof_needed`] names; empty otherwise) shows it lies on the
    /// same history. Returns true when `new` became the latest.
    pub fn accept(&mut self, new: &SignedCheckpoint, proof: &[Hash]) -> Result<bool, ProofError> {
        let Some(old) = &self.latest else {
            self.latest = Some(new.clone());
            return Ok(true);
        };
        let (o, n) = (&old.checkpoint, &new.checkpoint);
        if o.size == n.size {
            return if o.root == n.root {
                Ok(false)
            } else {
                Err(ProofError::SplitView { size: o.size })
            };
        }
        let (small, large) = if o.size < n.size { (o, n) } else { (n, o) };
        if small.size > 0 {
            merkle::verify_consistency(small.size, large.size, proof, &small.root, &large.root)
                .map_err(|e| ProofError::Inconsistent {
                    from: small.size,
                    to: large.size,
                    reason: e.to_string(),
                })?;
        }
        if n.size > o.size {
            self.latest = Some(new.clone());
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::cosignature::Cosigner;
    use crate::note::NoteSigner;
    use ed25519_dalek::SigningKey;

    fn tree(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect()
    }

    fn mem(leaves: &[Hash]) -> merkle::MemoryTree {
        let mut t = merkle::MemoryTree::new();
        for l in leaves {
            t.push(*l);
        }
        t
    }

    fn proof(leaves: &[Hash], from: u64) -> Vec<Hash> {
        mem(leaves)
            .consistency_proof(from, leaves.len() as u64)
            .expect("proof")
    }

    fn signed(signer: &NoteSigner, leaves: &[Hash]) -> SignedCheckpoint {
        let root = mem(leaves).root();
        SignedCheckpoint::sign(
            Checkpoint {
                origin: signer.name().to_owned(),
                size: leaves.len() as u64,
                root,
                extensions: vec![],
            },
            signer,
        )
        .expect("signs")
    }

    #[test]
    fn view_moves_forward_on_consistency_only() {
        let signer =
            NoteSigner::new("example.com/log", SigningKey::from_bytes(&[1; 32])).expect("signer");
        let leaves = tree(20);
        let c5 = signed(&signer, &leaves[..5]);
        let c9 = signed(&signer, &leaves[..9]);
        let c20 = signed(&signer, &leaves[..20]);
        let mut view = LogView::default();
        assert_eq!(view.proof_needed(&c9), None);
        assert!(view.accept(&c9, &[]).expect("first"));
        assert_eq!(view.proof_needed(&c20), Some((9, 20)));
        let p = proof(&leaves[..20], 9);
        assert!(view.accept(&c20, &p).expect("forward"));
        // An older one is checked against the latest, and does not replace it.
        let p = proof(&leaves[..20], 5);
        assert_eq!(view.proof_needed(&c5), Some((5, 20)));
        assert!(!view.accept(&c5, &p).expect("older"));
        assert_eq!(view.latest().map(|c| c.checkpoint.size), Some(20));
        // A fork of size 20.
        let mut other = leaves.clone();
        other[3] = [0; 32];
        let fork = signed(&signer, &other);
        assert_eq!(
            view.accept(&fork, &[]),
            Err(ProofError::SplitView { size: 20 })
        );
        // A fork that extends: the proof does not verify.
        other.push([1; 32]);
        let fork21 = signed(&signer, &other);
        let p = proof(&other, 20);
        assert!(matches!(
            view.accept(&fork21, &p),
            Err(ProofError::Inconsistent { .. })
        ));
    }

    #[test]
    fn witness_policy_counts_distinct_listed_witnesses() {
        let signer =
            NoteSigner::new("example.com/log", SigningKey::from_bytes(&[1; 32])).expect("signer");
        let w1 = Cosigner::new("w1", SigningKey::from_bytes(&[2; 32])).expect("w1");
        let w2 = Cosigner::new("w2", SigningKey::from_bytes(&[3; 32])).expect("w2");
        let w3 = Cosigner::new("w3", SigningKey::from_bytes(&[4; 32])).expect("w3");
        let mut c = signed(&signer, &tree(3));
        let policy = WitnessPolicy::new(2, vec![w1.verifier().clone(), w2.verifier().clone()]);
        assert_eq!(
            policy.check(&c),
            Err(ProofError::Witnesses { got: 0, need: 2 })
        );
        c.note
            .signatures
            .push(w1.cosign(&c.note.text, 100).expect("cosign"));
        c.note
            .signatures
            .push(w1.cosign(&c.note.text, 101).expect("cosign"));
        c.note
            .signatures
            .push(w3.cosign(&c.note.text, 100).expect("cosign"));
        assert_eq!(
            policy.check(&c),
            Err(ProofError::Witnesses { got: 1, need: 2 })
        );
        c.note
            .signatures
            .push(w2.cosign(&c.note.text, 100).expect("cosign"));
        policy.check(&c).expect("two of two");
        WitnessPolicy::none().check(&c).expect("none needed");
    }
}
