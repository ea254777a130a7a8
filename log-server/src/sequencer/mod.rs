//! The sequencer: the one writer of the tree (paper step P5 and abort).
//!
//! Handlers check signatures and submit appends through a bounded channel.
//! The sequencer takes everything queued (group commit), decides each
//! request under the protocol's rules against the log's clock and the TID
//! index — exactly one outcome per TID, first come first served — appends
//! the accepted entries, signs a checkpoint, and makes the batch durable
//! with one storage commit. Only then does it publish the checkpoint and
//! answer each request with its index and inclusion proof.
//!
//! A failed commit puts the sequencer in recovery: appends are answered
//! 503 `storage_unavailable` while it reopens the storage (then holding
//! exactly what is durable), reloads the tree from the latest durable
//! checkpoint and probes with a write, retrying on the
//! [`acd_serve::backoff`] schedule (100 ms doubling to 5 s); then it
//! sequences again by itself. Reads of published data go on meanwhile.
//!
//! On a storage shared by several processes (PostgreSQL) the sequencer
//! sequences only while it holds the storage's lease, renewed every
//! [`SequencerConfig::lease_renew`]. Without it, it is a standby: appends
//! are answered 503 `not_sequencer`, the published checkpoint follows the
//! stored one (so reads answer what the active process committed), and
//! the lease is tried for at each renewal; once taken, the tree is
//! reloaded from the latest stored checkpoint (the recovery path) and the
//! sequencer continues it. A commit refused because the lease is gone or
//! the checkpoint moved makes it a standby at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
use acd_core::entry::{LogEntry, Tid};
use acd_core::error::DomainError;
use acd_core::log_api::{AbortRequest, CommitRequest, EntryProof};
use acd_core::merkle::{self, Hash};
use acd_core::note::NoteSigner;
use acd_serve::backoff::Backoff;
use thiserror::Error;
use tokio::sync::{oneshot, watch};

mod faults;

#[cfg(any(test, feature = "faults"))]
pub use faults::Faults;
#[cfg(not(any(test, feature = "faults")))]
use faults::Faults;

use crate::clock::Clock;
use crate::storage::{Batch, Storage, StorageError, StoredCheckpoint};
use crate::tree::{Edge, TreeReader};

/// The latest published checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub size: u64,
    pub root: Hash,
    /// The signed note, as served at `/checkpoint`.
    pub checkpoint: String,
}

/// An append whose signature the handler has checked.
#[derive(Debug, Clone)]
pub enum Append {
    Commit(CommitRequest),
    Abort(AbortRequest),
}

impl Append {
    fn tid(&self) -> Tid {
        match self {
            Append::Commit(c) => c.tid,
            Append::Abort(a) => a.tid,
        }
    }

    fn entry(&self, timestamp_ms: u64) -> LogEntry {
        match self {
            Append::Commit(c) => LogEntry::Commit {
                timestamp_ms,
                tid: c.tid,
                merchant: c.merchant,
                expiration_ms: c.expiration_ms,
                key: c.key,
                signature: c.signature,
            },
            Append::Abort(a) => LogEntry::Abort {
                timestamp_ms,
                tid: a.tid,
                merchant: a.merchant,
                expiration_ms: a.expiration_ms,
                bank: a.bank,
                signature: a.signature,
            },
        }
    }

    /// Is `existing` the entry this very request produced (timestamps aside)?
    fn same_as(&self, existing: &LogEntry) -> bool {
        self.entry(existing.timestamp_ms()) == *existing
    }
}

