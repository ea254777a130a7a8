//! What a gossip peer's checkpoint says about the one cosigned here
//! ([`crate::gossip`]): the same, a split view (same size, another root),
//! or another size whose consistency must be proved.

use acd_core::checkpoint::SignedCheckpoint;
use acd_core::evidence::Evidence;
use acd_core::merkle::{self, Hash};

use super::{Latest, Witness, WitnessError, parse_body};
use crate::metrics::inc;

/// What a peer's checkpoint says about the one cosigned here.
#[derive(Debug)]
pub enum PeerCheck {
    /// Not a log this witness follows, or nothing cosigned for it yet.
    Unknown,
    /// Not signed by the log: the peer's problem, not the log's.
    Unsigned(String),
    /// Same size and root as the one cosigned.
    Agrees,
    /// Already frozen, or part of evidence an operator cleared.
    Settled,
    /// Sizes differ: consistency from `from` to `to` must be checked.
    NeedsProof {
        from: u64,
        to: u64,
        ours: Latest,
        theirs: SignedCheckpoint,
    },
    /// Same size, another root.
    SplitView(Box<Evidence>),
}

impl Witness {
    /// Compares a checkpoint a peer holds with the one cosigned.
    pub fn check_peer(&self, text: &str) -> Result<PeerCheck, WitnessError> {
        let origin = text.lines().next().unwrap_or_default();
        let Some(log) = self.logs.get(origin) else {
            return Ok(PeerCheck::Unknown);
        };
        let theirs = match SignedCheckpoint::open(text, log) {
            Ok(c) => c,
            Err(e) => return Ok(PeerCheck::Unsigned(e.to_string())),
        };
        inc(&self.metrics.checkpoints_verified);
        if self.frozen.is_frozen(origin)? || self.frozen.acknowledged(origin, &theirs.checkpoint)? {
            return Ok(PeerCheck::Settled);
        }
        let Some(ours) = self.latest(origin)? else {
            return Ok(PeerCheck::Unknown);
        };
        let (size, root) = (theirs.checkpoint.size, theirs.checkpoint.root);
        if size == ours.size {
            if root == ours.root {
                return Ok(PeerCheck::Agrees);
            }
            let mine = parse_body(&ours.note)?;
            return Ok(PeerCheck::SplitView(Box::new(Evidence::contradiction(
                origin,
                (&mine, &ours.note),
                (&theirs.checkpoint, text),
                Vec::new(),
                None,
            ))));
        }
        Ok(PeerCheck::NeedsProof {
            from: size.min(ours.size),
            to: size.max(ours.size),
            ours,
            theirs,
        })
    }

    /// Verifies `proof` (from the smaller to the larger size) between the
    /// cosigned checkpoint and a peer's; evidence if it fails.
    pub fn conclude(
        &self,
        ours: &Latest,
        theirs: &SignedCheckpoint,
        proof: Vec<Hash>,
    ) -> Result<Option<Evidence>, WitnessError> {
        let mine = parse_body(&ours.note)?;
        let (small, large) = if mine.size < theirs.checkpoint.size {
            (&mine, &theirs.checkpoint)
        } else {
            (&theirs.checkpoint, &mine)
        };
        if small.size == 0
            || merkle::verify_consistency(small.size, large.size, &proof, &small.root, &large.root)
                .is_ok()
        {
            return Ok(None);
        }
        Ok(Some(Evidence::contradiction(
            &mine.origin,
            (&mine, &ours.note),
            (&theirs.checkpoint, &theirs.to_text()),
            proof,
            None,
        )))
    }
}
