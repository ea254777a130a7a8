//! Deposit (PROTOCOL.md, outcomes): getting paid, and finishing what a
//! crash or an outage interrupted.
//!
//! After a commit the merchant shows the bank the commit entry with its
//! proof (deposit); a refusal other than for good is retried. The bank
//! refusing for good (409 `wrong_escrow_state`: the escrow was disputed or
//! refunded first) is recorded, and no deposit of that purchase is tried
//! again. A background task (and the first pass at start-up,
//! which is recovery) goes through every purchase with work left: an
//! escrowed purchase not yet committed is committed (or, past its
//! expiration, the log's outcome is recorded); a committed one not yet paid
//! is deposited, unless the bank has said it never will be (the escrow was
//! disputed or refunded first). A purchase that failed on another commit
//! for its TID has no work left. Unsold offers that older versions stored
//! are pruned an hour after they expire.

use std::sync::Arc;
use std::time::Duration;

use acd_client::ClientError;
use acd_core::bank_api::{DepositRequest, DepositResponse};
use acd_core::entry::{LogEntry, Tid};
use acd_core::error::DomainError;
use acd_core::log_api::EntryProof;

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

impl From<DepositError> for DomainError {
    fn from(e: DepositError) -> Self {
        match e {
            DepositError::Store(e) => e.into(),
            DepositError::Bank(e) => DomainError::unavailable(
                "bank_unavailable",
                format!("the bank did not accept the deposit: {e}"),
            ),
        }
    }
}

/// What a deposit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deposited {
    /// Nothing to deposit: unknown TID, not committed, already paid or
    /// refused for good.
    NotDue,
    /// The bank paid.
    Paid(DepositResponse),
    /// The bank will never pay (its reason); recorded, not tried again.
    RefusedForGood(String),
}