/// Why an append was not accepted.
#[derive(Debug, Error)]
pub enum AppendError {
    #[error("TID {tid} already has an outcome ({})", existing.outcome)]
    Conflict { tid: Tid, existing: Box<EntryProof> },
    #[error("the commit expired at {expiration_ms} ms; the log's clock reads {now_ms} ms")]
    Expired { now_ms: u64, expiration_ms: u64 },
    #[error(
        "the transaction expires at {expiration_ms} ms; the log's clock reads {now_ms} ms, too early to abort"
    )]
    NotExpired { now_ms: u64, expiration_ms: u64 },
    #[error("the log is busy; retry shortly")]
    Busy,
    #[error("the log cannot store entries right now: {0}")]
    Unavailable(String),
    #[error("the log's storage failed and is recovering; retry: {0}")]
    Storage(String),
    #[error("this log process is a standby, not the sequencer; retry (at the active one): {0}")]
    NotSequencer(String),
}

/// The step's refusals as the log answers them: another outcome is 409
/// `conflict` carrying it, a time rule 422, back-pressure and a stopped or
/// failing writer 503.
impl From<AppendError> for DomainError {
    fn from(e: AppendError) -> Self {
        let message = e.to_string();
        match e {
            AppendError::Conflict { existing, .. } => {
                DomainError::conflict("conflict", message).with_existing(existing)
            }
            AppendError::Expired { .. } => DomainError::unprocessable("expired", message),
            AppendError::NotExpired { .. } => DomainError::unprocessable("not_expired", message),
            AppendError::Busy => DomainError::unavailable("busy", message),
            AppendError::Unavailable(_) => DomainError::unavailable("unavailable", message),
            AppendError::Storage(_) => DomainError::unavailable("storage_unavailable", message),
            AppendError::NotSequencer(_) => DomainError::unavailable("not_sequencer", message),
        }
    }
}

/// An accepted (or repeated) append.
pub type AppendResult = Result<EntryProof, AppendError>;

struct Job {
    append: Append,
    reply: oneshot::Sender<AppendResult>,
}

/// An append in the sequencer's queue.
pub struct Queued(oneshot::Receiver<AppendResult>);

impl Queued {
    /// Waits until the append is durable and published.
    pub async fn wait(self) -> AppendResult {
        self.0
            .await
            .unwrap_or_else(|_| Err(AppendError::Unavailable("the sequencer has stopped".into())))
    }
}

/// Sequencer settings.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    pub origin: String,
    pub max_batch: usize,
    pub queue: usize,
    pub checkpoint_interval: Duration,
    /// After the first queued append, how long to let more gather before
    /// committing: larger batches cost less per entry.
    pub batch_window: Duration,
    /// How often the storage's lease is renewed (or, by a standby, tried
    /// for); see [`Storage::lease`].
    pub lease_renew: Duration,
}

/// The handlers' side of the sequencer.
#[derive(Clone)]
pub struct SequencerHandle {
    tx: SyncSender<Job>,
    published: watch::Receiver<Arc<Published>>,
}

impl SequencerHandle {
    /// Queues an append and waits until it is durable and published.
    pub async fn append(&self, append: Append) -> AppendResult {
        match self.submit(append) {
            Ok(queued) => queued.wait().await,
            Err(e) => Err(e),
        }
    }

    /// Queues an append without waiting: a batch queues all its entries
    /// first, so that they meet in one group commit.
    pub fn submit(&self, append: Append) -> Result<Queued, AppendError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job { append, reply }) {
            Ok(()) => Ok(Queued(rx)),
            Err(TrySendError::Full(_)) => Err(AppendError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                Err(AppendError::Unavailable("the sequencer has stopped".into()))
            }
        }
    }

    /// The latest published checkpoint.
    pub fn published(&self) -> Arc<Published> {
        self.published.borrow().clone()
    }

    /// A receiver that sees every newly published checkpoint.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.published.clone()
    }
}

