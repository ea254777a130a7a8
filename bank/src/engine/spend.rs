//! Spending (P2, answering P3): Q signs the purchase's escrow terms
//! (bank, log, TID, merchant, expiration, price) over tokens registered to
//! it, with blinded change; the bank checks the terms and the tokens,
//! escrows the price for the TID, signs the change, and answers with its
//! signature on the terms and its escrow notice for the merchant (P3). The
//! notice reaches the merchant through the customer.
//!
//! Idempotent by TID and spend digest; a token is spent once.

use std::collections::HashSet;
use std::sync::Arc;

use acd_core::bank_api::{AccountKind, SpendRequest, SpendResponse};
use acd_core::error::DomainError;
use acd_core::purchase::MAX_ITEMS;

use super::{BankState, bad_signature, check_key, sha256};
use crate::ledger::{LedgerOp, Tx, corrupt_totals};
use crate::records::{self, Account, Escrow, EscrowStatus, Registration};
use crate::records::{account_key, due_key, escrow_key};

/// What a spend answers: the signed terms, the notice and the change.
pub type Spent = SpendResponse;

/// The new escrow (status `Escrowed`), with the tokens' value and the
/// change's.
#[derive(Debug, Clone)]
pub struct SpendOp {
    pub escrow: Box<Escrow>,
    pub total: u64,
    pub change_total: u64,
}

impl BankState {
    /// `POST /api/v1/spend`.
    pub async fn spend(self: &Arc<Self>, req: SpendRequest) -> Result<Spent, DomainError> {
        let spend = req.spend;
        let terms = &spend.terms;
        self.check_ours(&terms.bank)?;
        spend.verify(&req.signature).map_err(bad_signature)?;
        let digest = sha256(&spend.signed_bytes());
        if let Some(e) = self.ledger.escrow(&terms.tid)? {
            if e.spend_digest == digest {
                return Ok(e.response);
            }
            return Err(DomainError::conflict(
                "tid_conflict",
                format!("TID {} is already escrowed for another spend", terms.tid),
            ));
        }
        if !self.logs.contains_key(&terms.log_origin) {
            return Err(DomainError::bad(
                "untrusted_log",
                format!("the bank does not trust a log named {:?}", terms.log_origin),
            ));
        }
        if req.tokens.is_empty() || req.tokens.len() > MAX_ITEMS {
            return Err(DomainError::bad(
                "bad_item_count",
                format!("between 1 and {MAX_ITEMS} tokens are needed"),
            ));
        }
        if req.tokens.len() != spend.token_ids.len()
            || req
                .tokens
                .iter()
                .zip(&spend.token_ids)
                .any(|(t, id)| &t.id() != id)
        {
            return Err(DomainError::bad(
                "token_ids_mismatch",
                "the tokens do not match the signed token ids, in order",
            ));
        }
        let mut seen = HashSet::new();
        if !spend.token_ids.iter().all(|id| seen.insert(*id)) {
            return Err(DomainError::bad(
                "duplicate_token",
                "a token appears twice in the spend",
            ));
        }
        check_key(&terms.merchant, "the merchant")?;
        if terms.price == 0 {
            return Err(DomainError::bad("bad_price", "the price must be positive"));
        }
        let now = self.now_ms();
        let earliest = now.saturating_add(self.min_expiration_ms);
        let latest = now.saturating_add(self.max_expiration_ms);
        if terms.expiration_ms < earliest || terms.expiration_ms > latest {
            return Err(DomainError::bad(
                "bad_expiration",
                format!(
                    "the expiration must be between {} and {} ms from now",
                    self.min_expiration_ms, self.max_expiration_ms
                ),
            ));
        }
        let change_total = self.check_blinded(&spend.change, true)?;
        let total = self.verify_tokens(req.tokens).await?;
        if total < terms.price {
            return Err(DomainError::bad(
                "insufficient_tokens",
                format!("the tokens are worth {total}, the price is {}", terms.price),
            ));
        }
        if change_total != total - terms.price {
            return Err(DomainError::bad(
                "bad_change",
                format!(
                    "the change is worth {change_total}, it must be {}",
                    total - terms.price
                ),
            ));
        }
        let change = self.sign_blinded(spend.change.clone()).await?;
        let response = SpendResponse {
            terms: terms.clone(),
            terms_signature: terms.sign(&self.signing),
            notice_signature: terms.notice().sign(&self.signing),
            change,
        };
        let escrow = Escrow {
            terms: terms.clone(),
            customer: spend.customer,
            token_ids: spend.token_ids.clone(),
            spend_digest: digest,
            response,
            status: EscrowStatus::Escrowed,
            abort: None,
            refund: None,
        };
        let op = SpendOp {
            escrow: Box::new(escrow),
            total,
            change_total,
        };
        self.writer.submit(op, None).await
    }
}

impl LedgerOp for SpendOp {
    type Reply = SpendResponse;
    const KIND: &'static str = "spend";

    fn apply(self, tx: &mut Tx<'_>) -> Result<SpendResponse, DomainError> {
        let SpendOp {
            escrow,
            total,
            change_total,
        } = self;
        let tid = escrow.terms.tid;
        if let Some(e) = tx.get::<Escrow>(&escrow_key(&tid))? {
            return if e.spend_digest == escrow.spend_digest {
                Ok(e.response)
            } else {
                Err(DomainError::conflict(
                    "tid_conflict",
                    format!("TID {tid} is already escrowed for another spend"),
                ))
            };
        }
        let merchant: Option<Account> = tx.get(&account_key(&escrow.terms.merchant))?;
        if merchant.is_none_or(|m| m.kind != AccountKind::Merchant) {
            return Err(DomainError::bad(
                "unknown_merchant",
                "the terms' merchant has no merchant account",
            ));
        }
        for id in &escrow.token_ids {
            let reg: Option<Registration> = tx.get(&records::registration_key(id))?;
            if reg.is_none_or(|r| r.customer != escrow.customer) {
                return Err(DomainError::forbidden(
                    "not_registered",
                    format!(
                        "token {} is not registered to the spending key",
                        hex::encode(id)
                    ),
                ));
            }
            if tx.raw(&records::spent_key(id))?.is_some() {
                return Err(DomainError::conflict(
                    "double_spend",
                    format!("token {} is already spent", hex::encode(id)),
                ));
            }
        }
        let price = escrow.terms.price;
        let mut t = tx.totals()?;
        t.live_tokens = t
            .live_tokens
            .checked_sub(total)
            .and_then(|v| v.checked_add(change_total))
            .ok_or_else(corrupt_totals)?;
        t.escrowed = t.escrowed.checked_add(price).ok_or_else(corrupt_totals)?;
        for id in &escrow.token_ids {
            tx.put_raw(records::spent_key(id), tid.0.to_vec());
        }
        tx.put_raw(due_key(escrow.terms.expiration_ms, &tid), Vec::new());
        tx.put(records::TOTALS.to_vec(), &t)?;
        tx.put_escrow(&escrow)?;
        Ok(escrow.response)
    }
}
