//! The merchant's durable state: one record per TID that the bank escrowed,
//! from the bank's escrow terms (P3) through the log's commit (P4/P5) to
//! the deposit, or to an abort or a commit conflict. Offers (P1) are
//! stateless ([`crate::offer_secret`]): a record starts when the escrow
//! terms arrive.
//!
//! Two backends behind [`Store`]: sled (the default, one process) and
//! PostgreSQL ([`crate::postgres`], any number of merchant front-ends with
//! the same keys on one database). Either way [`Store::put`] returns only
//! once the change is durable, and a crash leaves either the old state or
//! the new one.
//!
//! On sled the purchases are one tree. Every state change is one atomic
//! batch that rewrites the record and its index keys, then a flush. Keys:
//!
//! - `p/<tid>`: the [`Purchase`] as JSON.
//! - `q/<tid>`: present while there is work to do (escrowed but not
//!   committed, or committed but not deposited); the background task and
//!   recovery scan only these.
//! - `x/<expiration, u64 BE><tid>`: present while an unsold offer of an
//!   older version (which stored every offer) is kept, so that such offers
//!   can be pruned in expiration order.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use acd_core::bank_api::{DepositResponse, PurchaseRequest, SignedOffer};
use acd_core::entry::Tid;
use acd_core::log_api::{EntryProof, hex_array};
use acd_core::purchase::EscrowTerms;
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    /// PostgreSQL cannot be reached now (or is shutting down).
    #[error("database: {0}")]
    Unavailable(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// A database that cannot be reached now is worth retrying (503
/// `storage_unavailable`); a corrupt record is a bug or a broken disk (500,
/// detail logged only).
impl From<StoreError> for acd_core::error::DomainError {
    fn from(e: StoreError) -> Self {
        use acd_core::error::DomainError;
        match e {
            StoreError::Corrupt(_) => DomainError::internal(e.to_string()),
            StoreError::Sled(_) | StoreError::Unavailable(_) => {
                DomainError::unavailable("storage_unavailable", e.to_string())
            }
        }
    }
}

/// The bank's escrow for a purchase (P3) and the key the merchant commits.
#[derive(Clone, Serialize, Deserialize)]
pub struct Escrow {
    pub request: PurchaseRequest,
    /// The key sent to the log: k, unless the `bogus_key` misbehaviour
    /// chose another one when the escrow arrived.
    #[serde(with = "hex_array")]
    pub commit_key: [u8; 32],
}

/// Everything the merchant knows about one TID.
#[derive(Clone, Serialize, Deserialize)]
pub struct Purchase {
    /// The offer's escrow terms. Records of older versions hold the whole
    /// signed offer as `offer`; its terms are read from it.
    #[serde(alias = "offer", deserialize_with = "terms_or_offer")]
    pub terms: EscrowTerms,
    /// k, the key that encrypted the goods sent with the offer.
    #[serde(with = "hex_array")]
    pub key: [u8; 32],
    pub escrow: Option<Escrow>,
    /// The log's commit entry with its proof.
    pub commit: Option<EntryProof>,
    pub deposit: Option<DepositResponse>,
    /// The log's abort entry with its proof.
    pub abort: Option<EntryProof>,
    /// The bank's final refusal to pay a committed purchase (the customer
    /// disputed it, or was refunded, before the deposit): no deposit is
    /// tried again.
    #[serde(default)]
    pub unpaid: Option<String>,
    /// Another commit the log holds for this TID (another merchant's, or
    /// another key): this purchase can never be committed, and is not tried
    /// again.
    #[serde(default)]
    pub conflict: Option<EntryProof>,
}

fn terms_or_offer<'de, D: Deserializer<'de>>(d: D) -> Result<EscrowTerms, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Terms(EscrowTerms),
        Offer(SignedOffer),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Terms(t) => t,
        Stored::Offer(o) => o.offer.terms(),
    })
}

/// Keys are never printed.
impl fmt::Debug for Purchase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Purchase")
            .field("tid", &self.terms.tid)
            .field("stage", &self.stage())
            .finish_non_exhaustive()
    }
}

/// Where a purchase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// P1 sent; no escrow yet (records of older versions only).
    Offered,
    /// P3 received and accepted; not yet committed.
    Escrowed,
    /// P4/P5 done: k is in the log; not yet paid.
    Committed,
    /// The bank paid.
    Deposited,
    /// The log recorded an abort: no sale.
    Aborted,
    /// Committed, but the bank will never pay (see [`Purchase::unpaid`]).
    Unpaid,
    /// The log holds another commit for the TID (see
    /// [`Purchase::conflict`]): no sale, nothing more to do.
    Failed,
}

impl Stage {
    /// How far along a purchase is: a stored record never moves to a lower
    /// rank (0 offered, 1 escrowed, 2 committed, 3 final).
    pub fn rank(self) -> i16 {
        match self {
            Stage::Offered => 0,
            Stage::Escrowed => 1,
            Stage::Committed => 2,
            Stage::Deposited | Stage::Aborted | Stage::Unpaid | Stage::Failed => 3,
        }
    }

