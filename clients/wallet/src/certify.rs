//! Certified delivery for third parties: the proof bundle of a delivered
//! purchase (the merchant's signed offer and a C2SP tlog-proof of its
//! commit entry), which anyone can check offline with `acd verify`.

use acd_core::bundle::{BundleError, ProofBundle};
use acd_core::entry::Tid;
use acd_core::log_api::EntryProof;
use acd_core::tlog_proof::TlogProof;

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
        bundle
            .verify(&log.verifier, &self.policy)
            .map_err(|e| match e {
                BundleError::Proof(error) => WalletError::Log {
                    origin: offer.offer.log_origin.clone(),
                    error,
                },
                other => WalletError::Bundle(other),
            })?;
        Ok(bundle)
    }
}
