//! The ledger: the bank's books and the one place that changes them
//! (paper figure 1 steps 1 and 4, P2, deposit, abort, refund, dispute).
//!
//! Every change is a [`LedgerOp`] of one protocol step (its type and its
//! rule live in that step's file under [`crate::engine`]) whose signatures
//! and proofs were checked, and whose blind signatures were made, before it
//! got here. [`Ledger::decide`] takes a batch of ops, decides each in order
//! against the stored state plus the batch's own earlier writes (an
//! in-memory overlay), and writes the accepted ones in ONE atomic
//! [`Store::write`] (on sled: one batch and one flush). Only then are the
//! answers released; if the write fails, every op of the batch is answered
//! with an error. A crash therefore leaves the old state or the new one,
//! and a blind signature leaves the bank only when its op is on disk.
//!
//! Reads go through a gate: the write holds it shut (readers wait), so a
//! reader never sees a batch whose flush has not finished. A failed write
//! leaves the gate shut and drops the store: every read and write answers
//! 503 `storage_unavailable` until [`Ledger::recover`] reopens the store
//! (state exactly as durable) and a probe write succeeds. A failed write
//! may still have been applied, and made durable, so every op is
//! idempotent: decided again, it changes nothing more and answers as the
//! first time did (or with a conflict naming why). Ops are decided one at
//! a time by one thread ([`crate::writer`]), so races (two spends of one
//! token) have exactly one winner.
//!
//! Each op answers with its own type: the writer queues type-erased
//! [`Decide`] slots, each decided into its own typed reply.
//!
//! The key layout is in [`crate::records`], the storage in
//! [`crate::store`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use acd_core::bank_api::{AccountInfo, AccountKind, Sums};
use acd_core::entry::Tid;
use acd_core::error::DomainError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::records::{self, Account, Escrow, Registration, Totals};
use crate::records::{WithdrawalRecord, account_key, due_key, escrow_key};
use crate::store::{SledStore, Store, StoreError, StoreTx, Writes};

/// A newer checkpoint of a log, already proven consistent with every
/// earlier one the bank accepted; stored with the batch whatever the op's
/// fate.
#[derive(Debug, Clone)]
pub struct CheckpointUpdate {
    pub origin: String,
    pub size: u64,
    pub text: String,
}

/// One step's state change, checked (and its blind signatures made)
/// before it reaches the ledger: the step's rule decides it against the
/// books through one [`Tx`] and answers with the step's own typed reply.
pub trait LedgerOp: Clone + Send + 'static {
    /// What an accepted op answers.
    type Reply: Send + 'static;
    /// The op's name, as metrics label it.
    const KIND: &'static str;
    /// The step's rule. A refusal leaves no trace: its writes are dropped.
    fn apply(self, tx: &mut Tx<'_>) -> Result<Self::Reply, DomainError>;
}

/// One op of a batch with its type erased: [`Ledger::decide`] decides it
/// into its own typed [`Slot`].
pub trait Decide: Send {
    /// [`LedgerOp::KIND`].
    fn kind(&self) -> &'static str;
    /// Decides the op in `tx`; true if it was accepted.
    fn decide(&mut self, tx: &mut Tx<'_>) -> bool;
    /// The op's acceptance (or its not being decided at all) is replaced by
    /// `e`: its batch was not written. A refusal stays.
    fn fail(&mut self, e: DomainError);
    /// Accepted, or the refusal's code (for metrics).
    fn outcome(&self) -> Result<(), &'static str>;
    /// Forgets the decision: the batch is decided again from scratch (its
    /// transaction conflicted with another bank process's).
    fn retry(&mut self);
}

/// An op and, once decided, its decision.
pub struct Slot<O: LedgerOp> {
    op: Option<O>,
    decision: Option<Result<O::Reply, DomainError>>,
}

impl<O: LedgerOp> Slot<O> {
    pub fn new(op: O) -> Self {
        Slot {
            op: Some(op),
            decision: None,
        }
    }

    /// The decision (an op never decided is an internal error).
    pub fn into_decision(self) -> Result<O::Reply, DomainError> {
        self.decision
            .unwrap_or_else(|| Err(DomainError::internal("a ledger op was not decided")))
    }
}

impl<O: LedgerOp> Decide for Slot<O> {
    fn kind(&self) -> &'static str {
        O::KIND
    }

