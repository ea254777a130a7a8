//! Refund after an abort: Q signs a refund of the TID's escrow with
//! blinded messages worth its price; once the log holds the abort (the
//! sweeper recorded it, or Q shows the abort entry with its proof) the bank
//! returns fresh blind signatures, unlinkable to the spent tokens.
//!
//! Idempotent by the refund's digest; an escrow is refunded once. The
//! checks shared with the dispute ([`super::dispute`]) are here too.

use std::sync::Arc;

use acd_core::bank_api::{BlindSignatures, RefundRequest};
use acd_core::entry::{LogEntry, Tid};
use acd_core::error::DomainError;
use acd_core::log_api::EntryProof;
use acd_core::purchase::{Refund, RefundReason};

use super::{BankState, bad_signature, entry_matches, release, sha256};
use crate::ledger::{LedgerOp, Tx, corrupt_totals, wrong_state};
use crate::records::{self, Escrow, EscrowStatus, RefundRecord};

/// What a refund answers: one blind signature per blinded message.
pub type Refunded = BlindSignatures;

/// Refund after an abort; `abort` is the customer's proof, if any.
#[derive(Debug, Clone)]
pub struct RefundOp {
    pub tid: Tid,
    pub customer: [u8; 32],
    pub total: u64,
    pub record: RefundRecord,
    pub abort: Option<Box<EntryProof>>,
}

/// A checked refund request: its escrow, its blinded total, its digest.
pub(crate) struct Checked {
    pub escrow: Escrow,
    pub total: u64,
    pub digest: [u8; 32],
}

impl BankState {
    /// Checks what every refund shares: q's signature, our bank, the
    /// reason, the escrow and its owner, the blinded tokens' total.
    pub(crate) fn check_refund(
        &self,
        refund: &Refund,
        signature: &[u8; 64],
        reason: RefundReason,
    ) -> Result<Checked, DomainError> {
        self.check_ours(&refund.bank)?;
        if refund.reason != reason {
            return Err(DomainError::bad(
                "wrong_reason",
                format!("this route takes refunds for reason {reason:?}"),
            ));
        }
        refund.verify(signature).map_err(bad_signature)?;
        let escrow = self.ledger.escrow(&refund.tid)?.ok_or_else(|| {
            DomainError::not_found(
                "unknown_escrow",
                format!("no escrow for TID {}", refund.tid),
            )
        })?;
        if escrow.customer != refund.customer {
            return Err(DomainError::forbidden(
                "not_escrow_customer",
                "the refund is not signed by the key that spent",
            ));
        }
        let total = self.check_blinded(&refund.blinded, false)?;
        Ok(Checked {
            escrow,
            total,
            digest: sha256(&refund.signed_bytes()),
        })
    }

    /// `POST /api/v1/refund`.
    pub async fn refund(self: &Arc<Self>, req: RefundRequest) -> Result<Refunded, DomainError> {
        let Checked {
            escrow,
            total,
            digest,
        } = self.check_refund(&req.refund, &req.signature, RefundReason::Abort)?;
        if let Some(r) = repeated(&escrow, &digest) {
            let answer = BlindSignatures {
                blind_signatures: r.blind_signatures,
            };
            return Ok(answer);
        }
        match escrow.status {
            EscrowStatus::Escrowed if req.abort.is_none() => {
                return Err(abort_proof_required());
            }
            EscrowStatus::Refunded => return Err(already_refunded(&escrow)),
            EscrowStatus::Paid | EscrowStatus::Disputed => {
                return Err(wrong_state(&escrow, "only an aborted escrow is refunded"));
            }
            EscrowStatus::Escrowed | EscrowStatus::AbortLogged => {}
        }
        let mut checkpoint = None;
        let abort = match (&req.abort, escrow.status) {
            (_, EscrowStatus::AbortLogged) => None,
            (Some(p), _) => {
                let proven = self.prove(p).await?;
                match proven.entry {
                    LogEntry::Abort { bank, .. } if bank == self.public => {}
                    LogEntry::Abort { .. } => {
                        return Err(DomainError::bad(
                            "not_abort",
                            "the abort was not logged on this bank's notice",
                        ));
                    }
                    LogEntry::Commit { .. } => {
                        return Err(DomainError::bad("not_abort", "the entry is not an abort"));
                    }
                }
                entry_matches(&proven.entry, &proven.origin, &escrow)?;
                checkpoint = proven.checkpoint;
                Some(Box::new(p.clone()))
            }
            (None, _) => None,
        };
        let blind_signatures = self.sign_blinded(req.refund.blinded.clone()).await?;
        let op = RefundOp {
            tid: req.refund.tid,
            customer: req.refund.customer,
            total,
            record: RefundRecord {
                digest,
                reason: RefundReason::Abort,
                finding: None,
                blind_signatures,
            },
            abort,
        };
        let blind_signatures = self.writer.submit(op, checkpoint).await?;
        Ok(BlindSignatures { blind_signatures })
    }
}

