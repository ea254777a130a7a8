//! Gossip: auditors and witnesses show each other the latest checkpoint
//! they hold of every log, so that a log showing different histories to
//! different parties (a split view) is caught with its own signatures.
//!
//! The format, served by every party at `GET /gossip/v1/checkpoints`:
//!
//! ```json
//! {"checkpoints": [{"origin": "log.example/1", "checkpoint": "log.example/1\n6\n...\n\n— log.example/1 ...\n"}]}
//! ```
//!
//! One object per log: the latest checkpoint the monitor verified or the
//! witness cosigned, as the signed note text the log served (`application/json`,
//! readers ignore unknown fields). A party pulls each configured peer every
//! `gossip_interval_ms`, verifies each checkpoint of a log it follows with
//! that log's key (a checkpoint that does not verify is the peer's problem
//! and is only logged), and compares it with its own:
//!
//! - same size, other root: a split view;
//! - other size: a consistency proof between the two must verify. The
//!   monitor computes it from the log's tiles (when its own tree is the
//!   larger; a larger peer checkpoint waits until the monitor has caught
//!   up); the witness asks the log's `/api/v1/consistency` (when it knows
//!   the log's URL).
//!
//! A split view is written as an evidence file ([`crate::evidence_file`]),
//! logged as an error, counted in `split_views_total`; the one-shot monitor
//! exits 1, and the witness freezes the origin ([`crate::frozen`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acd_core::log_api::ConsistencyProof;
use serde::{Deserialize, Serialize};

use crate::metrics::inc;
use crate::witness::{PeerCheck, Witness};

/// The path every party serves its checkpoints at.
pub const PATH: &str = "/gossip/v1/checkpoints";

/// Default milliseconds between two pulls of every peer.
pub const DEFAULT_INTERVAL_MS: u64 = crate::config::DEFAULT_GOSSIP_INTERVAL_MS;

/// How long a peer or a log may take to answer one gossip request.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of `GET /gossip/v1/checkpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipCheckpoints {
    pub checkpoints: Vec<HeldCheckpoint>,
}

/// The latest checkpoint a party holds of one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldCheckpoint {
    /// The log's origin.
    pub origin: String,
    /// The signed note, as the log served it.
    pub checkpoint: String,
}

impl GossipCheckpoints {
    pub fn new(held: Vec<(String, String)>) -> Self {
        GossipCheckpoints {
            checkpoints: held
                .into_iter()
                .map(|(origin, checkpoint)| HeldCheckpoint { origin, checkpoint })
                .collect(),
        }
    }
}

/// Fetches a peer's held checkpoints.
pub async fn fetch(http: &reqwest::Client, peer: &str) -> Result<Vec<HeldCheckpoint>, String> {
    let url = format!("{}{PATH}", peer.trim_end_matches('/'));
    let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("{url}: status {}", resp.status()));
    }
    let body: GossipCheckpoints = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    Ok(body.checkpoints)
}

/// One pull of every peer by the witness; returns the evidence files of
/// the split views found.
pub async fn witness_round(
    witness: &Witness,
    http: &reqwest::Client,
    peers: &[String],
) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for peer in peers {
        let held = match fetch(http, peer).await {
            Ok(h) => {
                inc(&witness.metrics().gossip_pulls);
                h
            }
            Err(e) => {
                inc(&witness.metrics().gossip_errors);
                tracing::warn!(peer, error = %e, "gossip pull failed");
                continue;
            }
        };
        for h in held {
            match compare(witness, http, &h).await {
                Ok(Some(path)) => found.push(path),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(peer, origin = %h.origin, error = %e, "cannot compare a peer's checkpoint yet")
                }
            }
        }
    }
    found
}

async fn compare(
    witness: &Witness,
    http: &reqwest::Client,
    held: &HeldCheckpoint,
) -> Result<Option<PathBuf>, String> {
    let evidence = match witness
        .check_peer(&held.checkpoint)
        .map_err(|e| e.to_string())?
    {
        PeerCheck::Unknown | PeerCheck::Agrees | PeerCheck::Settled => return Ok(None),
        PeerCheck::Unsigned(e) => {
            return Err(format!(
                "the peer holds a checkpoint that does not verify: {e}"
            ));
        }
        PeerCheck::SplitView(ev) => *ev,
        PeerCheck::NeedsProof {
            from,
            to,
            ours,
            theirs,
        } => {
            let origin = &theirs.checkpoint.origin;
            let Some(log) = witness.log_url(origin) else {
                tracing::debug!(
                    origin,
                    "no log URL to check a peer's checkpoint of another size"
                );
                return Ok(None);
            };
            let url = format!("{log}/api/v1/consistency?from={from}&to={to}");
            let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("{url}: status {}", resp.status()));
            }
            let proof: ConsistencyProof = resp.json().await.map_err(|e| e.to_string())?;
            match witness
                .conclude(&ours, &theirs, proof.proof)
                .map_err(|e| e.to_string())?
            {
                Some(ev) => ev,
                None => return Ok(None),
            }
        }
    };
    let path = witness.freeze(&evidence).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Checks a checkpoint that `add-checkpoint` refused for a consistency
/// proof that did not verify, against the proof the log itself serves
/// (when the witness knows the log's URL): if the log cannot prove it
/// either, that is a split view, and the origin is frozen, as gossip would.
/// A wrong proof from the sender alone proves nothing about the log.
pub async fn confirm(witness: Arc<Witness>, origin: String, checkpoint: String) {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let http = HTTP.get_or_init(|| acd_serve::http_client_with(PEER_TIMEOUT));
    let held = HeldCheckpoint { origin, checkpoint };
    let outcome = compare(&witness, http, &held).await;
    inc(&witness.metrics().refusals_checked);
    match outcome {
        Ok(Some(path)) => {
            tracing::error!(origin = %held.origin, evidence = %path.display(), "the log cannot prove a checkpoint it signed consistent with the one cosigned")
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(origin = %held.origin, error = %e, "cannot check a refused checkpoint with the log")
        }
    }
}

/// Pulls the peers every `interval`, forever.
pub async fn run_witness(witness: Arc<Witness>, peers: Vec<String>, interval: Duration) {
    let http = acd_serve::http_client_with(PEER_TIMEOUT);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        witness_round(&witness, &http, &peers).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The gossip body round-trips through JSON as documented.
    #[test]
    fn format() {
        let g = GossipCheckpoints::new(vec![("a.test/log".into(), "a.test/log\n1\n...".into())]);
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["checkpoints"][0]["origin"], "a.test/log");
        assert_eq!(serde_json::from_value::<GossipCheckpoints>(v).unwrap(), g);
    }
}
