//! P4/P5: the merchant's key commit. The log checks the merchant's
//! signature over (log origin, TID, merchant, expiration, key); the
//! sequencer then decides the step's rule — the log's clock is before the
//! expiration and the TID has no outcome yet — and appends the commit
//! entry, answering with its inclusion proof once it is durable.

use acd_core::entry::KeyCommit;
use acd_core::error::DomainError;
use acd_core::log_api::{CommitRequest, CommitResult, EntryProof};

use super::Engine;
use crate::sequencer::Append;

impl Engine {
    /// Appends the key commit `req` (or answers with the same entry if it
    /// is already there).
    pub async fn commit(&self, req: CommitRequest) -> Result<EntryProof, DomainError> {
        signature_of(&self.origin, &req)?;
        Ok(self.sequencer.append(Append::Commit(req)).await?)
    }

    /// Several key commits at once, each decided as [`Engine::commit`]
    /// decides one, answered in order. The signatures are checked on the
    /// blocking pool (a thousand take tens of milliseconds, too long for
    /// a runtime worker), then every valid commit is queued before any is
    /// waited for, so that they meet in one group commit.
    pub async fn commit_batch(&self, reqs: Vec<CommitRequest>) -> Vec<CommitResult> {
        let origin = self.origin.to_string();
        let checked = tokio::task::spawn_blocking(move || {
            reqs.into_iter()
                .map(|req| signature_of(&origin, &req).map(|()| req))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|e| vec![Err(DomainError::internal(format!("batch check: {e}")))]);
        let queued: Vec<_> = checked
            .into_iter()
            .map(|r| r.and_then(|req| Ok(self.sequencer.submit(Append::Commit(req))?)))
            .collect();
        let mut results = Vec::with_capacity(queued.len());
        for q in queued {
            let outcome = match q {
                Ok(q) => q.wait().await.map_err(DomainError::from),
                Err(e) => Err(e),
            };
            results.push(match outcome {
                Ok(proof) => CommitResult {
                    proof: Some(proof),
                    error: None,
                },
                Err(e) => {
                    if e.kind == acd_core::error::ErrorKind::Internal {
                        tracing::error!(detail = %e.message, "internal error in a batch commit");
                    }
                    CommitResult {
                        proof: None,
                        error: Some(e.body()),
                    }
                }
            });
        }
        results
    }
}

/// The merchant's signature over the commit, for the log `origin`.
fn signature_of(origin: &str, req: &CommitRequest) -> Result<(), DomainError> {
    KeyCommit {
        log_origin: origin.to_owned(),
        tid: req.tid,
        merchant: req.merchant,
        expiration_ms: req.expiration_ms,
        key: req.key,
    }
    .verify(&req.signature)
    .map_err(|e| DomainError::bad("bad_signature", e.to_string()))
}
