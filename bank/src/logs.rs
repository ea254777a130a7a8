//! The logs the bank trusts, and how it checks what they say (deposit,
//! refund, dispute, sweeper): an entry's inclusion proof under a checkpoint
//! signed by a trusted log and cosigned per the witness policy, and that
//! checkpoint's consistency with every checkpoint of that log the bank
//! accepted before (protocol invariants 1 and 2). A checkpoint that is not
//! consistent is refused and logged with both signed notes: they are the
//! evidence of a split view.

use std::collections::HashMap;

use acd_client::error::read_json;
use acd_client::log::LogClient;
use acd_core::checkpoint::SignedCheckpoint;
use acd_core::entry::LogEntry;
use acd_core::log_api::{ConsistencyProof, EntryProof};
use acd_core::note::NoteVerifier;
use acd_core::proof::{self, LogView, ProofError, WitnessPolicy};
use tokio::sync::Mutex;

use crate::ledger::CheckpointUpdate;
use acd_core::error::DomainError;

/// A trusted log: its key, its URL and the bank's view of its history.
pub struct LogPeer {
    pub verifier: NoteVerifier,
    pub url: String,
    pub client: LogClient,
    /// The largest checkpoint the bank accepted; locked while a new one is
    /// checked against it, so accepted checkpoints form one history.
    view: Mutex<LogView>,
}

impl LogPeer {
    pub fn new(
        verifier: NoteVerifier,
        url: &str,
        http: reqwest::Client,
        latest: Option<SignedCheckpoint>,
    ) -> Self {
        LogPeer {
            client: LogClient::with_http(http, url, verifier.clone()),
            verifier,
            url: url.trim_end_matches('/').to_owned(),
            view: Mutex::new(LogView::new(latest)),
        }
    }
}

/// The trusted logs by origin.
pub type Logs = HashMap<String, LogPeer>;

/// An entry proven under a trusted log's checkpoint.
#[derive(Debug, Clone)]
pub struct Proven {
    pub entry: LogEntry,
    pub origin: String,
    /// Set when the checkpoint is newer than any the bank had seen of that
    /// log: store it with the op.
    pub checkpoint: Option<CheckpointUpdate>,
}

/// The origin a checkpoint names (its first line).
pub fn checkpoint_origin(note: &str) -> &str {
    note.split('\n').next().unwrap_or_default()
}

/// Checks `entry_proof` completely (see the module doc).
pub async fn prove(
    logs: &Logs,
    http: &reqwest::Client,
    entry_proof: &EntryProof,
    policy: &WitnessPolicy,
) -> Result<Proven, DomainError> {
    let origin = checkpoint_origin(&entry_proof.checkpoint);
    let peer = logs.get(origin).ok_or_else(|| {
        DomainError::bad(
            "untrusted_log",
            format!("the bank does not trust a log named {origin:?}"),
        )
    })?;
    let verified =
        proof::verify_entry_proof(entry_proof, &peer.verifier, policy).map_err(|e| match e {
            // Not wrong, only early: the same entry under a later checkpoint
            // the witnesses cosigned is accepted.
            ProofError::Witnesses { .. } => DomainError::unprocessable(
                "insufficient_cosignatures",
                format!("{e}; retry with a proof under a checkpoint the witnesses cosigned"),
            ),
            e => DomainError::bad("bad_proof", e.to_string()),
        })?;
    let new = verified.checkpoint;
    // Fetching a proof waits on the log (up to the HTTP timeout), so it is
    // fetched without holding the view, and used only if the view still
    // needs exactly that proof once locked again; a view that moved
    // meanwhile is asked again, and after a few tries the proof is fetched
    // under the lock so that every request gets through.
    let mut tries = 0;
    let (mut view, consistency) = loop {
        tries += 1;
        if tries == 3 {
            let view = peer.view.lock().await;
            let proof = fetch_needed(http, &peer.url, view.proof_needed(&new)).await?;
            break (view, proof);
        }
        let needed = peer.view.lock().await.proof_needed(&new);
        let proof = fetch_needed(http, &peer.url, needed).await?;
        let view = peer.view.lock().await;
        if view.proof_needed(&new) == needed {
            break (view, proof);
        }
    };
    let accepted = match view.accept(&new, &consistency) {
        Ok(accepted) => accepted,
        Err(e @ (ProofError::Inconsistent { .. } | ProofError::SplitView { .. })) => {
            let old = view.latest().map(|c| c.to_text()).unwrap_or_default();
            tracing::warn!(
                origin,
                error = %e,
                seen = %old,
                presented = %new.to_text(),
                "a log checkpoint is inconsistent with one the bank accepted: possible split view"
            );
            return Err(DomainError::conflict(
                "inconsistent_checkpoint",
                format!("the checkpoint is inconsistent with one the bank has seen: {e}"),
            ));
        }
        Err(e) => return Err(DomainError::bad("bad_proof", e.to_string())),
    };
    drop(view);
    Ok(Proven {
        entry: verified.entry,
        origin: origin.to_owned(),
        checkpoint: accepted.then(|| CheckpointUpdate {
            origin: origin.to_owned(),
            size: new.checkpoint.size,
            text: new.to_text(),
        }),
    })
}

/// The consistency proof between the sizes `needed` names, if any.
async fn fetch_needed(
    http: &reqwest::Client,
    url: &str,
    needed: Option<(u64, u64)>,
) -> Result<Vec<acd_core::merkle::Hash>, DomainError> {
    match needed {
        None => Ok(Vec::new()),
        Some((from, to)) => fetch_consistency(http, url, from, to).await,
    }
}

async fn fetch_consistency(
    http: &reqwest::Client,
    url: &str,
    from: u64,
    to: u64,
) -> Result<Vec<acd_core::merkle::Hash>, DomainError> {
    let unreachable =
        |e: String| DomainError::unavailable("log_unreachable", format!("consistency proof: {e}"));
    let resp = http
        .get(format!("{url}/api/v1/consistency?from={from}&to={to}"))
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let p: ConsistencyProof = read_json(resp)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if p.from != from || p.to != to {
        return Err(unreachable(format!(
            "asked for {from} -> {to}, got {} -> {}",
            p.from, p.to
        )));
    }
    Ok(p.proof)
}