    /// Whether work is left: a commit or a deposit to try.
    pub fn pending(self) -> bool {
        matches!(self, Stage::Escrowed | Stage::Committed)
    }
}

impl Purchase {
    pub fn tid(&self) -> Tid {
        self.terms.tid
    }

    pub fn stage(&self) -> Stage {
        if self.abort.is_some() {
            Stage::Aborted
        } else if self.conflict.is_some() {
            Stage::Failed
        } else if self.deposit.is_some() {
            Stage::Deposited
        } else if self.unpaid.is_some() {
            Stage::Unpaid
        } else if self.commit.is_some() {
            Stage::Committed
        } else if self.escrow.is_some() {
            Stage::Escrowed
        } else {
            Stage::Offered
        }
    }
}

fn key(prefix: u8, tid: &Tid) -> Vec<u8> {
    let mut k = vec![prefix, b'/'];
    k.extend_from_slice(&tid.0);
    k
}

fn expiry_key(expiration_ms: u64, tid: &Tid) -> Vec<u8> {
    let mut k = vec![b'x', b'/'];
    k.extend_from_slice(&expiration_ms.to_be_bytes());
    k.extend_from_slice(&tid.0);
    k
}

fn tid_of(key: &[u8]) -> Result<Tid, StoreError> {
    let tail = key
        .len()
        .checked_sub(16)
        .and_then(|start| key.get(start..))
        .ok_or_else(|| StoreError::Corrupt("short index key".into()))?;
    let mut t = [0u8; 16];
    t.copy_from_slice(tail);
    Ok(Tid(t))
}

/// The merchant's purchases, on sled or on PostgreSQL.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sled(SledPurchases),
    Postgres(crate::postgres::PgPurchases),
}

impl Store {
    /// The purchases in the sled database at `path` (created if absent).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Sled(SledPurchases::open(path)?),
        })
    }

    /// The purchases in PostgreSQL.
    pub fn postgres(pg: crate::postgres::PgPurchases) -> Store {
        Store {
            backend: Backend::Postgres(pg),
        }
    }

    pub async fn get(&self, tid: &Tid) -> Result<Option<Purchase>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.get(tid),
            Backend::Postgres(p) => p.get(tid).await,
        }
    }

    /// Writes the record durably. On PostgreSQL a record that another
    /// front-end has already moved further along is left as it is
    /// ([`Stage::rank`]).
    pub async fn put(&self, p: &Purchase) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.put(p).await,
            Backend::Postgres(pg) => pg.put(p).await,
        }
    }

    /// TIDs with work left: escrowed but not committed, or committed but
    /// not deposited.
    pub async fn pending(&self) -> Result<Vec<Tid>, StoreError> {
        match &self.backend {
            // A scan of the whole queue: off the runtime's threads.
            Backend::Sled(s) => {
                let s = s.clone();
                tokio::task::spawn_blocking(move || s.pending())
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("the storage thread failed: {e}")))?
            }
            Backend::Postgres(p) => p.pending().await,
        }
    }

    /// Deletes unsold offers of older versions that expired before
    /// `before_ms`; returns how many. (A PostgreSQL store never held any.)
    pub async fn prune_offers(&self, before_ms: u64) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.prune_offers(before_ms).await,
            Backend::Postgres(_) => Ok(0),
        }
    }
}

/// The purchases on sled.
#[derive(Clone)]
struct SledPurchases {
    tree: sled::Tree,
    flushes: Arc<GroupFlush>,
}

/// Group commit of the merchant's writes: a write is applied, then waits
/// until a flush that started after it has finished. Writers that arrive
/// while a flush runs share the next one, so concurrent purchases cost one
/// fsync per group instead of one each.
#[derive(Default)]
struct GroupFlush {
    /// Writes applied so far (each takes the next number once applied).
    applied: AtomicU64,
    /// Every write numbered up to this one is durable.
    durable: AtomicU64,
    /// Held while a flush runs.
    lock: Mutex<()>,
    /// Flushes done, for the tests.
    flushes: AtomicU64,
}

impl GroupFlush {
    /// Applies `batch` to `tree` and returns once it is durable. Blocking.
    fn write(&self, tree: &sled::Tree, batch: sled::Batch) -> sled::Result<()> {
        tree.apply_batch(batch)?;
        let mine = self.applied.fetch_add(1, Ordering::SeqCst) + 1;
        let _flushing = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.durable.load(Ordering::SeqCst) >= mine {
            return Ok(());
        }
        // Everything applied before this point is covered by this flush.
        let upto = self.applied.load(Ordering::SeqCst);
        tree.flush()?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.durable.store(upto, Ordering::SeqCst);
        Ok(())
    }
}

