//! The operator's steps (the admin API, bearer token required): accounts
//! for customers and merchants, credits (money entering the system, the
//! only way it does), an account's balance, and the conservation check of
//! invariant 5.

use acd_core::bank_api::{AccountInfo, AccountKind, CreateAccount, Credit, Sums};
use acd_core::error::DomainError;

use super::{BankState, blocking};
use crate::ledger::{LedgerOp, Tx, account_info, add_balance, overflow, to_i64};
use crate::records::{self, Account, CreditRecord, account_key};

/// Open an account; idempotent for the same key and kind.
#[derive(Debug, Clone)]
pub struct CreateAccountOp {
    pub key: [u8; 32],
    pub kind: AccountKind,
}

/// Credit an account once per request id.
#[derive(Debug, Clone)]
pub struct CreditOp {
    pub key: [u8; 32],
    pub amount: u64,
    pub request_id: [u8; 16],
}

impl BankState {
    /// `POST /admin/v1/accounts`.
    pub async fn create_account(&self, req: CreateAccount) -> Result<AccountInfo, DomainError> {
        ed25519_dalek::VerifyingKey::from_bytes(&req.key)
            .map_err(|_| DomainError::bad("bad_key", "the account key is not an ed25519 key"))?;
        let op = CreateAccountOp {
            key: req.key,
            kind: req.kind,
        };
        self.writer.submit(op, None).await
    }

    /// `POST /admin/v1/credit`.
    pub async fn credit(&self, req: Credit) -> Result<AccountInfo, DomainError> {
        if req.amount == 0 {
            return Err(DomainError::bad(
                "bad_amount",
                "the amount must be positive",
            ));
        }
        let op = CreditOp {
            key: req.key,
            amount: req.amount,
            request_id: req.request_id,
        };
        self.writer.submit(op, None).await
    }

    /// `GET /admin/v1/accounts/{key}`, the key in hex.
    pub fn account(&self, key: &str) -> Result<AccountInfo, DomainError> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(key, &mut k)
            .map_err(|_| DomainError::bad("bad_key", "the account key must be 64 hex digits"))?;
        let a = self
            .ledger
            .account(&k)?
            .ok_or_else(|| DomainError::not_found("unknown_account", "no such account"))?;
        Ok(account_info(k, &a))
    }

    /// `GET /admin/v1/sums`: the maintained sums, checked against a scan
    /// (on the blocking pool).
    pub async fn sums(&self) -> Result<Sums, DomainError> {
        let ledger = self.ledger.clone();
        blocking(move || ledger.sums()).await
    }
}

impl LedgerOp for CreateAccountOp {
    type Reply = AccountInfo;
    const KIND: &'static str = "create_account";

    fn apply(self, tx: &mut Tx<'_>) -> Result<AccountInfo, DomainError> {
        let CreateAccountOp { key, kind } = self;
        if let Some(a) = tx.get::<Account>(&account_key(&key))? {
            return if a.kind == kind {
                Ok(account_info(key, &a))
            } else {
                Err(DomainError::conflict(
                    "account_exists",
                    format!("account {} exists with another kind", hex::encode(key)),
                ))
            };
        }
        let a = Account { kind, balance: 0 };
        tx.put(account_key(&key), &a)?;
        Ok(account_info(key, &a))
    }
}

impl LedgerOp for CreditOp {
    type Reply = AccountInfo;
    const KIND: &'static str = "credit";

    fn apply(self, tx: &mut Tx<'_>) -> Result<AccountInfo, DomainError> {
        let CreditOp {
            key,
            amount,
            request_id,
        } = self;
        let mut a = tx.account(&key)?;
        let record_key = records::credit_key(&key, &request_id);
        if let Some(c) = tx.get::<CreditRecord>(&record_key)? {
            return if c.amount == amount {
                Ok(account_info(key, &a))
            } else {
                Err(DomainError::conflict(
                    "request_id_reused",
                    "this request id was used for another credit",
                ))
            };
        }
        let delta = to_i64(amount)?;
        a.balance = a.balance.checked_add(delta).ok_or_else(overflow)?;
        let mut t = tx.totals()?;
        t.credited = t.credited.checked_add(amount).ok_or_else(overflow)?;
        add_balance(&mut t, a.kind, delta).map_err(|_| overflow())?;
        tx.put(account_key(&key), &a)?;
        tx.put(records::TOTALS.to_vec(), &t)?;
        tx.put(record_key, &CreditRecord { amount })?;
        Ok(account_info(key, &a))
    }
}