/// Builds the answer for entry `index` under the published tree.
pub fn entry_proof<S: Storage + ?Sized>(
    reader: &mut TreeReader<'_, S>,
    published: &Published,
    index: u64,
    entry: Vec<u8>,
) -> Result<EntryProof, StorageError> {
    let decoded = LogEntry::decode(&entry)
        .map_err(|e| StorageError::Corrupt(format!("entry {index}: {e}")))?;
    let inclusion = reader.inclusion(index).map_err(|e| match e {
        merkle::ProveError::Source(e) => e,
        other => StorageError::Corrupt(other.to_string()),
    })?;
    Ok(EntryProof {
        index,
        tid: decoded.tid(),
        outcome: decoded.outcome(),
        timestamp_ms: decoded.timestamp_ms(),
        leaf_hash: merkle::leaf_hash(&entry),
        entry,
        tree_size: published.size,
        inclusion,
        checkpoint: published.checkpoint.clone(),
    })
}

/// The writer side, run on its own thread.
struct Sequencer<S: Storage + ?Sized> {
    storage: Arc<S>,
    signer: NoteSigner,
    clock: Arc<dyn Clock>,
    config: SequencerConfig,
    faults: Faults,
    edge: Edge,
    last_timestamp: u64,
    published: watch::Sender<Arc<Published>>,
    /// Why the sequencer is recovering from a failed commit: it refuses
    /// appends until storage is reopened, the tree reloaded and a write
    /// succeeded, rather than risk rewriting history.
    recovering: Option<String>,
    backoff: Backoff,
    /// The latest stored checkpoint as far as this sequencer knows: what
    /// its next batch extends (the storage's compare-and-swap).
    head: StoredCheckpoint,
    /// Another process holds the storage's lease: refuse appends, follow
    /// the stored checkpoint.
    standby: bool,
    /// When the lease is next renewed or tried for.
    lease_due: Instant,
}

/// What to answer a request that did not append a new entry.
enum Deferred {
    Existing(u64, Vec<u8>),
    Conflict(u64, Vec<u8>),
}

/// Opens the sequencer over `storage`: loads the tree's edge, signs and
/// stores the first checkpoint of an empty log, and starts the writer
/// thread. Returns the handle and the thread, which ends when every handle
/// is dropped.
pub fn start<S: Storage + ?Sized>(
    storage: Arc<S>,
    signer: NoteSigner,
    clock: Arc<dyn Clock>,
    config: SequencerConfig,
) -> Result<(SequencerHandle, std::thread::JoinHandle<()>), StorageError> {
    start_faulty(storage, signer, clock, config, Faults::default())
}

/// [`start`], with rules broken on purpose: for tests of auditors only.
#[cfg(any(test, feature = "faults"))]
pub fn start_with_faults<S: Storage + ?Sized>(
    storage: Arc<S>,
    signer: NoteSigner,
    clock: Arc<dyn Clock>,
    config: SequencerConfig,
    faults: Faults,
) -> Result<(SequencerHandle, std::thread::JoinHandle<()>), StorageError> {
    start_faulty(storage, signer, clock, config, faults)
}

fn start_faulty<S: Storage + ?Sized>(
    storage: Arc<S>,
    signer: NoteSigner,
    clock: Arc<dyn Clock>,
    config: SequencerConfig,
    faults: Faults,
) -> Result<(SequencerHandle, std::thread::JoinHandle<()>), StorageError> {
    let (latest, holds) = first_checkpoint(&*storage, &signer, &config)?;
    let (edge, root) = load_edge(&*storage, &signer, &latest)?;
    let last_timestamp = last_timestamp(&*storage, latest.size)?;
    if !holds {
        tracing::info!(
            size = latest.size,
            "another process holds the lease; serving reads as a standby"
        );
    }
    let (published_tx, published_rx) = watch::channel(Arc::new(Published {
        size: latest.size,
        root,
        checkpoint: latest.note.clone(),
    }));
    let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
    let lease_due = Instant::now() + config.lease_renew;
    let mut seq = Sequencer {
        storage,
        signer,
        clock,
        config,
        faults,
        edge,
        last_timestamp,
        published: published_tx,
        recovering: None,
        backoff: Backoff::default(),
        head: latest.clone(),
        standby: !holds,
        lease_due,
    };
    let thread = std::thread::Builder::new()
        .name("sequencer".into())
        .spawn(move || seq.run(rx))
        .map_err(|e| StorageError::Io(format!("cannot start the sequencer: {e}")))?;
    Ok((
        SequencerHandle {
            tx,
            published: published_rx,
        },
        thread,
    ))
}

