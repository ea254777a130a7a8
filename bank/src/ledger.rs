//! The ledger: the bank's books on sled and the rules that change them
//! (paper figure 1 steps 1 and 4, P2, deposit, refund, dispute).
//!
//! Every change is an [`Op`] whose signatures and proofs were checked, and
//! whose blind signatures were made, before it got here. [`Ledger::decide`]
//! takes a batch of ops, decides each in order against the stored state
//! plus the batch's own earlier writes (an in-memory overlay), and writes
//! the accepted ones in ONE atomic [`Store::write`] (on sled: one batch and
//! one flush). Only then are the answers released; if the write fails,
//! every op of the batch is answered with an error. A crash therefore
//! leaves the old state or the new one, and a blind signature leaves the
//! bank only when its op is on disk. A failed write may still have been
//! applied, so every op is idempotent: decided again, it changes nothing
//! more and answers as the first time did (or with a conflict naming why).
//! Such a repeat writes nothing, so after a failed write the ledger first
//! makes what it applied durable before it decides or answers anything
//! else; readers that found an answer in the books send [`Op::Sync`]
//! through the writer before they hand it out, for the same reason (the
//! books they read may include a batch whose flush has not finished).
//! Ops are decided one at a time by one thread ([`crate::writer`]), so
//! races (two spends of one token) have exactly one winner.
//!
//! The key layout is in [`crate::records`], the rules of each op in
//! [`crate::rules`], the storage in [`crate::store`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use acd_core::bank_api::{
    AccountInfo, AccountKind, DepositResponse, DisputeResponse, SpendResponse, Sums,
};
use acd_core::entry::Tid;
use acd_core::log_api::EntryProof;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::records::{self, Account, Escrow, RefundRecord, Registration, Totals};
use crate::records::{WithdrawalRecord, account_key, due_key, escrow_key};
use crate::rules;
use crate::store::{SledStore, Store, Writes};

/// A state change, checked and signed, waiting to be decided.
#[derive(Debug, Clone)]
pub enum Op {
    CreateAccount {
        key: [u8; 32],
        kind: AccountKind,
    },
    Credit {
        key: [u8; 32],
        amount: u64,
        request_id: [u8; 16],
    },
    Withdraw {
        account: [u8; 32],
        request_id: [u8; 16],
        digest: [u8; 32],
        total: u64,
        blind_signatures: Vec<Vec<u8>>,
    },
    Register {
        token_id: [u8; 32],
        customer: [u8; 32],
        signature: [u8; 64],
    },
    /// P2: `escrow` is the new escrow, status `Escrowed`.
    Spend {
        escrow: Box<Escrow>,
        total: u64,
        change_total: u64,
    },
    /// Pay the merchant on a proven commit with these fields.
    Deposit {
        tid: Tid,
        merchant: [u8; 32],
        expiration_ms: u64,
        log_origin: String,
    },
    /// The sweeper's abort, proven.
    AbortLogged {
        tid: Tid,
        proof: Box<EntryProof>,
    },
    /// Refund after an abort; `abort` is the customer's proof, if any.
    Refund {
        tid: Tid,
        customer: [u8; 32],
        total: u64,
        record: RefundRecord,
        abort: Option<Box<EntryProof>>,
    },
    /// Refund on an upheld dispute.
    Dispute {
        tid: Tid,
        customer: [u8; 32],
        total: u64,
        record: RefundRecord,
    },
    /// Changes nothing; answered once everything the ledger applied before
    /// it is durable.
    Sync,
}

impl Op {
    /// The op's name, as metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CreateAccount { .. } => "create_account",
            Op::Credit { .. } => "credit",
            Op::Withdraw { .. } => "withdraw",
            Op::Register { .. } => "register",
            Op::Spend { .. } => "spend",
            Op::Deposit { .. } => "deposit",
            Op::AbortLogged { .. } => "abort_logged",
            Op::Refund { .. } => "refund",
            Op::Dispute { .. } => "dispute",
            Op::Sync => "sync",
        }
    }
}

/// A newer checkpoint of a log, already proven consistent with every
/// earlier one the bank accepted; stored with the batch whatever the op's
/// fate.
#[derive(Debug, Clone)]
pub struct CheckpointUpdate {
    pub origin: String,
    pub size: u64,
    pub text: String,
}

/// The answer of an accepted op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Account(AccountInfo),
    BlindSignatures(Vec<Vec<u8>>),
    Receipt([u8; 64]),
    Spend(Box<SpendResponse>),
    Deposit(DepositResponse),
    Dispute(DisputeResponse),
    Recorded,
}

pub type Decision = Result<Answer, ApiError>;

/// The bank's books.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<dyn Store>,
    /// A write failed: what it applied may not be durable yet.
    unsure: Arc<AtomicBool>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").finish_non_exhaustive()
    }
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, ApiError> {
    // Only the table is named: keys may hold account keys.
    let table = key.split(|b| *b == b'/').next().unwrap_or_default();
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::internal(format!(
            "corrupt record in table {}: {e}",
            String::from_utf8_lossy(table)
        ))
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::internal(format!("encoding: {e}")))
}

