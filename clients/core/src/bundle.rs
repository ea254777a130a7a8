//! Certified delivery for third parties: a proof bundle is the merchant's
//! signed offer (P1) and a C2SP tlog-proof of the commit entry (P5) whose
//! `extra` is the entry itself. Anyone with the log's key (and a witness
//! policy) can check offline that the merchant published, on time, the key
//! of the goods whose ciphertext and plaintext hashes the offer names.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bank_api::SignedOffer;
use crate::checkpoint::SignedCheckpoint;
use crate::entry::{LogEntry, Outcome};
use crate::merkle;
use crate::note::NoteVerifier;
use crate::proof::{ProofError, WitnessPolicy};
use crate::tlog_proof::TlogProof;

/// The `kind` of a proof bundle file.
pub const BUNDLE_KIND: &str = "acd/v1/proof-bundle";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    #[error("not a proof bundle (kind {0:?})")]
    Kind(String),
    #[error("offer: {0}")]
    Offer(String),
    #[error("tlog-proof: {0}")]
    TlogProof(String),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("the entry does not match the offer: {0}")]
    Mismatch(&'static str),
}

/// `acd wallet proof TID` writes this as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    pub kind: String,
    pub offer: SignedOffer,
    /// C2SP tlog-proof text; `extra` is the commit entry.
    pub tlog_proof: String,
}

/// What a valid bundle proves.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    pub entry: LogEntry,
    pub checkpoint: SignedCheckpoint,
    pub index: u64,
    /// The goods key the merchant committed.
    pub key: [u8; 32],
}

impl ProofBundle {
    pub fn new(offer: SignedOffer, proof: &TlogProof) -> Self {
        ProofBundle {
            kind: BUNDLE_KIND.to_owned(),
            offer,
            tlog_proof: proof.to_text(),
        }
    }

    /// Checks everything offline: the offer's signature, the checkpoint's
    /// signature by `log` and the witness policy, the inclusion of the
    /// entry, the entry's own signature and timeliness, and that the entry
    /// commits for the offer's TID, merchant, log and expiration.
    pub fn verify(
        &self,
        log: &NoteVerifier,
        policy: &WitnessPolicy,
    ) -> Result<VerifiedBundle, BundleError> {
        if self.kind != BUNDLE_KIND {
            return Err(BundleError::Kind(self.kind.clone()));
        }
        let offer = &self.offer.offer;
        offer
            .verify(&self.offer.signature)
            .map_err(|e| BundleError::Offer(e.to_string()))?;
        let proof = TlogProof::parse(&self.tlog_proof)
            .map_err(|e| BundleError::TlogProof(e.to_string()))?;
        let entry_bytes = proof
            .extra
            .as_deref()
            .ok_or(BundleError::TlogProof("no entry in extra".into()))?;
        let checkpoint = SignedCheckpoint::open(&proof.checkpoint, log)
            .map_err(|e| ProofError::Checkpoint(e.to_string()))?;
        policy.check(&checkpoint)?;
        merkle::verify_inclusion(
            &merkle::leaf_hash(entry_bytes),
            proof.index,
            checkpoint.checkpoint.size,
            &proof.hashes,
            &checkpoint.checkpoint.root,
        )
        .map_err(|e| ProofError::Inclusion(e.to_string()))?;
        let entry = LogEntry::decode(entry_bytes).map_err(|e| ProofError::Entry(e.to_string()))?;
        entry
            .verify_signature(&checkpoint.checkpoint.origin)
            .map_err(|e| ProofError::Entry(e.to_string()))?;
        if checkpoint.checkpoint.origin != offer.log_origin {
            return Err(BundleError::Mismatch("log"));
        }
        let LogEntry::Commit { key, .. } = entry else {
            return Err(BundleError::Mismatch("the entry is an abort"));
        };
        if entry.outcome() != Outcome::Commit || entry.tid() != offer.tid {
            return Err(BundleError::Mismatch("TID"));
        }
        if entry.merchant() != offer.merchant {
            return Err(BundleError::Mismatch("merchant"));
        }
        if entry.expiration_ms() != offer.expiration_ms {
            return Err(BundleError::Mismatch("expiration"));
        }
        if !entry.timely() {
            return Err(BundleError::Mismatch("logged after its expiration"));
        }
        Ok(VerifiedBundle {
            entry,
            checkpoint,
            index: proof.index,
            key,
        })
    }
}