/// The earlier refund of `escrow` if it was this very one.
pub(crate) fn repeated(escrow: &Escrow, digest: &[u8; 32]) -> Option<RefundRecord> {
    escrow.refund.clone().filter(|r| &r.digest == digest)
}

fn abort_proof_required() -> DomainError {
    DomainError::bad(
        "abort_proof_required",
        "no abort is known for this TID; show the abort entry with its proof",
    )
}

pub(crate) fn already_refunded(e: &Escrow) -> DomainError {
    DomainError::conflict(
        "already_refunded",
        format!("the escrow of TID {} was refunded already", e.terms.tid),
    )
}

pub(crate) fn check_refund_owner(e: &Escrow, customer: &[u8; 32]) -> Result<(), DomainError> {
    if &e.customer != customer {
        return Err(DomainError::forbidden(
            "not_escrow_customer",
            "the refund is not signed by the key that spent",
        ));
    }
    Ok(())
}

pub(crate) fn check_refund_total(e: &Escrow, total: u64) -> Result<(), DomainError> {
    if total != e.terms.price {
        return Err(DomainError::bad(
            "bad_refund_amount",
            format!(
                "the blinded tokens are worth {total}, the escrow {}",
                e.terms.price
            ),
        ));
    }
    Ok(())
}

/// An earlier refund of this escrow with this digest, or a conflict.
pub(crate) fn repeat_refund<'a>(
    e: &'a Escrow,
    digest: &[u8; 32],
) -> Result<&'a RefundRecord, DomainError> {
    match &e.refund {
        Some(r) if &r.digest == digest => Ok(r),
        _ => Err(already_refunded(e)),
    }
}

impl LedgerOp for RefundOp {
    type Reply = Vec<Vec<u8>>;
    const KIND: &'static str = "refund";

    fn apply(self, tx: &mut Tx<'_>) -> Result<Vec<Vec<u8>>, DomainError> {
        let RefundOp {
            tid,
            customer,
            total,
            record,
            abort,
        } = self;
        let mut e = tx.escrow(&tid)?;
        check_refund_owner(&e, &customer)?;
        match e.status {
            EscrowStatus::Refunded => {
                return repeat_refund(&e, &record.digest).map(|r| r.blind_signatures.clone());
            }
            EscrowStatus::AbortLogged => {}
            EscrowStatus::Escrowed => match abort {
                Some(p) => e.abort = Some(*p),
                None => return Err(abort_proof_required()),
            },
            EscrowStatus::Paid | EscrowStatus::Disputed => {
                return Err(wrong_state(&e, "only an aborted escrow is refunded"));
            }
        }
        check_refund_total(&e, total)?;
        let mut t = tx.totals()?;
        release(tx, &e, &mut t)?;
        t.live_tokens = t
            .live_tokens
            .checked_add(total)
            .ok_or_else(corrupt_totals)?;
        let sigs = record.blind_signatures.clone();
        e.status = EscrowStatus::Refunded;
        e.refund = Some(record);
        tx.put(records::TOTALS.to_vec(), &t)?;
        tx.put_escrow(&e)?;
        Ok(sigs)
    }
}