fn storage_failed() -> ApiError {
    ApiError::unavailable(
        "storage_unavailable",
        "the ledger could not store the change; retry",
    )
}

pub(crate) fn overflow() -> ApiError {
    ApiError::bad("overflow", "the amount is out of range")
}

pub(crate) fn to_i64(v: u64) -> Result<i64, ApiError> {
    i64::try_from(v).map_err(|_| overflow())
}

pub(crate) fn corrupt_totals() -> ApiError {
    ApiError::internal("the maintained totals would leave their range")
}

/// One op's view: its own writes over the batch's over the database.
pub(crate) struct Tx<'a> {
    store: &'a dyn Store,
    batch: &'a Writes,
    writes: Writes,
}

impl Tx<'_> {
    pub(crate) fn raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        if let Some(v) = self.writes.get(key).or_else(|| self.batch.get(key)) {
            return Ok(v.clone());
        }
        Ok(self.store.get(key)?)
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ApiError> {
        self.raw(key)?.map(|b| decode(key, &b)).transpose()
    }

    pub(crate) fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<(), ApiError> {
        self.writes.insert(key, Some(encode(value)?));
        Ok(())
    }

    pub(crate) fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub(crate) fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    pub(crate) fn totals(&self) -> Result<Totals, ApiError> {
        Ok(self.get(records::TOTALS)?.unwrap_or_default())
    }

    pub(crate) fn account(&self, key: &[u8; 32]) -> Result<Account, ApiError> {
        self.get(&account_key(key))?.ok_or_else(|| {
            ApiError::not_found(
                "unknown_account",
                format!("no account {}", hex::encode(key)),
            )
        })
    }

    pub(crate) fn escrow(&self, tid: &Tid) -> Result<Escrow, ApiError> {
        self.get(&escrow_key(tid))?.ok_or_else(|| {
            ApiError::not_found("unknown_escrow", format!("no escrow for TID {tid}"))
        })
    }

    pub(crate) fn put_escrow(&mut self, escrow: &Escrow) -> Result<(), ApiError> {
        self.put(escrow_key(&escrow.terms.tid), escrow)
    }
}

pub(crate) fn account_info(key: [u8; 32], a: &Account) -> AccountInfo {
    AccountInfo {
        key,
        kind: a.kind,
        balance: a.balance,
    }
}

pub(crate) fn add_balance(t: &mut Totals, kind: AccountKind, delta: i64) -> Result<(), ApiError> {
    let field = match kind {
        AccountKind::Customer => &mut t.customer_balances,
        AccountKind::Merchant => &mut t.merchant_balances,
    };
    *field = field.checked_add(delta).ok_or_else(corrupt_totals)?;
    Ok(())
}

pub(crate) fn wrong_state(e: &Escrow, wanted: &str) -> ApiError {
    ApiError::conflict(
        "wrong_escrow_state",
        format!(
            "the escrow of TID {} is {:?}; {wanted}",
            e.terms.tid, e.status
        ),
    )
}

impl Ledger {
    /// Opens (creating) the ledger's sled database at `path`.
    pub fn open(path: &Path) -> Result<Ledger, sled::Error> {
        Ok(Ledger::with_store(Arc::new(SledStore::open(path)?)))
    }

    /// The ledger on any store (tests use [`crate::store::MemoryStore`]).
    pub fn with_store(store: Arc<dyn Store>) -> Ledger {
        Ledger {
            store,
            unsure: Arc::new(AtomicBool::new(false)),
        }
    }

    fn read<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ApiError> {
        self.store.get(key)?.map(|b| decode(key, &b)).transpose()
    }

    /// The maintained sums as stored (no scan; [`Ledger::sums`] checks them).
    pub fn totals(&self) -> Result<Totals, ApiError> {
        Ok(self.read(records::TOTALS)?.unwrap_or_default())
    }

    /// A committed account.
    pub fn account(&self, key: &[u8; 32]) -> Result<Option<Account>, ApiError> {
        self.read(&account_key(key))
    }

    /// A committed escrow.
    pub fn escrow(&self, tid: &Tid) -> Result<Option<Escrow>, ApiError> {
        self.read(&escrow_key(tid))
    }

    /// A committed withdrawal.
    pub fn withdrawal(
        &self,
        account: &[u8; 32],
        request_id: &[u8; 16],
    ) -> Result<Option<WithdrawalRecord>, ApiError> {
        self.read(&records::withdrawal_key(account, request_id))
    }

    /// A committed registration.
    pub fn registration(&self, token_id: &[u8; 32]) -> Result<Option<Registration>, ApiError> {
        self.read(&records::registration_key(token_id))
    }

    /// The TID a token was spent for, if it was.
    pub fn spent(&self, token_id: &[u8; 32]) -> Result<Option<Tid>, ApiError> {
        Ok(self
            .store
            .get(&records::spent_key(token_id))?
            .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
            .map(Tid))
    }