impl SledPurchases {
    fn open(path: &Path) -> Result<SledPurchases, StoreError> {
        let db = acd_serve::open_sled(&sled::Config::new().path(path))?;
        Ok(SledPurchases {
            tree: db.open_tree("purchases")?,
            flushes: Arc::default(),
        })
    }

    fn get(&self, tid: &Tid) -> Result<Option<Purchase>, StoreError> {
        self.tree
            .get(key(b'p', tid))?
            .map(|v| {
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Corrupt(format!("purchase {tid}: {e}")))
            })
            .transpose()
    }

    /// Applies `batch` and makes it durable ([`GroupFlush`]), on a blocking
    /// thread. sled's
    /// `flush_async` keeps a read guard of the tree's concurrency control
    /// while the task waits; with a batch waiting for the write guard and
    /// every runtime worker blocked behind it, the waiting task never ran
    /// again (seen under 32 concurrent purchases). Blocking calls on the
    /// blocking pool hold no guard across an `.await`.
    async fn write(&self, batch: sled::Batch) -> Result<(), StoreError> {
        let (tree, flushes) = (self.tree.clone(), self.flushes.clone());
        tokio::task::spawn_blocking(move || flushes.write(&tree, batch))
            .await
            .map_err(|e| StoreError::Corrupt(format!("the storage thread failed: {e}")))?
            .map_err(StoreError::from)
    }

    /// Writes the record and its index keys in one batch and flushes.
    async fn put(&self, p: &Purchase) -> Result<(), StoreError> {
        let tid = p.tid();
        let bytes = serde_json::to_vec(p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let stage = p.stage();
        let mut batch = sled::Batch::default();
        batch.insert(key(b'p', &tid), bytes);
        let queue = key(b'q', &tid);
        if stage.pending() {
            batch.insert(queue, &[]);
        } else {
            batch.remove(queue);
        }
        let expiry = expiry_key(p.terms.expiration_ms, &tid);
        if stage == Stage::Offered {
            batch.insert(expiry, &[]);
        } else {
            batch.remove(expiry);
        }
        self.write(batch).await?;
        Ok(())
    }

    fn pending(&self) -> Result<Vec<Tid>, StoreError> {
        self.tree
            .scan_prefix(b"q/")
            .map(|kv| tid_of(&kv?.0))
            .collect()
    }

    async fn prune_offers(&self, before_ms: u64) -> Result<usize, StoreError> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for kv in self
            .tree
            .range(expiry_key(0, &Tid([0; 16]))..expiry_key(before_ms, &Tid([0; 16])))
        {
            let (k, _) = kv?;
            let tid = tid_of(&k)?;
            batch.remove(k);
            batch.remove(key(b'p', &tid));
            n += 1;
        }
        if n > 0 {
            self.write(batch).await?;
        }
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // A record written by an older version (the whole signed offer, the item) still reads, as its terms; a record reads back as written.
    #[test]
    fn records_of_older_versions_read() {
        use acd_core::purchase::Offer;
        let offer = Offer {
            bank: [1; 32],
            log_origin: "log.test/store".into(),
            tid: Tid([2; 16]),
            merchant: [3; 32],
            customer: [4; 32],
            expiration_ms: 5,
            price: 6,
            description: "a song".into(),
            ciphertext_hash: [7; 32],
            plaintext_hash: [8; 32],
        };
        let old = serde_json::json!({
            "offer": SignedOffer { offer: offer.clone(), signature: [9; 64] },
            "key": hex::encode([10; 32]),
            "item": "song",
            "escrow": null,
            "commit": null,
            "deposit": null,
            "abort": null,
        });
        let p: Purchase = serde_json::from_value(old).unwrap();
        assert_eq!(p.terms, offer.terms());
        assert_eq!((p.key, p.stage()), ([10; 32], Stage::Offered));
        let again: Purchase = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(again.terms, p.terms);
    }

    // Concurrent writers all get their batch applied, and share flushes: fewer fsyncs than writes, never a write acknowledged before a flush that began after it was applied.
    #[test]
    fn group_flush_shares_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("t").unwrap();
        let g = Arc::new(GroupFlush::default());
        let start = Arc::new(std::sync::Barrier::new(16));
        let threads: Vec<_> = (0..16u32)
            .map(|t| {
                let (g, tree, start) = (g.clone(), tree.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..25u32 {
                        let mut b = sled::Batch::default();
                        b.insert([t.to_be_bytes(), i.to_be_bytes()].concat(), &[1]);
                        g.write(&tree, b).unwrap();
                        assert!(g.durable.load(Ordering::SeqCst) >= 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(tree.len(), 16 * 25);
        assert_eq!(g.applied.load(Ordering::SeqCst), 16 * 25);
        assert_eq!(g.durable.load(Ordering::SeqCst), 16 * 25);
        let flushes = g.flushes.load(Ordering::Relaxed);
        assert!((1..16 * 25).contains(&flushes), "{flushes} flushes");
    }
}
