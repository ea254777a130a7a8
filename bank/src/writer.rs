//! The ledger's single writer thread, with group commit: the engine's
//! steps submit checked ops through a bounded channel; the writer takes
//! everything queued (up to `max_batch`), has [`Ledger::decide`] decide it
//! in arrival order and write it with one flush, then answers each op with
//! its own typed reply. While one batch is being flushed the next one
//! gathers. After a failed write the writer answers every op 503 and
//! retries [`Ledger::recover`] on the [`acd_serve::backoff`] schedule
//! (100 ms doubling to 5 s) until the storage takes writes again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use acd_core::error::DomainError;
use acd_serve::backoff::Backoff;
use tokio::sync::oneshot;

use crate::ledger::{CheckpointUpdate, Decide, Ledger, LedgerOp, Slot};
use crate::metrics::BankMetrics;

/// A queued op with the channel its typed decision goes back on.
trait Queued: Send {
    fn slot(&mut self) -> &mut dyn Decide;
    fn answer(self: Box<Self>);
}

struct Job<O: LedgerOp> {
    slot: Slot<O>,
    reply: oneshot::Sender<Result<O::Reply, DomainError>>,
}

impl<O: LedgerOp> Queued for Job<O> {
    fn slot(&mut self) -> &mut dyn Decide {
        &mut self.slot
    }

    fn answer(self: Box<Self>) {
        let Job { slot, reply } = *self;
        let _ = reply.send(slot.into_decision());
    }
}

struct Entry {
    job: Box<dyn Queued>,
    checkpoint: Option<CheckpointUpdate>,
}

/// How often an idle writer looks at its stop flag.
const IDLE: Duration = Duration::from_millis(100);

fn stopped() -> DomainError {
    DomainError::unavailable("unavailable", "the ledger has stopped")
}

/// The engine's side of the writer.
#[derive(Clone)]
pub struct WriterHandle {
    tx: SyncSender<Entry>,
    stop: Arc<AtomicBool>,
}

impl WriterHandle {
    /// Asks the writer to stop once the queue is empty, even if handles
    /// remain; later submissions are answered `unavailable`.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Queues `op` (and a newer checkpoint to store with it) and waits until
    /// it is decided and, if accepted, durable.
    pub async fn submit<O: LedgerOp>(
        &self,
        op: O,
        checkpoint: Option<CheckpointUpdate>,
    ) -> Result<O::Reply, DomainError> {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(Job {
            slot: Slot::new(op),
            reply,
        });
        match self.tx.try_send(Entry { job, checkpoint }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(DomainError::unavailable("busy", "the bank is busy; retry"));
            }
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// Starts the writer thread over `ledger`. The thread ends when every
/// handle is dropped or [`WriterHandle::stop`] is called, after answering
/// what was queued.
pub fn start(
    ledger: Arc<Ledger>,
    metrics: Arc<BankMetrics>,
    queue: usize,
    max_batch: usize,
) -> std::io::Result<(WriterHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel::<Entry>(queue.max(1));
    let max_batch = max_batch.max(1);
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ledger-writer".into())
        .spawn(move || {
            let mut backoff = Backoff::default();
            loop {
                let wait = if ledger.is_open() {
                    backoff.reset();
                    IDLE
                } else {
                    if backoff.due() {
                        match ledger.recover() {
                            Ok(()) => backoff.reset(),
                            Err(_) => backoff.failed(),
                        }
                    }
                    backoff.wait().clamp(Duration::from_millis(1), IDLE)
                };
                let first = match rx.recv_timeout(wait) {
                    Ok(entry) => entry,
                    Err(RecvTimeoutError::Timeout) if stopping.load(Ordering::SeqCst) => break,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                let mut entries = vec![first];
                while entries.len() < max_batch {
                    match rx.try_recv() {
                        Ok(entry) => entries.push(entry),
                        Err(_) => break,
                    }
                }
                ledger.decide(
                    entries
                        .iter_mut()
                        .map(|e| (e.job.slot(), e.checkpoint.take()))
                        .collect(),
                );
                let outcomes: Vec<_> = entries
                    .iter_mut()
                    .map(|e| {
                        let slot = e.job.slot();
                        (slot.kind(), slot.outcome())
                    })
                    .collect();
                metrics.decided(&outcomes);
                for entry in entries {
                    entry.job.answer();
                }
            }
            tracing::info!("ledger writer stopped");
        })?;
    Ok((WriterHandle { tx, stop }, thread))
}
