//! Certified delivery for third parties: the proof bundle of a delivered
//! purchase (the merchant's signed offer and a C2SP tlog-proof of its
//! commit entry), which anyone can check offline with `acd verify`.

use acd_client::ClientError;
use acd_core::bundle::{BundleError, ProofBundle};
use acd_core::checkpoint::SignedCheckpoint;
use acd_core::entry::Tid;
use acd_core::log_api::EntryProof;
use acd_core::tlog_proof::TlogProof;
use acd_core::token::TokenExport;

use crate::error::WalletError;
use crate::wallet::Wallet;

/// The tlog-proof of an entry proof, with the entry itself as `extra`.
pub fn tlog_proof(commit: &EntryProof) -> TlogProof {
    TlogProof {
        extra: Some(commit.entry.clone()),
        index: commit.index,
        hashes: commit.inclusion.clone(),
        checkpoint: commit.checkpoint.clone(),
    }
}

impl Wallet {
    /// The proof bundle of purchase `tid`: it must have a verified commit
    /// (delivered, or disputed for a bad key). The bundle is checked
    /// before it is returned, under the log's key and the bank's witness
    /// policy.
    pub fn proof(&self, tid: &Tid) -> Result<ProofBundle, WalletError> {
        let r = self.purchase_by_tid(tid)?;
        let (Some(offer), Some(commit)) = (&r.offer, &r.commit) else {
            return Err(WalletError::WrongState {
                id: r.id,
                state: r.state,
                wanted: "no commit entry to prove",
            });
        };
        let bundle = ProofBundle::new(offer.clone(), &tlog_proof(commit));
        let log = self.trusted_log(&offer.offer.log_origin)?;
        let as_error = |e| match e {
            BundleError::Proof(error) => WalletError::Log {
                origin: offer.offer.log_origin.clone(),
                error,
            },
            other => WalletError::Bundle(other),
        };
        bundle
            .verify(&log.verifier, &self.policy)
            .map_err(as_error)?;
        if let Some(extra) = &self.extra_policy {
            bundle.verify(&log.verifier, extra).map_err(as_error)?;
        }
        Ok(bundle)
    }

    /// [`Wallet::proof`], first replacing the stored commit proof by the
    /// log's current one when its checkpoint lacks cosignatures the
    /// caller's witness policy ([`Wallet::with_witness_policy`]) requires:
    /// the log answers a TID under its newest cosigned checkpoint. The new
    /// proof must be of the same entry and consistent with what the wallet
    /// has seen of the log; it is saved.
    pub async fn proof_refreshed(&mut self, tid: &Tid) -> Result<ProofBundle, WalletError> {
        let r = self.purchase_by_tid(tid)?.clone();
        let (Some(offer), Some(commit), Some(extra)) = (&r.offer, &r.commit, &self.extra_policy)
        else {
            return self.proof(tid);
        };
        let origin = offer.offer.log_origin.clone();
        let log = self.trusted_log(&origin)?;
        let stored = SignedCheckpoint::open(&commit.checkpoint, &log.verifier).map_err(|e| {
            WalletError::Format {
                path: self.path.clone(),
                reason: format!("stored commit checkpoint: {e}"),
            }
        })?;
        if extra.check(&stored).is_ok() {
            return self.proof(tid);
        }
        let fresh = self
            .log_client(&origin)?
            .transaction(tid)
            .await?
            .ok_or_else(|| ClientError::Invalid(format!("the log has no entry for TID {tid}")))?;
        if fresh.proof.entry != commit.entry {
            return Err(ClientError::Invalid(format!(
                "the log answers TID {tid} with another entry than the commit the wallet proved"
            ))
            .into());
        }
        self.verify_log_proof(&fresh.proof, &origin).await?;
        self.record_mut(r.id)?.commit = Some(fresh.proof);
        self.save()?;
        self.proof(tid)
    }

