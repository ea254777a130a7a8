//! Abort: after the expiration, with no commit, the bank shows the log its
//! escrow notice (P3's terms, signed by the bank) and the log records that
//! the transaction failed. The log checks that the bank is one it trusts
//! and its signature; the sequencer then decides the step's rule — the
//! log's clock is at or after the expiration and the TID has no outcome
//! yet — and appends the abort entry.

use acd_core::entry::EscrowNotice;
use acd_core::error::DomainError;
use acd_core::log_api::{AbortRequest, EntryProof};

use super::Engine;
use crate::sequencer::Append;

impl Engine {
    /// Appends the abort `req` (or answers with the same entry if it is
    /// already there).
    pub async fn abort(&self, req: AbortRequest) -> Result<EntryProof, DomainError> {
        if !self.trusted_banks.contains(&req.bank) {
            return Err(DomainError::forbidden(
                "untrusted_bank",
                format!(
                    "bank key {} is not trusted by this log",
                    hex::encode(req.bank)
                ),
            ));
        }
        EscrowNotice {
            log_origin: self.origin.to_string(),
            tid: req.tid,
            merchant: req.merchant,
            expiration_ms: req.expiration_ms,
        }
        .verify(&req.bank, &req.signature)
        .map_err(|e| DomainError::bad("bad_signature", e.to_string()))?;
        Ok(self.sequencer.append(Append::Abort(req)).await?)
    }
}
