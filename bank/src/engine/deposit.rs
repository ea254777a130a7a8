//! Deposit: the merchant shows the commit entry of a purchase (P4, P5) with
//! its inclusion proof under a checkpoint of a trusted log, cosigned per
//! the witness policy and consistent with every checkpoint of that log the
//! bank accepted; the bank pays the escrowed price to the merchant's
//! account. Payment on positive proof of commit only. The sweeper pays the
//! same way on a commit it finds at expiry ([`super::abort`]).

use std::sync::Arc;

use acd_core::bank_api::{DepositRequest, DepositResponse};
use acd_core::entry::{LogEntry, Tid};
use acd_core::error::DomainError;

use super::{BankState, release};
use crate::ledger::{LedgerOp, Tx, add_balance, overflow, to_i64, wrong_state};
use crate::records::{self, EscrowStatus, account_key};

/// What a deposit answers: the TID, the merchant and the amount paid.
pub type Deposited = DepositResponse;

/// Pay the merchant on a proven commit with these fields.
#[derive(Debug, Clone)]
pub struct DepositOp {
    pub tid: Tid,
    pub merchant: [u8; 32],
    pub expiration_ms: u64,
    pub log_origin: String,
}

impl BankState {
    /// `POST /api/v1/deposit`.
    pub async fn deposit(self: &Arc<Self>, req: DepositRequest) -> Result<Deposited, DomainError> {
        let proven = self.prove(&req.proof).await?;
        let LogEntry::Commit {
            tid,
            merchant,
            expiration_ms,
            ..
        } = proven.entry
        else {
            return Err(DomainError::bad("not_commit", "the entry is not a commit"));
        };
        if !proven.entry.timely() {
            return Err(DomainError::bad(
                "untimely_entry",
                "the commit was logged at or after its expiration",
            ));
        }
        let op = DepositOp {
            tid,
            merchant,
            expiration_ms,
            log_origin: proven.origin,
        };
        self.writer.submit(op, proven.checkpoint).await
    }
}

impl LedgerOp for DepositOp {
    type Reply = DepositResponse;
    const KIND: &'static str = "deposit";

    fn apply(self, tx: &mut Tx<'_>) -> Result<DepositResponse, DomainError> {
        let DepositOp {
            tid,
            merchant,
            expiration_ms,
            log_origin,
        } = self;
        let mut e = tx.escrow(&tid)?;
        if e.terms.merchant != merchant
            || e.terms.expiration_ms != expiration_ms
            || e.terms.log_origin != log_origin
        {
            return Err(DomainError::bad(
                "entry_mismatch",
                "the commit's merchant, expiration or log differ from the escrow's terms",
            ));
        }
        let answer = DepositResponse {
            tid,
            merchant,
            amount: e.terms.price,
        };
        match e.status {
            EscrowStatus::Paid => return Ok(answer),
            EscrowStatus::Escrowed => {}
            _ => return Err(wrong_state(&e, "only an open escrow is paid")),
        }
        let mut m = tx.account(&merchant)?;
        let amount = to_i64(e.terms.price)?;
        m.balance = m.balance.checked_add(amount).ok_or_else(overflow)?;
        let mut t = tx.totals()?;
        release(tx, &e, &mut t)?;
        add_balance(&mut t, m.kind, amount)?;
        e.status = EscrowStatus::Paid;
        tx.put(account_key(&merchant), &m)?;
        tx.put(records::TOTALS.to_vec(), &t)?;
        tx.put_escrow(&e)?;
        Ok(answer)
    }
}