    fn decide(&mut self, tx: &mut Tx<'_>) -> bool {
        // Kept until answered: a conflicting batch is decided again.
        let Some(op) = self.op.clone() else {
            return false;
        };
        let decision = op.apply(tx);
        let accepted = decision.is_ok();
        self.decision = Some(decision);
        accepted
    }

    fn fail(&mut self, e: DomainError) {
        if !matches!(self.decision, Some(Err(_))) {
            self.op = None;
            self.decision = Some(Err(e));
        }
    }

    fn outcome(&self) -> Result<(), &'static str> {
        match &self.decision {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.code),
            None => Err("undecided"),
        }
    }

    fn retry(&mut self) {
        if self.op.is_some() {
            self.decision = None;
        }
    }
}

/// Opens the store again, as durable: what a failed write applied but
/// did not make durable is gone.
type Opener = dyn Fn() -> Result<Arc<dyn Store>, StoreError> + Send + Sync;

/// The bank's books.
#[derive(Clone)]
pub struct Ledger {
    /// The store while it takes writes; `None` after a failed write until
    /// [`Ledger::recover`] reopens it.
    gate: Arc<RwLock<Option<Arc<dyn Store>>>>,
    opener: Arc<Opener>,
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, DomainError> {
    // Only the table is named: keys may hold account keys.
    let table = key.split(|b| *b == b'/').next().unwrap_or_default();
    serde_json::from_slice(bytes).map_err(|e| {
        DomainError::internal(format!(
            "corrupt record in table {}: {e}",
            String::from_utf8_lossy(table)
        ))
    })
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, DomainError> {
    serde_json::to_vec(value).map_err(|e| DomainError::internal(format!("encoding: {e}")))
}

fn storage_failed() -> DomainError {
    DomainError::unavailable(
        "storage_unavailable",
        "the ledger could not store the change; retry",
    )
}

fn recovering() -> DomainError {
    DomainError::unavailable(
        "storage_unavailable",
        "the ledger's storage failed and is recovering; retry",
    )
}

pub(crate) fn overflow() -> DomainError {
    DomainError::bad("overflow", "the amount is out of range")
}

pub(crate) fn to_i64(v: u64) -> Result<i64, DomainError> {
    i64::try_from(v).map_err(|_| overflow())
}

pub(crate) fn corrupt_totals() -> DomainError {
    DomainError::internal("the maintained totals would leave their range")
}

/// One op's view: its own writes over the batch's over the database (read
/// inside the batch's transaction).
pub struct Tx<'a> {
    store: &'a dyn StoreTx,
    batch: &'a Writes,
    writes: Writes,
    /// A conflict met by a read: the whole batch is decided again.
    conflict: &'a std::cell::Cell<bool>,
}

impl Tx<'_> {
    pub(crate) fn raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, DomainError> {
        if let Some(v) = self.writes.get(key).or_else(|| self.batch.get(key)) {
            return Ok(v.clone());
        }
        self.store.get(key).map_err(|e| {
            if matches!(e, StoreError::Conflict(_)) {
                self.conflict.set(true);
            }
            e.into()
        })
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, DomainError> {
        self.raw(key)?.map(|b| decode(key, &b)).transpose()
    }

    pub(crate) fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<(), DomainError> {
        self.writes.insert(key, Some(encode(value)?));
        Ok(())
    }

    pub(crate) fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub(crate) fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    pub(crate) fn totals(&self) -> Result<Totals, DomainError> {
        Ok(self.get(records::TOTALS)?.unwrap_or_default())
    }

    pub(crate) fn account(&self, key: &[u8; 32]) -> Result<Account, DomainError> {
        self.get(&account_key(key))?.ok_or_else(|| {
            DomainError::not_found(
                "unknown_account",
                format!("no account {}", hex::encode(key)),
            )
        })
    }

    pub(crate) fn escrow(&self, tid: &Tid) -> Result<Escrow, DomainError> {
        self.get(&escrow_key(tid))?.ok_or_else(|| {
            DomainError::not_found("unknown_escrow", format!("no escrow for TID {tid}"))
        })
    }

    pub(crate) fn put_escrow(&mut self, escrow: &Escrow) -> Result<(), DomainError> {
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

pub(crate) fn add_balance(
    t: &mut Totals,
    kind: AccountKind,
    delta: i64,
) -> Result<(), DomainError> {
    let field = match kind {
        AccountKind::Customer => &mut t.customer_balances,
        AccountKind::Merchant => &mut t.merchant_balances,
    };
    *field = field.checked_add(delta).ok_or_else(corrupt_totals)?;
    Ok(())
}

pub(crate) fn wrong_state(e: &Escrow, wanted: &str) -> DomainError {
    DomainError::conflict(
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
        let store: Arc<dyn Store> = Arc::new(SledStore::open(path)?);
        let path: PathBuf = path.to_owned();
        Ok(Ledger::with_opener(store, move || {
            Ok(Arc::new(SledStore::open(&path)?) as Arc<dyn Store>)
        }))
    }

    /// Opens the ledger in PostgreSQL at `url` (applying the migrations).
    /// After a failed write the same pool is used again: it reconnects by
    /// itself, and what is committed is what is durable.
    pub fn open_postgres(url: &crate::config::DatabaseUrl) -> Result<Ledger, StoreError> {
        let store = crate::postgres::PgStore::connect(url)?;
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        Ok(Ledger::with_opener(shared, move || {
            Ok(Arc::new(store.clone()) as Arc<dyn Store>)
        }))
    }

    /// The ledger on `store`; `reopen` opens it again after a failed write
    /// (tests use [`crate::store::MemoryStore`], whose reopening is a
    /// crash and restart).
    pub fn with_opener(
        store: Arc<dyn Store>,
        reopen: impl Fn() -> Result<Arc<dyn Store>, StoreError> + Send + Sync + 'static,
    ) -> Ledger {
        Ledger {
            gate: Arc::new(RwLock::new(Some(store))),
            opener: Arc::new(reopen),
        }
    }

    fn shared(&self) -> RwLockReadGuard<'_, Option<Arc<dyn Store>>> {
        // Every change under the lock is one assignment: a panic elsewhere
        // cannot leave it half made.
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }

    fn exclusive(&self) -> RwLockWriteGuard<'_, Option<Arc<dyn Store>>> {
        self.gate.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the durable books; no write is under way meanwhile, so
    /// everything `f` reads is of one state.
    fn view<T>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, DomainError>,
    ) -> Result<T, DomainError> {
        let gate = self.shared();
        match gate.as_deref() {
            Some(store) => f(store),
            None => Err(recovering()),
        }
    }

    /// Runs `f` on one state of the books even with other bank processes
    /// writing (on PostgreSQL a read-only snapshot).
    fn view_snapshot<T>(
        &self,
        f: impl FnOnce(&dyn StoreTx) -> Result<T, DomainError>,
    ) -> Result<T, DomainError> {
        self.view(|store| f(&*store.snapshot()?))
    }

    /// Does the ledger take reads and writes (no failed write pending
    /// recovery)?
    pub fn is_open(&self) -> bool {
        self.shared().is_some()
    }

    /// Reopens the store after a failed write, so that the books are
    /// exactly what is durable, and opens the gate once a probe write (the
    /// maintained totals written again as they are) succeeds. Does nothing
    /// if the gate is open.
    pub fn recover(&self) -> Result<(), DomainError> {
        // Only the writer thread recovers, so the gate stays shut while the
        // store is opened without holding it: readers get their 503 at once.
        if self.is_open() {
            return Ok(());
        }
        let store = (self.opener)().map_err(|e| {
            tracing::warn!(error = %e, "the ledger cannot reopen its storage");
            DomainError::from(e)
        })?;
        // The totals are read inside the probe's transaction: on a shared
        // database another front-end may commit between a plain read and
        // the write, and writing the older totals back would lose its sums.
        let probe = || -> Result<(), StoreError> {
            let tx = store.begin()?;
            let mut probe = Writes::new();
            if let Some(totals) = tx.get(records::TOTALS)? {
                probe.insert(records::TOTALS.to_vec(), Some(totals));
            }
            tx.commit(&probe)
        };
        if let Err(e) = probe() {
            tracing::warn!(error = %e, "the ledger's storage still fails");
            return Err(e.into());
        }
        *self.exclusive() = Some(store);
        tracing::info!("the ledger's storage recovered");
        Ok(())
    }

    fn read<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, DomainError> {
        self.view(|store| store.get(key)?.map(|b| decode(key, &b)).transpose())
    }

    /// The maintained sums as stored (no scan; [`Ledger::sums`] checks them).
    pub fn totals(&self) -> Result<Totals, DomainError> {
        Ok(self.read(records::TOTALS)?.unwrap_or_default())
    }

    /// A committed account.
    pub fn account(&self, key: &[u8; 32]) -> Result<Option<Account>, DomainError> {
        self.read(&account_key(key))
    }

    /// A committed escrow.
    pub fn escrow(&self, tid: &Tid) -> Result<Option<Escrow>, DomainError> {
        self.read(&escrow_key(tid))
    }

    /// A committed withdrawal.
    pub fn withdrawal(
        &self,
        account: &[u8; 32],
        request_id: &[u8; 16],
    ) -> Result<Option<WithdrawalRecord>, DomainError> {
        self.read(&records::withdrawal_key(account, request_id))
    }

    /// A committed registration.
    pub fn registration(&self, token_id: &[u8; 32]) -> Result<Option<Registration>, DomainError> {
        self.read(&records::registration_key(token_id))
    }

    /// The TID a token was spent for, if it was.
    pub fn spent(&self, token_id: &[u8; 32]) -> Result<Option<Tid>, DomainError> {
        self.view(|store| {
            Ok(store
                .get(&records::spent_key(token_id))?
                .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
                .map(Tid))
        })
    }

    /// Escrows still `Escrowed` whose expiration is at or before `now_ms`,
    /// oldest first, at most `limit`.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<Escrow>, DomainError> {
        let end = due_key(now_ms, &Tid([0xff; 16]));
        self.view_snapshot(|store| {
            let mut out = Vec::new();
            for item in store.range(records::DUE, &end).take(limit) {
                let (k, _) = item?;
                let Ok(tid) = <[u8; 16]>::try_from(&k[records::DUE.len() + 8..]) else {
                    return Err(DomainError::internal("corrupt due index key"));
                };
                let key = escrow_key(&Tid(tid));
                if let Some(b) = store.get(&key)? {
                    out.push(decode(&key, &b)?);
                }
            }
            Ok(out)
        })
    }

