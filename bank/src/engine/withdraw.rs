//! Withdrawal (paper figure 1, step 1): a customer account's owner sends
//! blinded messages signed with the account key; the bank debits their
//! value and returns the blind signatures (RFC 9474), which the wallet
//! finalizes into tokens the bank cannot link to the withdrawal.
//!
//! Idempotent by request id: a retry with the same signed withdrawal gets
//! the same signatures and no second debit.

use std::sync::Arc;

use acd_core::bank_api::{AccountKind, BlindSignatures, WithdrawRequest};
use acd_core::error::DomainError;

use super::{BankState, bad_signature, sha256};
use crate::ledger::{LedgerOp, Tx, add_balance, corrupt_totals, to_i64};
use crate::records::{self, WithdrawalRecord, account_key};

/// What a withdrawal answers: one blind signature per blinded message.
pub type Withdrawn = BlindSignatures;

/// The debit, its blind signatures already made.
#[derive(Debug, Clone)]
pub struct WithdrawOp {
    pub account: [u8; 32],
    pub request_id: [u8; 16],
    /// SHA-256 of the signed withdrawal: a retry must be the same request.
    pub digest: [u8; 32],
    pub total: u64,
    pub blind_signatures: Vec<Vec<u8>>,
}

impl BankState {
    /// `POST /api/v1/withdraw`.
    pub async fn withdraw(
        self: &Arc<Self>,
        req: WithdrawRequest,
    ) -> Result<Withdrawn, DomainError> {
        let w = req.withdrawal;
        self.check_ours(&w.bank)?;
        let total = self.check_blinded(&w.blinded, false)?;
        w.verify(&req.signature).map_err(bad_signature)?;
        let digest = sha256(&w.signed_bytes());
        // Cheap answers from the committed books before any RSA work; the
        // writer decides again.
        if let Some(rec) = self.ledger.withdrawal(&w.account, &w.request_id)? {
            if rec.digest == digest {
                let answer = BlindSignatures {
                    blind_signatures: rec.blind_signatures,
                };
                return Ok(answer);
            }
            return Err(DomainError::conflict(
                "request_id_reused",
                "this request id was used for another withdrawal",
            ));
        }
        match self.ledger.account(&w.account)? {
            None => {
                return Err(DomainError::not_found("unknown_account", "no such account"));
            }
            Some(a) if a.kind != AccountKind::Customer => {
                return Err(DomainError::forbidden(
                    "not_a_customer",
                    "only customer accounts withdraw",
                ));
            }
            Some(a) if i128::from(a.balance) < i128::from(total) => {
                return Err(DomainError::conflict(
                    "insufficient_funds",
                    format!("the balance {} does not cover {total}", a.balance),
                ));
            }
            Some(_) => {}
        }
        let blind_signatures = self.sign_blinded(w.blinded).await?;
        let op = WithdrawOp {
            account: w.account,
            request_id: w.request_id,
            digest,
            total,
            blind_signatures,
        };
        let blind_signatures = self.writer.submit(op, None).await?;
        Ok(BlindSignatures { blind_signatures })
    }
}

impl LedgerOp for WithdrawOp {
    type Reply = Vec<Vec<u8>>;
    const KIND: &'static str = "withdraw";

    fn apply(self, tx: &mut Tx<'_>) -> Result<Vec<Vec<u8>>, DomainError> {
        let mut a = tx.account(&self.account)?;
        if a.kind != AccountKind::Customer {
            return Err(DomainError::forbidden(
                "not_a_customer",
                "only customer accounts withdraw",
            ));
        }
        let key = records::withdrawal_key(&self.account, &self.request_id);
        if let Some(w) = tx.get::<WithdrawalRecord>(&key)? {
            return if w.digest == self.digest {
                Ok(w.blind_signatures)
            } else {
                Err(DomainError::conflict(
                    "request_id_reused",
                    "this request id was used for another withdrawal",
                ))
            };
        }
        let total = self.total;
        let amount = to_i64(total)?;
        if a.balance < amount {
            return Err(DomainError::conflict(
                "insufficient_funds",
                format!("the balance {} does not cover {total}", a.balance),
            ));
        }
        a.balance -= amount;
        let mut t = tx.totals()?;
        add_balance(&mut t, AccountKind::Customer, -amount)?;
        t.live_tokens = t
            .live_tokens
            .checked_add(total)
            .ok_or_else(corrupt_totals)?;
        tx.put(account_key(&self.account), &a)?;
        tx.put(records::TOTALS.to_vec(), &t)?;
        tx.put(
            key,
            &WithdrawalRecord {
                digest: self.digest,
                blind_signatures: self.blind_signatures.clone(),
            },
        )?;
        Ok(self.blind_signatures)
    }
}
