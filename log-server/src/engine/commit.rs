//! P4/P5: the merchant's key commit. The log checks the merchant's
//! signature over (log origin, TID, merchant, expiration, key); the
//! sequencer then decides the step's rule — the log's clock is before the
//! expiration and the TID has no outcome yet — and appends the commit
//! entry, answering with its inclusion proof once it is durable.

use acd_core::entry::KeyCommit;
use acd_core::error::DomainError;
use acd_core::log_api::{CommitRequest, EntryProof};

use super::Engine;
use crate::sequencer::Append;

impl Engine {
    /// Appends the key commit `req` (or answers with the same entry if it
    /// is already there).
    pub async fn commit(&self, req: CommitRequest) -> Result<EntryProof, DomainError> {
        KeyCommit {
            log_origin: self.origin.to_string(),
            tid: req.tid,
            merchant: req.merchant,
            expiration_ms: req.expiration_ms,
            key: req.key,
        }
        .verify(&req.signature)
        .map_err(|e| DomainError::bad("bad_signature", e.to_string()))?;
        Ok(self.sequencer.append(Append::Commit(req)).await?)
    }
}