/// The latest stored checkpoint, and whether this process holds the lease.
/// The lease holder signs and stores the empty tree's checkpoint if there
/// is none; a standby waits (a while) for the holder to do so.
fn first_checkpoint<S: Storage + ?Sized>(
    storage: &S,
    signer: &NoteSigner,
    config: &SequencerConfig,
) -> Result<(StoredCheckpoint, bool), StorageError> {
    let deadline = Instant::now() + FIRST_CHECKPOINT_WAIT;
    loop {
        let holds = storage.lease()?;
        if let Some(c) = storage.latest_checkpoint()? {
            return Ok((c, holds));
        }
        if holds {
            let note = sign_checkpoint(signer, &config.origin, 0, merkle::empty_root())?;
            let c = StoredCheckpoint { size: 0, note };
            match storage.commit(&Batch {
                checkpoint: Some(c.clone()),
                ..Batch::default()
            }) {
                Ok(()) => return Ok((c, true)),
                // Another process stored it first: read it next round.
                Err(StorageError::NotSequencer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if Instant::now() >= deadline {
            return Err(StorageError::Io(
                "no checkpoint stored and the lease is held by another process".into(),
            ));
        }
        std::thread::sleep(config.lease_renew.min(Duration::from_millis(200)));
    }
}

/// How long a standby that found an empty store waits for the lease
/// holder's first checkpoint.
const FIRST_CHECKPOINT_WAIT: Duration = Duration::from_secs(30);

/// How often a standby re-reads the stored checkpoint, so that its reads
/// follow the active process closely.
const STANDBY_REFRESH: Duration = Duration::from_millis(200);

/// The timestamp of the last entry of the stored tree of `size` leaves:
/// the sequencer's clock never goes below it.
fn last_timestamp<S: Storage + ?Sized>(storage: &S, size: u64) -> Result<u64, StorageError> {
    if size == 0 {
        return Ok(0);
    }
    let mut reader = TreeReader::new(storage, size);
    let entry = reader.entry(size - 1)?;
    Ok(LogEntry::decode(&entry)
        .map_err(|e| StorageError::Corrupt(format!("last entry: {e}")))?
        .timestamp_ms())
}

/// The tree's edge at the stored checkpoint `latest`, checked against it.
fn load_edge<S: Storage + ?Sized>(
    storage: &S,
    signer: &NoteSigner,
    latest: &StoredCheckpoint,
) -> Result<(Edge, Hash), StorageError> {
    let edge = Edge::load(storage, latest.size)?;
    let root = edge.root()?;
    let parsed = SignedCheckpoint::open(&latest.note, &signer.verifier())
        .map_err(|e| StorageError::Corrupt(format!("stored checkpoint: {e}")))?;
    if parsed.checkpoint.root != root || parsed.checkpoint.size != latest.size {
        return Err(StorageError::Corrupt(format!(
            "stored tree does not match the checkpoint of size {}",
            latest.size
        )));
    }
    Ok((edge, root))
}

fn sign_checkpoint(
    signer: &NoteSigner,
    origin: &str,
    size: u64,
    root: Hash,
) -> Result<String, StorageError> {
    let checkpoint = Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
        extensions: Vec::new(),
    };
    SignedCheckpoint::sign(checkpoint, signer)
        .map(|c| c.to_text())
        .map_err(|e| StorageError::Corrupt(format!("cannot sign checkpoint: {e}")))
}

impl<S: Storage + ?Sized> Sequencer<S> {
    fn run(&mut self, rx: mpsc::Receiver<Job>) {
        loop {
            if Instant::now() >= self.lease_due {
                self.check_lease();
            }
            if self.standby {
                self.refresh();
            }
            let mut wait = self.config.checkpoint_interval;
            wait = wait.min(self.lease_due.saturating_duration_since(Instant::now()));
            if self.standby {
                wait = wait.min(STANDBY_REFRESH);
            }
            wait = wait.max(Duration::from_millis(1));
            if self.recovering.is_some() {
                if self.backoff.due() && !self.try_recover() {
                    self.backoff.failed();
                }
                if self.recovering.is_some() {
                    wait = self.backoff.wait().clamp(Duration::from_millis(1), wait);
                }
            }
            let first = match rx.recv_timeout(wait) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    // Entries stored by a commit that reported failure are
                    // published here, within one interval.
                    if self.recovering.is_none()
                        && !self.standby
                        && self.edge.size() > self.published.borrow().size
                        && let Err(e) = self.publish(Batch::default())
                    {
                        tracing::warn!(error = %e, "republishing checkpoint failed");
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut jobs = vec![first];
            if !self.config.batch_window.is_zero() {
                std::thread::sleep(self.config.batch_window);
            }
            while jobs.len() < self.config.max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.process(jobs);
        }
        if !self.standby
            && let Err(e) = self.storage.release()
        {
            tracing::warn!(error = %e, "could not give up the lease");
        }
        tracing::info!(size = self.edge.size(), "sequencer stopped");
    }

    /// Renews the lease, or tries to take it. Losing it makes this process
    /// a standby at once; taking it reloads the tree from storage first.
    fn check_lease(&mut self) {
        self.lease_due = Instant::now() + self.config.lease_renew;
        match self.storage.lease() {
            Ok(true) if self.standby => {
                self.refresh();
                match self.recover() {
                    Ok(()) => {
                        self.standby = false;
                        self.recovering = None;
                        self.backoff.reset();
                        tracing::info!(size = self.edge.size(), "took the lease; sequencing");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "took the lease but cannot load the tree");
                    }
                }
            }
            Ok(true) => {}
            Ok(false) => {
                if !self.standby {
                    self.become_standby("another process took the lease");
                }
            }
            Err(e) => {
                // A commit checks the lease itself: nothing is stored
                // without it, so sequencing may go on until one fails.
                tracing::warn!(error = %e, "cannot renew the lease");
            }
        }
    }

    fn become_standby(&mut self, why: &str) {
        tracing::warn!(
            size = self.edge.size(),
            why,
            "not the sequencer any more; serving reads as a standby"
        );
        self.standby = true;
        self.recovering = None;
        // Try to take the lease again only after the holder had a chance
        // to renew it.
        self.lease_due = Instant::now() + self.config.lease_renew;
    }

    /// As a standby: publishes the stored checkpoint if it is newer, after
    /// checking its signature.
    fn refresh(&mut self) {
        let latest = match self.storage.latest_checkpoint() {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the latest checkpoint");
                return;
            }
        };
        if latest.size <= self.published.borrow().size {
            return;
        }
        match SignedCheckpoint::open(&latest.note, &self.signer.verifier()) {
            Ok(parsed) if parsed.checkpoint.size == latest.size => {
                self.published.send_replace(Arc::new(Published {
                    size: latest.size,
                    root: parsed.checkpoint.root,
                    checkpoint: latest.note,
                }));
            }
            Ok(_) => tracing::error!(size = latest.size, "stored checkpoint has another size"),
            Err(e) => tracing::error!(error = %e, "stored checkpoint does not verify"),
        }
    }

    fn process(&mut self, jobs: Vec<Job>) {
        if self.standby {
            for job in jobs {
                let _ = job.reply.send(Err(AppendError::NotSequencer(
                    "another process holds the lease".into(),
                )));
            }
            return;
        }
        if let Some(why) = &self.recovering {
            for job in jobs {
                let _ = job.reply.send(Err(AppendError::Storage(why.clone())));
            }
            return;
        }
        let now = self.clock.now_ms().max(self.last_timestamp);
        let mut batch = Batch::default();
        let mut in_batch: HashMap<Tid, (u64, Vec<u8>)> = HashMap::new();
        let mut accepted: Vec<(oneshot::Sender<AppendResult>, u64, Vec<u8>)> = Vec::new();
        let mut deferred: Vec<(oneshot::Sender<AppendResult>, Tid, Deferred)> = Vec::new();
        let published_size = self.published.borrow().size;

        for job in jobs {
            let tid = job.append.tid();
            let existing = match in_batch.get(&tid) {
                Some(found) => Some(found.clone()),
                None => match self.stored_outcome(&tid) {
                    Ok(found) => found,
                    Err(e) => {
                        let _ = job.reply.send(Err(AppendError::Unavailable(e.to_string())));
                        continue;
                    }
                },
            };
            let existing = existing.filter(|(_, bytes)| {
                // A faulty log forgets outcomes unless the request repeats one.
                !self.faults.allow_second_outcome
                    || LogEntry::decode(bytes).is_ok_and(|e| job.append.same_as(&e))
            });
            if let Some((index, bytes)) = existing {
                let same = LogEntry::decode(&bytes)
                    .map(|e| job.append.same_as(&e))
                    .unwrap_or(false);
                let d = if same {
                    Deferred::Existing(index, bytes)
                } else {
                    Deferred::Conflict(index, bytes)
                };
                deferred.push((job.reply, tid, d));
                continue;
            }
            let expiration_ms = match &job.append {
                Append::Commit(c) => c.expiration_ms,
                Append::Abort(a) => a.expiration_ms,
            };
            let timely = self.faults.ignore_expiration
                || match &job.append {
                    Append::Commit(_) => now < expiration_ms,
                    Append::Abort(_) => now >= expiration_ms,
                };
            if !timely {
                let err = match &job.append {
                    Append::Commit(_) => AppendError::Expired {
                        now_ms: now,
                        expiration_ms,
                    },
                    Append::Abort(_) => AppendError::NotExpired {
                        now_ms: now,
                        expiration_ms,
                    },
                };
                let _ = job.reply.send(Err(err));
                continue;
            }
            let bytes = job.append.entry(now).encode();
            let leaf = merkle::leaf_hash(&bytes);
            let index = self.edge.size();
            if let Err(e) = self.edge.append(&bytes, leaf, &mut batch) {
                // Entries have a fixed size far below the bundle limit.
                let _ = job.reply.send(Err(AppendError::Unavailable(e.to_string())));
                continue;
            }
            batch.tids.push((tid, index));
            batch.leaves.push((leaf, index));
            in_batch.insert(tid, (index, bytes.clone()));
            accepted.push((job.reply, index, bytes));
        }

        if !accepted.is_empty() || self.edge.size() > published_size {
            // Entries of a failed commit may have been stored anyway.
            self.last_timestamp = now;
            if let Err(e) = self.publish(batch) {
                let why = e.to_string();
                let err = |why: String| match e {
                    StorageError::NotSequencer(_) => AppendError::NotSequencer(why),
                    _ => AppendError::Storage(why),
                };
                for (reply, _, _) in accepted {
                    let _ = reply.send(Err(err(why.clone())));
                }
                for (reply, _, _) in deferred {
                    let _ = reply.send(Err(err(why.clone())));
                }
                return;
            }
        }

        let published = self.published.borrow().clone();
        let mut reader = TreeReader::new(&*self.storage, published.size);
        for (reply, index, bytes) in accepted {
            let r = entry_proof(&mut reader, &published, index, bytes)
                .map_err(|e| AppendError::Unavailable(e.to_string()));
            let _ = reply.send(r);
        }
        for (reply, tid, d) in deferred {
            let r = match d {
                Deferred::Existing(index, bytes) => {
                    entry_proof(&mut reader, &published, index, bytes)
                        .map_err(|e| AppendError::Unavailable(e.to_string()))
                }
                Deferred::Conflict(index, bytes) => {
                    match entry_proof(&mut reader, &published, index, bytes) {
                        Ok(existing) => Err(AppendError::Conflict {
                            tid,
                            existing: Box::new(existing),
                        }),
                        Err(e) => Err(AppendError::Unavailable(e.to_string())),
                    }
                }
            };
            let _ = reply.send(r);
        }
    }

    /// The stored outcome for `tid`, with its entry bytes.
    fn stored_outcome(&self, tid: &Tid) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        let Some(index) = self.storage.tid_index(tid)? else {
            return Ok(None);
        };
        let mut reader = TreeReader::new(&*self.storage, self.edge.size());
        Ok(Some((index, reader.entry(index)?)))
    }

    /// Commits `batch` with a checkpoint for the whole edge, then publishes
    /// it. On failure the sequencer recovers (one attempt at once, then on
    /// the backoff schedule): the storage may or may not hold the batch.
    fn publish(&mut self, mut batch: Batch) -> Result<(), StorageError> {
        let result = self.edge.root().and_then(|root| {
            let size = self.edge.size();
            let note = sign_checkpoint(&self.signer, &self.config.origin, size, root)?;
            self.edge.flush_into(&mut batch);
            let checkpoint = StoredCheckpoint {
                size,
                note: note.clone(),
            };
            batch.checkpoint = Some(checkpoint.clone());
            batch.previous = Some(self.head.clone());
            self.storage.commit(&batch)?;
            self.head = checkpoint;
            Ok(Published {
                size,
                root,
                checkpoint: note,
            })
        });
        match result {
            Ok(p) => {
                self.published.send_replace(Arc::new(p));
                Ok(())
            }
            Err(e @ StorageError::NotSequencer(_)) => {
                self.become_standby(&e.to_string());
                Err(e)
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; recovering the storage");
                self.recovering = Some(e.to_string());
                self.backoff.reset();
                self.try_recover();
                Err(e)
            }
        }
    }

    /// One recovery attempt; true if the sequencer takes appends again.
    fn try_recover(&mut self) -> bool {
        match self.recover() {
            Ok(()) => {
                tracing::info!(
                    size = self.edge.size(),
                    "storage recovered; sequencing again"
                );
                self.recovering = None;
                self.backoff.reset();
                true
            }
            Err(e @ StorageError::NotSequencer(_)) => {
                self.become_standby(&e.to_string());
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "the log's storage still fails");
                self.recovering = Some(e.to_string());
                false
            }
        }
    }

    /// Reopens the storage, reloads the edge from the latest durable
    /// checkpoint, and writes that checkpoint again unchanged as a probe
    /// that the disk takes writes. A durable tree larger than the published
    /// one (a commit that failed after it was stored) is published; a
    /// smaller one is refused: it would rewrite history.
    fn recover(&mut self) -> Result<(), StorageError> {
        self.storage.reopen()?;
        let latest = self
            .storage
            .latest_checkpoint()?
            .ok_or_else(|| StorageError::Corrupt("no checkpoint after reopening".into()))?;
        let published = self.published.borrow().clone();
        if latest.size < published.size {
            return Err(StorageError::Corrupt(format!(
                "the durable tree has {} entries, the published one {}",
                latest.size, published.size
            )));
        }
        let (edge, root) = load_edge(&*self.storage, &self.signer, &latest)?;
        let last_timestamp = last_timestamp(&*self.storage, latest.size)?;
        self.storage.commit(&Batch {
            checkpoint: Some(latest.clone()),
            previous: Some(latest.clone()),
            ..Batch::default()
        })?;
        self.edge = edge;
        self.head = latest.clone();
        self.last_timestamp = self.last_timestamp.max(last_timestamp);
        if latest.size > published.size {
            self.published.send_replace(Arc::new(Published {
                size: latest.size,
                root,
                checkpoint: latest.note,
            }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