    /// A spendable token of `value` (the smallest one if `None`) laid out
    /// for an RFC 9474 verifier. The token stays in the wallet: the export
    /// is a copy of money, spendable by whoever holds it.
    pub fn export_token(&self, value: Option<u64>) -> Result<TokenExport, WalletError> {
        let token = self
            .data
            .tokens
            .iter()
            .filter(|t| value.is_none_or(|v| t.value == v))
            .min_by_key(|t| t.value)
            .ok_or_else(|| {
                WalletError::NoToken(match value {
                    Some(v) => format!("the wallet holds no token of {v}"),
                    None => "the wallet holds no token".to_owned(),
                })
            })?;
        let denomination = self.denomination(&token.token.denomination)?;
        Ok(token.token.export(denomination)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_core::bank_api::SignedOffer;
    use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
    use acd_core::entry::{KeyCommit, LogEntry, Outcome};
    use acd_core::merkle::{self, MemoryTree};
    use acd_core::note::NoteSigner;
    use acd_core::proof::WitnessPolicy;
    use acd_core::purchase::Offer;
    use ed25519_dalek::SigningKey;

    const ORIGIN: &str = "log.test/certify";

    /// An offer and the entry proof of its commit at index 1 of 3.
    fn commit() -> (NoteSigner, SignedOffer, EntryProof) {
        let log = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).expect("log");
        let merchant = SigningKey::from_bytes(&[2; 32]);
        let tid = Tid([5; 16]);
        let offer = Offer {
            bank: [3; 32],
            log_origin: ORIGIN.into(),
            tid,
            merchant: merchant.verifying_key().to_bytes(),
            customer: [4; 32],
            expiration_ms: 10_000,
            price: 3,
            description: "x".into(),
            ciphertext_hash: [6; 32],
            plaintext_hash: [7; 32],
        };
        let key = [8; 32];
        let entry = LogEntry::Commit {
            timestamp_ms: 5_000,
            tid,
            merchant: offer.merchant,
            expiration_ms: offer.expiration_ms,
            key,
            signature: KeyCommit {
                log_origin: ORIGIN.into(),
                tid,
                merchant: offer.merchant,
                expiration_ms: offer.expiration_ms,
                key,
            }
            .sign(&merchant),
        }
        .encode();
        let mut tree = MemoryTree::new();
        tree.push(merkle::leaf_hash(b"a"));
        tree.push(merkle::leaf_hash(&entry));
        tree.push(merkle::leaf_hash(b"c"));
        let cp = SignedCheckpoint::sign(
            Checkpoint {
                origin: ORIGIN.into(),
                size: 3,
                root: tree.root(),
                extensions: vec![],
            },
            &log,
        )
        .expect("checkpoint");
        let proof = EntryProof {
            index: 1,
            tid,
            outcome: Outcome::Commit,
            timestamp_ms: 5_000,
            leaf_hash: merkle::leaf_hash(&entry),
            entry,
            tree_size: 3,
            inclusion: tree.inclusion_proof(1, 3).expect("inclusion"),
            checkpoint: cp.to_text(),
        };
        let signature = offer.sign(&merchant);
        (log, SignedOffer { offer, signature }, proof)
    }

    #[test]
    fn a_stored_commit_makes_a_verifiable_bundle() {
        // The tlog-proof of a stored entry proof carries the entry, index,
        // hashes and checkpoint, and the bundle verifies; altering any part
        // of it does not.
        let (log, offer, proof) = commit();
        let t = tlog_proof(&proof);
        assert_eq!(t.extra.as_deref(), Some(proof.entry.as_slice()));
        let bundle = ProofBundle::new(offer.clone(), &t);
        let v = bundle
            .verify(&log.verifier(), &WitnessPolicy::none())
            .expect("verifies");
        assert_eq!((v.index, v.key), (1, [8; 32]));

        let mut bad = proof.clone();
        bad.index = 2;
        let b = ProofBundle::new(offer.clone(), &tlog_proof(&bad));
        assert!(b.verify(&log.verifier(), &WitnessPolicy::none()).is_err());
        let mut bad = proof.clone();
        bad.entry[20] ^= 1;
        let b = ProofBundle::new(offer.clone(), &tlog_proof(&bad));
        assert!(b.verify(&log.verifier(), &WitnessPolicy::none()).is_err());
        let mut other = offer.clone();
        other.offer.expiration_ms += 1;
        let b = ProofBundle::new(other, &t);
        assert!(b.verify(&log.verifier(), &WitnessPolicy::none()).is_err());
    }
}