impl Shop {
    /// Deposits `tid` if it is committed and not yet paid. `fresh_proof`
    /// asks the log for a proof under its latest (cosigned) checkpoint
    /// first, for banks that want a newer one than the commit's.
    pub async fn deposit(&self, tid: Tid, fresh_proof: bool) -> Result<Deposited, DepositError> {
        let _deposit = self.deposit_locks.lock(tid).await;
        let Some(p) = self.store.get(&tid).await? else {
            return Ok(Deposited::NotDue);
        };
        let Some(commit) = p.commit.clone() else {
            return Ok(Deposited::NotDue);
        };
        if p.stage() != Stage::Committed {
            return Ok(Deposited::NotDue);
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
        let Some(mut p) = self.store.get(&tid).await? else {
            return Ok(Deposited::NotDue);
        };
        match (paid, unpaid) {
            (Some(paid), _) => {
                p.deposit = Some(paid.clone());
                self.store.put(&p).await?;
                self.metrics.deposited.inc();
                tracing::info!(%tid, amount = p.terms.price, "deposited");
                Ok(Deposited::Paid(paid))
            }
            (None, reason) => {
                tracing::warn!(%tid, reason = reason.as_deref().unwrap_or_default(), "the bank will not pay this purchase; no more deposits");
                p.unpaid = reason.clone();
                self.store.put(&p).await?;
                self.metrics.unpaid.inc();
                Ok(Deposited::RefusedForGood(reason.unwrap_or_default()))
            }
        }
    }

    /// After a purchase: if `tid` is committed, deposits it on a task of
    /// its own, so that the customer's answer does not wait for the bank.
    /// A failure is left to [`Shop::retry_pending`].
    pub fn deposit_soon(self: &Arc<Self>, tid: Tid) {
        let shop = self.clone();
        self.deposits.spawn(async move {
            let committed = shop
                .store
                .get(&tid)
                .await
                .ok()
                .flatten()
                .is_some_and(|p| p.stage() == Stage::Committed);
            if !committed {
                return;
            }
            if let Err(e) = shop.deposit(tid, false).await {
                tracing::warn!(%tid, error = %e, "deposit failed; it will be retried");
            }
        });
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
        for tid in self.store.pending().await? {
            let stage = {
                let _guard = self.locks.lock(tid).await;
                let Some(mut p) = self.store.get(&tid).await? else {
                    continue;
                };
                if p.stage() == Stage::Escrowed && !self.behaviour.never_commit {
                    match self.commit(&mut p).await {
                        Ok(()) => {}
                        // Waiting for the bank's abort to reach the log.
                        Err(e) if e.code == "expired" => {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use acd_core::entry::Outcome;
    use acd_core::error::ErrorKind;
    use acd_core::log_api::ErrorBody;
    use axum::Json;
    use axum::http::StatusCode;

    use super::*;
    use crate::fixture;
    use crate::store::Escrow;

    /// A stand-in bank whose deposit answer is `status` (200: paid).
    async fn bank(status: StatusCode) -> String {
        slow_bank(status, Duration::ZERO).await
    }

    /// [`bank`], answering after `delay`.
    async fn slow_bank(status: StatusCode, delay: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/api/v1/deposit",
            axum::routing::post(move |Json(req): Json<DepositRequest>| async move {
                tokio::time::sleep(delay).await;
                if status == StatusCode::OK {
                    let body = DepositResponse {
                        tid: req.proof.tid,
                        merchant: [0; 32],
                        amount: 250,
                    };
                    return (status, serde_json::to_string(&body).unwrap());
                }
                let body = ErrorBody {
                    error: "wrong_escrow_state".into(),
                    message: "the escrow is Disputed".into(),
                    existing: None,
                };
                (status, serde_json::to_string(&body).unwrap())
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    // A shutdown of the server waits for a deposit that a purchase started
    // and the bank is still answering: it is on record as paid once `run`
    // returns.
    #[tokio::test]
    async fn run_waits_for_deposits_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let url = slow_bank(StatusCode::OK, Duration::from_millis(600)).await;
        let mut config = fixture::config(dir.path(), &url, Default::default());
        config.retry_interval = Duration::from_secs(3600);
        let m = crate::Merchant::open(config).await.unwrap();
        let shop = m.shop().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(m.run(listener, async {
            let _ = stopped.await;
        }));
        // The start-up pass found nothing to do; the background task sleeps.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tid = committed(&shop).await;
        shop.deposit_soon(tid);
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(()).unwrap();
        served.await.unwrap().unwrap();
        assert_eq!(shop.known(&tid).await.unwrap().stage(), Stage::Deposited);
    }

    /// A purchase of the song on record as committed (a stand-in proof).
    async fn committed(shop: &Shop) -> Tid {
        let o = fixture::offer(shop).await;
        let tid = o.offer.offer.tid;
        let mut p = fixture::record(shop, &o);
        p.escrow = Some(Escrow {
            request: fixture::terms(&o),
            commit_key: p.key,
        });
        p.commit = Some(EntryProof {
            index: 0,
            tid,
            outcome: Outcome::Commit,
            timestamp_ms: 1,
            entry: vec![],
            leaf_hash: [0; 32],
            tree_size: 1,
            inclusion: vec![],
            checkpoint: String::new(),
        });
        shop.store.put(&p).await.unwrap();
        tid
    }

    // The deposit step through the engine: nothing is due before a commit;
    // a bank that cannot be reached is an error to retry (503 as a domain
    // error); a payment is recorded once; a refusal for good is recorded
    // and never tried again.
    #[tokio::test]
    async fn deposit_step_pays_retries_and_records_a_refusal_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let shop = fixture::shop(dir.path(), "http://127.0.0.1:1", Default::default(), 2).await;
        let offered = fixture::offer(&shop).await.offer.offer.tid;
        assert_eq!(
            shop.deposit(offered, false).await.unwrap(),
            Deposited::NotDue
        );
        let tid = committed(&shop).await;
        let e = DomainError::from(shop.deposit(tid, false).await.unwrap_err());
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(shop.known(&tid).await.unwrap().stage(), Stage::Committed);

        let dir = tempfile::tempdir().unwrap();
        let url = bank(StatusCode::OK).await;
        let shop = fixture::shop(dir.path(), &url, Default::default(), 3).await;
        let tid = committed(&shop).await;
        assert!(
            matches!(shop.deposit(tid, false).await.unwrap(), Deposited::Paid(p) if p.amount == 250)
        );
        assert_eq!(shop.known(&tid).await.unwrap().stage(), Stage::Deposited);
        assert_eq!(shop.deposit(tid, false).await.unwrap(), Deposited::NotDue);

        let dir = tempfile::tempdir().unwrap();
        let url = bank(StatusCode::CONFLICT).await;
        let shop = fixture::shop(dir.path(), &url, Default::default(), 4).await;
        let tid = committed(&shop).await;
        assert_eq!(
            shop.deposit(tid, false).await.unwrap(),
            Deposited::RefusedForGood("the escrow is Disputed".into())
        );
        assert_eq!(shop.known(&tid).await.unwrap().stage(), Stage::Unpaid);
        assert!(shop.store.pending().await.unwrap().is_empty());
        assert_eq!(shop.deposit(tid, false).await.unwrap(), Deposited::NotDue);
    }
}
