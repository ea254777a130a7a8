//! The log's engine: every protocol step the log takes part in, one file
//! per step, with no HTTP in it. Each step takes typed input, checks it and
//! returns a typed answer or an [`acd_core::error::DomainError`]; the
//! decisions about the tree itself (one outcome per TID, expiration, group
//! commit) are the sequencer's ([`crate::sequencer`]).
//!
//! - [`commit`]: P4/P5, the merchant's key commit.
//! - [`abort`]: the bank's abort of an expired transaction.
//! - [`query`]: Q1/Q2 (the outcome of a TID), inclusion and consistency
//!   proofs, entries by range.
//! - [`read`]: the C2SP tlog-tiles read path (checkpoint, tiles, bundles).

pub mod abort;
pub mod commit;
pub mod query;
pub mod read;

use std::collections::HashSet;
use std::sync::Arc;

use acd_core::note::NoteVerifier;
use tokio::sync::watch;

use crate::sequencer::SequencerHandle;
use crate::storage::Storage;
use crate::witnessing::Cosigned;

/// What every step shares: the sequencer (the one writer), the published
/// tree in storage, and the log's identity and policy. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub sequencer: SequencerHandle,
    pub storage: Arc<dyn Storage>,
    pub origin: Arc<str>,
    pub verifier: NoteVerifier,
    /// Banks whose escrow notices may abort a transaction.
    pub trusted_banks: Arc<HashSet<[u8; 32]>>,
    pub max_entries_per_request: u64,
    /// With witnesses: the checkpoint `/checkpoint` serves, cosigned.
    pub cosigned: Option<watch::Receiver<Arc<Cosigned>>>,
    /// Cosignature keys of the witnesses asked to cosign (all must).
    pub witnesses: Arc<[String]>,
}

#[cfg(test)]
mod tests;
