//! Getting paid, and finishing what a crash or an outage interrupted.
//!
//! After a commit the merchant shows the bank the commit entry with its
//! proof (deposit). A background task (and the first pass at start-up,
//! which is recovery) goes through every purchase with work left: an
//! escrowed purchase not yet committed is committed (or, past its
//! expiration, the log's outcome is recorded); a committed one not yet paid
//! is deposited, unless the bank has said it never will be (the escrow was
//! disputed or refunded first). Unsold offers are pruned an hour after they
//! expire.

use std::time::Duration;

use acd_client::ClientError;
use acd_core::bank_api::DepositRequest;
use acd_core::entry::{LogEntry, Tid};
use acd_core::log_api::EntryProof;

use crate::error::ApiError;
use crate::shop::Shop;
use crate::store::{Stage, StoreError};

/// How long after its expiration an unsold offer is kept.
pub const PRUNE_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum DepositError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the bank did not accept the deposit: {0}")]
    Bank(#[from] acd_client::ClientError),
}

impl Shop {
    /// Deposits `tid` if it is committed and not yet paid. `fresh_proof`
    /// asks the log for a proof under its latest (cosigned) checkpoint
    /// first, for banks that want a newer one than the commit's.
    pub async fn deposit(&self, tid: Tid, fresh_proof: bool) -> Result<(), DepositError> {
        let _deposit = self.deposit_locks.lock(tid).await;
        let Some(p) = self.store.get(&tid)? else {
            return Ok(());
        };
        let Some(commit) = p.commit.clone() else {
            return Ok(());
        };
        if p.stage() != Stage::Committed {
            return Ok(());
        }
        let proof = if fresh_proof {
            self.fresh_proof(&tid, &commit).await.unwrap_or(commit)
        } else {
            commit
        };
        let answer = self.bank_client.deposit(&DepositRequest { proof }).await;
        let (paid, unpaid) = match answer {
            Ok(paid) => (Some(paid), None),
            // The escrow was disputed or refunded first: the bank will never
            // pay it, so retrying forever would only load the bank.
            Err(ClientError::Refused { status: 409, body })
                if body.error == "wrong_escrow_state" =>
            {
                (None, Some(body.message))
            }
            Err(e) => return Err(e.into()),
        };
        let _guard = self.locks.lock(tid).await;
        let Some(mut p) = self.store.get(&tid)? else {
            return Ok(());
        };
        match (paid, unpaid) {
            (Some(paid), _) => {
                p.deposit = Some(paid);
                self.store.put(&p).await?;
                self.metrics.deposited.inc();
                tracing::info!(%tid, amount = p.offer.offer.price, "deposited");
            }
            (None, reason) => {
                tracing::warn!(%tid, reason = reason.as_deref().unwrap_or_default(), "the bank will not pay this purchase; no more deposits");
                p.unpaid = reason;
                self.store.put(&p).await?;
                self.metrics.unpaid.inc();
            }
        }
        Ok(())
    }

    async fn fresh_proof(&self, tid: &Tid, commit: &EntryProof) -> Option<EntryProof> {
        let v = self.log.transaction(tid).await.ok()??;
        match v.entry {
            LogEntry::Commit { .. } if v.proof.entry == commit.entry => Some(v.proof),
            _ => None,
        }
    }

    /// One pass over every purchase with work left (see the module doc).
    pub async fn retry_pending(&self) -> Result<(), StoreError> {
        for tid in self.store.pending()? {
            let stage = {
                let _guard = self.locks.lock(tid).await;
                let Some(mut p) = self.store.get(&tid)? else {
                    continue;
                };
                if p.stage() == Stage::Escrowed && !self.behaviour.never_commit {
                    match self.commit(&mut p).await {
                        Ok(()) => {}
                        // Waiting for the bank's abort to reach the log.
                        Err(ApiError::Expired(_)) => {
                            tracing::debug!(%tid, "expired without an outcome yet")
                        }
                        Err(e) => tracing::warn!(%tid, error = ?e, "commit not done yet"),
                    }
                }
                p.stage()
            };
            if stage == Stage::Committed
                && let Err(e) = self.deposit(tid, true).await
            {
                tracing::warn!(%tid, error = %e, "deposit not done yet");
            }
        }
        let cutoff = self
            .now_ms()
            .saturating_sub(u64::try_from(PRUNE_AFTER.as_millis()).unwrap_or(u64::MAX));
        let pruned = self.store.prune_offers(cutoff).await?;
        if pruned > 0 {
            tracing::info!(pruned, "pruned expired unsold offers");
        }
        Ok(())
    }
}