    /// Escrows still `Escrowed` whose expiration is at or before `now_ms`,
    /// oldest first, at most `limit`.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<Escrow>, ApiError> {
        let end = due_key(now_ms, &Tid([0xff; 16]));
        let mut out = Vec::new();
        for item in self.store.range(records::DUE, &end).take(limit) {
            let (k, _) = item?;
            let Ok(tid) = <[u8; 16]>::try_from(&k[records::DUE.len() + 8..]) else {
                return Err(ApiError::internal("corrupt due index key"));
            };
            if let Some(e) = self.escrow(&Tid(tid))? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The latest checkpoint stored for each log origin.
    pub fn checkpoints(&self) -> Result<Vec<(String, String)>, ApiError> {
        let mut out = Vec::new();
        for item in self.store.scan_prefix(records::CHECKPOINT) {
            let (k, v) = item?;
            let origin = String::from_utf8_lossy(&k[records::CHECKPOINT.len()..]).into_owned();
            let text = String::from_utf8_lossy(v.get(8..).unwrap_or_default()).into_owned();
            out.push((origin, text));
        }
        Ok(out)
    }

    /// The maintained sums, checked against a recomputation from the
    /// accounts and escrows.
    pub fn sums(&self) -> Result<Sums, ApiError> {
        let totals = self.totals()?;
        let (mut customers, mut merchants, mut escrowed) = (0i128, 0i128, 0i128);
        for item in self.store.scan_prefix(records::ACCOUNT) {
            let (k, v) = item?;
            let a: Account = decode(&k, &v)?;
            match a.kind {
                AccountKind::Customer => customers += i128::from(a.balance),
                AccountKind::Merchant => merchants += i128::from(a.balance),
            }
        }
        for item in self.store.scan_prefix(records::ESCROW) {
            let (k, v) = item?;
            let e: Escrow = decode(&k, &v)?;
            if e.status.holds_money() {
                escrowed += i128::from(e.terms.price);
            }
        }
        let scan_agrees = customers == i128::from(totals.customer_balances)
            && merchants == i128::from(totals.merchant_balances)
            && escrowed == i128::from(totals.escrowed);
        if !scan_agrees {
            tracing::error!(
                ?totals,
                scanned_customers = %customers,
                scanned_merchants = %merchants,
                scanned_escrowed = %escrowed,
                "the maintained sums differ from the scan"
            );
        }
        Ok(Sums {
            credited: totals.credited,
            customer_balances: totals.customer_balances,
            merchant_balances: totals.merchant_balances,
            live_tokens: totals.live_tokens,
            escrowed: totals.escrowed,
            conserved: scan_agrees && totals.conserved(),
        })
    }

    /// Decides `ops` in order and makes the accepted ones durable with one
    /// atomic write. An op refused leaves no trace.
    pub fn decide(&self, ops: Vec<(Op, Option<CheckpointUpdate>)>) -> Vec<Decision> {
        if self.unsure.load(Ordering::SeqCst) {
            // An empty write is a flush: it makes the failed batch durable
            // if it was applied, so that repeats answered from it hold.
            if let Err(e) = self.store.write(&Writes::new()) {
                tracing::error!(error = %e, "the ledger still cannot write");
                return ops.iter().map(|_| Err(storage_failed())).collect();
            }
            self.unsure.store(false, Ordering::SeqCst);
        }
        let mut batch = Writes::new();
        let mut decisions = Vec::with_capacity(ops.len());
        for (op, checkpoint) in ops {
            if let Some(c) = checkpoint
                && let Err(e) = self.stage_checkpoint(&mut batch, c)
            {
                tracing::warn!(error = %e, "cannot store a checkpoint");
            }
            let mut tx = Tx {
                store: self.store.as_ref(),
                batch: &batch,
                writes: Writes::new(),
            };
            let decision = rules::apply(&mut tx, op);
            if decision.is_ok() {
                let writes = tx.writes;
                batch.extend(writes);
            }
            decisions.push(decision);
        }
        if batch.is_empty() {
            return decisions;
        }
        if let Err(e) = self.store.write(&batch) {
            self.unsure.store(true, Ordering::SeqCst);
            tracing::error!(error = %e, "the ledger could not write a batch");
            return decisions
                .into_iter()
                .map(|d| d.and(Err(storage_failed())))
                .collect();
        }
        decisions
    }

    fn stage_checkpoint(&self, batch: &mut Writes, c: CheckpointUpdate) -> Result<(), ApiError> {
        let key = records::checkpoint_key(&c.origin);
        let stored = match batch.get(&key) {
            Some(v) => v.clone(),
            None => self.store.get(&key)?,
        };
        let stored_size = stored
            .as_deref()
            .and_then(|v| v.get(..8))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes);
        if stored_size.is_none_or(|s| s < c.size) {
            let mut v = c.size.to_be_bytes().to_vec();
            v.extend_from_slice(c.text.as_bytes());
            batch.insert(key, Some(v));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