    /// The latest checkpoint stored for each log origin.
    pub fn checkpoints(&self) -> Result<Vec<(String, String)>, DomainError> {
        self.view(|store| {
            let mut out = Vec::new();
            for item in store.scan_prefix(records::CHECKPOINT) {
                let (k, v) = item?;
                let origin = String::from_utf8_lossy(&k[records::CHECKPOINT.len()..]).into_owned();
                let text = String::from_utf8_lossy(v.get(8..).unwrap_or_default()).into_owned();
                out.push((origin, text));
            }
            Ok(out)
        })
    }

    /// The maintained sums, checked against a recomputation from the
    /// accounts and escrows, both read from one state (no write runs
    /// meanwhile), so a mismatch is real.
    pub fn sums(&self) -> Result<Sums, DomainError> {
        self.view_snapshot(|store| {
            let totals: Totals = match store.get(records::TOTALS)? {
                Some(b) => decode(records::TOTALS, &b)?,
                None => Totals::default(),
            };
            let (mut customers, mut merchants, mut escrowed) = (0i128, 0i128, 0i128);
            for item in store.scan_prefix(records::ACCOUNT) {
                let (k, v) = item?;
                let a: Account = decode(&k, &v)?;
                match a.kind {
                    AccountKind::Customer => customers += i128::from(a.balance),
                    AccountKind::Merchant => merchants += i128::from(a.balance),
                }
            }
            for item in store.scan_prefix(records::ESCROW) {
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
        })
    }

    /// Decides the ops of `batch` in order, each into its own slot, and
    /// makes the accepted ones durable with one atomic write. An op refused
    /// leaves no trace; if the write fails, every accepted op is answered
    /// `storage_unavailable` instead, the gate shuts and one
    /// [`Ledger::recover`] is tried at once. A checkpoint update is stored
    /// with the batch whatever its op's fate.
    pub fn decide(&self, mut batch: Vec<(&mut dyn Decide, Option<CheckpointUpdate>)>) {
        let checkpoints: Vec<_> = batch.iter_mut().map(|(_, c)| c.take()).collect();
        let mut pause = Duration::from_millis(1);
        for attempt in 1..=MAX_ATTEMPTS {
            match self.attempt(&mut batch, &checkpoints) {
                Attempt::Done => return,
                Attempt::Failed(e) => {
                    for (op, _) in batch {
                        op.fail(e.clone());
                    }
                    let _ = self.recover();
                    return;
                }
                Attempt::Shut => {
                    for (op, _) in batch {
                        op.fail(recovering());
                    }
                    return;
                }
                Attempt::Conflict => {
                    tracing::debug!(attempt, "a batch conflicted; deciding it again");
                    for (op, _) in &mut batch {
                        op.retry();
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        }
        for (op, _) in batch {
            op.fail(DomainError::unavailable(
                "busy",
                "the ledger's transactions keep conflicting; retry",
            ));
        }
    }

    /// Decides the batch once, in one transaction of the store.
    fn attempt(
        &self,
        batch: &mut [(&mut dyn Decide, Option<CheckpointUpdate>)],
        checkpoints: &[Option<CheckpointUpdate>],
    ) -> Attempt {
        // The store is held, not the gate: readers go on while the batch
        // is decided (on sled no one else writes meanwhile).
        let Some(store) = self.shared().clone() else {
            return Attempt::Shut;
        };
        let tx = match store.begin() {
            Ok(tx) => tx,
            Err(StoreError::Conflict(_)) => return Attempt::Conflict,
            Err(e) => {
                tracing::error!(error = %e, "the ledger could not begin a batch");
                *self.exclusive() = None;
                return Attempt::Failed(storage_failed());
            }
        };
        let conflict = std::cell::Cell::new(false);
        let mut writes = Writes::new();
        for ((op, _), checkpoint) in batch.iter_mut().zip(checkpoints) {
            if let Some(c) = checkpoint
                && let Err(e) = stage_checkpoint(&*tx, &mut writes, c.clone())
            {
                tracing::warn!(error = %e, "cannot store a checkpoint");
            }
            let mut t = Tx {
                store: &*tx,
                batch: &writes,
                writes: Writes::new(),
                conflict: &conflict,
            };
            if op.decide(&mut t) {
                let own = t.writes;
                writes.extend(own);
            }
        }
        if conflict.get() {
            return Attempt::Conflict;
        }
        if writes.is_empty() {
            return Attempt::Done;
        }
        // Readers wait until the batch is durable or dropped: none may see
        // it applied and not flushed.
        let mut gate = self.exclusive();
        if gate.is_none() {
            // Only this thread shuts the gate; were it shut, nothing of
            // the batch is written.
            return Attempt::Failed(storage_failed());
        }
        match tx.commit(&writes) {
            Ok(()) => Attempt::Done,
            Err(StoreError::Conflict(_)) => Attempt::Conflict,
            Err(e) => {
                tracing::error!(error = %e, "the ledger could not write a batch");
                // The store may hold the batch applied and not durable
                // (and sled refuses every write after an I/O error): only
                // a reopened one is trusted.
                *gate = None;
                Attempt::Failed(storage_failed())
            }
        }
    }
}

/// How often a batch whose transaction conflicted is decided again before
/// its ops are answered 503 `busy`.
const MAX_ATTEMPTS: u32 = 20;

/// What one decision of a batch came to.
enum Attempt {
    /// Decided, and the accepted ops are durable.
    Done,
    /// Decide it again from scratch.
    Conflict,
    /// Nothing may have been written; the gate is shut.
    Failed(DomainError),
    /// The gate was shut before the batch began.
    Shut,
}

fn stage_checkpoint(
    store: &dyn StoreTx,
    batch: &mut Writes,
    c: CheckpointUpdate,
) -> Result<(), DomainError> {
    let key = records::checkpoint_key(&c.origin);
    let stored = match batch.get(&key) {
        Some(v) => v.clone(),
        None => store.get(&key)?,
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

#[cfg(test)]
mod tests;
