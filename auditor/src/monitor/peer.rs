//! The monitor's side of gossip: a checkpoint that a peer holds, compared
//! with the one this monitor verified, using the log's tiles for the
//! consistency proof (see [`crate::gossip`]).

use std::path::PathBuf;

use acd_core::checkpoint::SignedCheckpoint;
use acd_core::evidence::Evidence;

use super::{FollowedLog, Monitor, MonitorError, Outcome, Tiles, own_checkpoint};
use crate::metrics::inc;

/// What a peer's checkpoint says about the monitor's own.
#[derive(Debug)]
pub enum PeerOutcome {
    /// Consistent with the checkpoint verified here.
    Consistent,
    /// Nothing verified here yet, or the peer's tree is larger: compared
    /// once this monitor has caught up.
    NotYet,
    /// The peer holds a checkpoint that the log did not sign.
    Unsigned(String),
    /// A split view; the evidence file is at this path.
    Violation {
        evidence: Box<Evidence>,
        path: PathBuf,
    },
}

impl Monitor {
    /// Compares a checkpoint a gossip peer holds with the one verified
    /// here.
    pub async fn compare_peer(
        &self,
        log: &FollowedLog,
        text: &str,
    ) -> Result<PeerOutcome, MonitorError> {
        let origin = log.verifier.name().to_owned();
        let theirs = match SignedCheckpoint::open(text, &log.verifier) {
            Ok(c) => c.checkpoint,
            Err(e) => return Ok(PeerOutcome::Unsigned(e.to_string())),
        };
        inc(&self.metrics.checkpoints_verified);
        let Some(own) = self.load(&origin)? else {
            return Ok(PeerOutcome::NotYet);
        };
        let ours = own_checkpoint(&own)?;
        if theirs.size > ours.size {
            return Ok(PeerOutcome::NotYet);
        }
        let (proof, prefix) = if theirs.size == ours.size {
            if theirs.root == ours.root {
                return Ok(PeerOutcome::Consistent);
            }
            (Vec::new(), None)
        } else if theirs.size == 0 {
            return Ok(PeerOutcome::Consistent);
        } else {
            let mut tiles = Tiles::default();
            let (proof, prefix, consistent) = self
                .consistency(
                    log,
                    &mut tiles,
                    (theirs.size, theirs.root),
                    (ours.size, ours.root),
                )
                .await?;
            if consistent {
                return Ok(PeerOutcome::Consistent);
            }
            if prefix.is_none() {
                return Err(MonitorError::Fetch {
                    url: log.url.clone(),
                    reason: "the tiles do not match the checkpoint verified".into(),
                });
            }
            (proof, prefix)
        };
        let evidence =
            Evidence::contradiction(&origin, (&theirs, text), (&ours, &own.note), proof, prefix);
        match self.violation(evidence)? {
            Outcome::Violation { evidence, path } => Ok(PeerOutcome::Violation { evidence, path }),
            Outcome::Verified { .. } => Ok(PeerOutcome::Consistent),
        }
    }
}
