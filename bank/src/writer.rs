//! The ledger's single writer thread, with group commit: handlers submit
//! checked ops through a bounded channel; the writer takes everything
//! queued (up to `max_batch`), has [`Ledger::decide`] decide it in arrival
//! order and write it with one flush, then answers each op. While one
//! batch is being flushed the next one gathers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::ledger::{Answer, CheckpointUpdate, Decision, Ledger, Op};
use crate::metrics::BankMetrics;

struct Job {
    op: Op,
    checkpoint: Option<CheckpointUpdate>,
    reply: oneshot::Sender<Decision>,
}

/// The handlers' side of the writer.
#[derive(Clone)]
pub struct WriterHandle {
    tx: SyncSender<Job>,
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
    pub async fn submit(
        &self,
        op: Op,
        checkpoint: Option<CheckpointUpdate>,
    ) -> Result<Answer, ApiError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job {
            op,
            checkpoint,
            reply,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ApiError::unavailable("busy", "the bank is busy; retry"));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ApiError::unavailable(
                    "unavailable",
                    "the ledger has stopped",
                ));
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err(ApiError::unavailable(
                "unavailable",
                "the ledger has stopped",
            ))
        })
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
    let (tx, rx) = mpsc::sync_channel::<Job>(queue.max(1));
    let max_batch = max_batch.max(1);
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ledger-writer".into())
        .spawn(move || {
            loop {
                let first = match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) if stopping.load(Ordering::SeqCst) => break,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                let mut jobs = vec![first];
                while jobs.len() < max_batch {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let (ops, replies): (Vec<_>, Vec<_>) = jobs
                    .into_iter()
                    .map(|j| ((j.op, j.checkpoint), j.reply))
                    .unzip();
                let kinds: Vec<&'static str> = ops.iter().map(|(op, _)| op.kind()).collect();
                let decisions = ledger.decide(ops);
                metrics.decided(&kinds, &decisions);
                for (reply, decision) in replies.into_iter().zip(decisions) {
                    let _ = reply.send(decision);
                }
            }
            tracing::info!("ledger writer stopped");
        })?;
    Ok((WriterHandle { tx, stop }, thread))
}
