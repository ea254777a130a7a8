//! Dispute: the customer shows that the key the merchant committed (P4,
//! proven in the log) does not open the goods of the signed offer (P1): the
//! signed offer, the ciphertext and the commit's proof. The bank checks the
//! claim itself (decrypting on the blocking pool); if it is upheld, Q gets
//! fresh blind signatures worth the price, and a merchant already paid is
//! debited. A key that decrypts to the contract's hash is a 422.
//!
//! Idempotent by the refund's digest; an escrow is disputed once.

use std::sync::Arc;

use acd_core::bank_api::{DisputeFinding, DisputeRequest, DisputeResponse};
use acd_core::entry::{LogEntry, Tid};
use acd_core::error::DomainError;
use acd_core::goods;
use acd_core::purchase::RefundReason;

use super::refund::{
    Checked, already_refunded, check_refund_owner, check_refund_total, repeat_refund, repeated,
};
use super::{BankState, blocking, entry_matches, release};
use crate::ledger::{LedgerOp, Tx, add_balance, corrupt_totals, overflow, to_i64, wrong_state};
use crate::records::{self, EscrowStatus, RefundRecord, account_key};

/// What an upheld dispute answers: the finding and the blind signatures.
pub type Disputed = DisputeResponse;

/// Refund on an upheld dispute; `record.finding` says why.
#[derive(Debug, Clone)]
pub struct DisputeOp {
    pub tid: Tid,
    pub customer: [u8; 32],
    pub total: u64,
    pub record: RefundRecord,
}

impl BankState {
    /// `POST /api/v1/dispute`.
    pub async fn dispute(self: &Arc<Self>, req: DisputeRequest) -> Result<Disputed, DomainError> {
        let Checked {
            escrow,
            total,
            digest,
        } = self.check_refund(&req.refund, &req.signature, RefundReason::Dispute)?;
        if let Some(r) = repeated(&escrow, &digest)
            && let Some(finding) = r.finding
        {
            let answer = DisputeResponse {
                finding,
                blind_signatures: r.blind_signatures,
            };
            return Ok(answer);
        }
        match escrow.status {
            EscrowStatus::Disputed => return Err(already_refunded(&escrow)),
            EscrowStatus::AbortLogged | EscrowStatus::Refunded => {
                return Err(wrong_state(&escrow, "an aborted purchase is not disputed"));
            }
            EscrowStatus::Escrowed | EscrowStatus::Paid => {}
        }
        let offer = &req.offer.offer;
        offer
            .verify(&req.offer.signature)
            .map_err(|e| DomainError::bad("bad_offer", e.to_string()))?;
        if offer.terms() != escrow.terms || offer.customer != escrow.customer {
            return Err(DomainError::bad(
                "offer_mismatch",
                "the offer's terms or customer differ from the escrow's",
            ));
        }
        let proven = self.prove(&req.commit).await?;
        let LogEntry::Commit { key, .. } = proven.entry else {
            return Err(DomainError::bad("not_commit", "the entry is not a commit"));
        };
        entry_matches(&proven.entry, &proven.origin, &escrow)?;
        let tid = escrow.terms.tid;
        let (ciphertext_hash, plaintext_hash) = (offer.ciphertext_hash, offer.plaintext_hash);
        let ciphertext = req.ciphertext;
        let finding = blocking(move || {
            if goods::hash(&ciphertext) != ciphertext_hash {
                return Err(DomainError::bad(
                    "ciphertext_mismatch",
                    "the ciphertext does not hash to the offer's ciphertext hash",
                ));
            }
            Ok(match goods::decrypt(&key, &tid, &ciphertext) {
                Err(_) => Some(DisputeFinding::KeyDoesNotDecrypt),
                Ok(plain) if goods::hash(&plain) != plaintext_hash => {
                    Some(DisputeFinding::WrongGoods)
                }
                Ok(_) => None,
            })
        })
        .await?;
        let Some(finding) = finding else {
            return Err(DomainError::unprocessable(
                "dispute_rejected",
                "the logged key decrypts the goods to the contract's hash",
            ));
        };
        let blind_signatures = self.sign_blinded(req.refund.blinded.clone()).await?;
        let op = DisputeOp {
            tid,
            customer: req.refund.customer,
            total,
            record: RefundRecord {
                digest,
                reason: RefundReason::Dispute,
                finding: Some(finding),
                blind_signatures,
            },
        };
        self.writer.submit(op, proven.checkpoint).await
    }
}

fn no_finding() -> DomainError {
    DomainError::internal("dispute without finding")
}

impl LedgerOp for DisputeOp {
    type Reply = DisputeResponse;
    const KIND: &'static str = "dispute";

    fn apply(self, tx: &mut Tx<'_>) -> Result<DisputeResponse, DomainError> {
        let DisputeOp {
            tid,
            customer,
            total,
            record,
        } = self;
        let mut e = tx.escrow(&tid)?;
        check_refund_owner(&e, &customer)?;
        let mut t = tx.totals()?;
        match e.status {
            EscrowStatus::Disputed => {
                let r = repeat_refund(&e, &record.digest)?;
                return Ok(DisputeResponse {
                    finding: r.finding.ok_or_else(no_finding)?,
                    blind_signatures: r.blind_signatures.clone(),
                });
            }
            EscrowStatus::Escrowed => {
                check_refund_total(&e, total)?;
                release(tx, &e, &mut t)?;
            }
            EscrowStatus::Paid => {
                check_refund_total(&e, total)?;
                let mut m = tx.account(&e.terms.merchant)?;
                let amount = to_i64(e.terms.price)?;
                m.balance = m.balance.checked_sub(amount).ok_or_else(overflow)?;
                add_balance(&mut t, m.kind, -amount)?;
                tx.put(account_key(&e.terms.merchant), &m)?;
            }
            EscrowStatus::AbortLogged | EscrowStatus::Refunded => {
                return Err(wrong_state(&e, "an aborted purchase is not disputed"));
            }
        }
        t.live_tokens = t
            .live_tokens
            .checked_add(total)
            .ok_or_else(corrupt_totals)?;
        let answer = DisputeResponse {
            finding: record.finding.ok_or_else(no_finding)?,
            blind_signatures: record.blind_signatures.clone(),
        };
        e.status = EscrowStatus::Disputed;
        e.refund = Some(record);
        tx.put(records::TOTALS.to_vec(), &t)?;
        tx.put_escrow(&e)?;
        Ok(answer)
    }
}
