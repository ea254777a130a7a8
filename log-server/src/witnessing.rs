//! The log's side of C2SP tlog-witness: after each published checkpoint,
//! ask every configured witness to cosign it (with a consistency proof from
//! the size that witness last cosigned) and serve the checkpoint with the
//! cosignatures collected at `/checkpoint`.
//!
//! One round runs at a time; a round covers the newest checkpoint, so under
//! load witnesses see a checkpoint per round, not per group commit. A
//! witness that answers 409 tells the size it holds; the log retries once
//! from there. A witness that is down or refuses only costs its
//! cosignature: it is asked again with backoff (250 ms doubling to 30 s)
//! until it cosigns or a newer checkpoint replaces this one.

use std::sync::Arc;
use std::time::Duration;

use acd_core::cosignature::CosignatureVerifier;
use acd_core::note::Note;
use acd_core::witness::{AddCheckpoint, parse_size_body};
use tokio::sync::watch;

use crate::sequencer::{Published, SequencerHandle};
use crate::storage::Storage;
use crate::tree::TreeReader;

/// A witness the log asks for cosignatures.
#[derive(Debug, Clone)]
pub struct WitnessPeer {
    /// Submission prefix, e.g. `http://127.0.0.1:8800`.
    pub url: String,
    pub verifier: CosignatureVerifier,
}

/// The checkpoint served at `/checkpoint`: the log's signed note plus the
/// cosignature lines of the witnesses that cosigned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    pub size: u64,
    pub root: acd_core::merkle::Hash,
    pub note: String,
    /// The size of the newest checkpoint that carried the cosignatures the
    /// log's witness policy needs (0 until one did): `note` may carry
    /// fewer, or none, while a witness is down.
    pub witnessed_size: u64,
}

struct PeerState {
    peer: WitnessPeer,
    /// The size this witness last cosigned, as far as the log knows.
    size: u64,
}

/// Starts the witnessing task; returns what `/checkpoint` should serve, or
/// `None` without witnesses (then it serves each published checkpoint).
/// A checkpoint counts as witnessed once `threshold` of the witnesses
/// cosigned it (at most all of them; see [`Cosigned::witnessed_size`]).
pub fn start(
    sequencer: SequencerHandle,
    storage: Arc<dyn Storage>,
    peers: Vec<WitnessPeer>,
    threshold: usize,
) -> Option<watch::Receiver<Arc<Cosigned>>> {
    if peers.is_empty() {
        return None;
    }
    let threshold = threshold.clamp(1, peers.len());
    let first = sequencer.published();
    let (tx, rx) = watch::channel(Arc::new(Cosigned {
        size: first.size,
        root: first.root,
        note: first.checkpoint.clone(),
        witnessed_size: 0,
    }));
    let http = acd_serve::http_client_with(WITNESS_TIMEOUT);
    let mut states: Vec<PeerState> = peers
        .into_iter()
        .map(|peer| PeerState { peer, size: 0 })
        .collect();
    let mut published = sequencer.subscribe();
    tokio::spawn(async move {
        // The cosignature lines collected for `current`, one slot per witness.
        let mut current = String::new();
        let mut lines: Vec<Option<String>> = vec![None; states.len()];
        let mut backoff = RETRY_MIN;
        let mut witnessed_size = 0;
        loop {
            let p = published.borrow_and_update().clone();
            if p.checkpoint != current {
                current = p.checkpoint.clone();
                lines.iter_mut().for_each(|l| *l = None);
                backoff = RETRY_MIN;
            }
            round(&http, &*storage, &p, &mut states, &mut lines).await;
            if lines.iter().flatten().count() >= threshold {
                witnessed_size = p.size;
            }
            tx.send_replace(Arc::new(Cosigned {
                size: p.size,
                root: p.root,
                note: format!(
                    "{}{}",
                    p.checkpoint,
                    lines.iter().flatten().cloned().collect::<String>()
                ),
                witnessed_size,
            }));
            if lines.iter().all(Option::is_some) {
                if published.changed().await.is_err() {
                    break;
                }
                continue;
            }
            // A witness is missing: ask it again after a while, or sooner
            // with the next checkpoint, so that an idle log still ends up
            // cosigned when the witness comes back.
            tokio::select! {
                changed = published.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                _ = tokio::time::sleep(backoff) => {
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    });
    Some(rx)
}

/// How long one witness may take to answer an add-checkpoint.
const WITNESS_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before asking a witness that did not cosign again.
const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest wait between two asks of a witness that did not cosign.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Asks every witness without a line in `lines` to cosign `p`; fills in
/// the verified cosignature lines.
async fn round(
    http: &reqwest::Client,
    storage: &dyn Storage,
    p: &Published,
    states: &mut [PeerState],
    lines: &mut [Option<String>],
) {
    let asks = states
        .iter_mut()
        .zip(lines.iter_mut())
        .filter(|(_, line)| line.is_none())
        .map(|(state, line)| async move {
            *line = ask(http, storage, p, state).await;
        });
    futures_util::future::join_all(asks).await;
}

/// One witness, with one retry after a 409 that names its size.
async fn ask(
    http: &reqwest::Client,
    storage: &dyn Storage,
    p: &Published,
    state: &mut PeerState,
) -> Option<String> {
    for _ in 0..2 {
        if state.size > p.size {
            tracing::warn!(witness = %state.peer.url, held = state.size, "witness holds a larger tree than the log");
            return None;
        }
        let proof = if state.size == 0 || state.size == p.size {
            Vec::new()
        } else {
            match TreeReader::new(storage, p.size).consistency(state.size) {
                Ok(proof) => proof,
                Err(e) => {
                    tracing::error!(error = %e, "cannot prove consistency for a witness");
                    return None;
                }
            }
        };
        let body = AddCheckpoint {
            old_size: state.size,
            proof,
            checkpoint: p.checkpoint.clone(),
        }
        .to_body();
        let resp = http
            .post(format!(
                "{}/add-checkpoint",
                state.peer.url.trim_end_matches('/')
            ))
            .body(body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(witness = %state.peer.url, error = %e, "witness unreachable");
                return None;
            }
        };
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::CONFLICT {
            match parse_size_body(&text) {
                Some(size) => {
                    state.size = size;
                    continue;
                }
                None => {
                    tracing::error!(witness = %state.peer.url, "witness refused a checkpoint of the same size: {text}");
                    return None;
                }
            }
        }
        if !status.is_success() {
            tracing::warn!(witness = %state.peer.url, %status, "witness refused: {text}");
            return None;
        }
        // Keep only lines that are this witness's valid cosignatures.
        let note = Note::parse(&format!("{}{text}", p.checkpoint)).ok()?;
        let line = note
            .signatures
            .iter()
            .find(|s| state.peer.verifier.verify(&note, s).is_some())?
            .to_line();
        state.size = p.size;
        return Some(line);
    }
    None
}
