//! P3 → P4 → P6: the bank's escrow terms arrive, the merchant checks them
//! against its offer, records the escrow, commits the goods key to the log,
//! records the commit and hands the key to the customer.
//!
//! Every step is durable before the next: the escrow before the commit is
//! sent, the commit proof before the key is answered. The log decides the
//! race with an abort; whatever it says is recorded. A repeat of the
//! purchase answers from the record without a second commit.

use acd_client::ClientError;
use acd_client::log::VerifiedEntry;
use acd_core::bank_api::{Delivery, PurchaseRequest};
use acd_core::entry::{KeyCommit, LogEntry, Tid};
use acd_core::goods;
use acd_core::log_api::CommitRequest;

use crate::error::ApiError;
use crate::shop::Shop;
use crate::store::{Escrow, Purchase, Stage};

/// The P4 message for `p`'s escrow, signed by the merchant.
pub fn commit_request(shop: &Shop, p: &Purchase, escrow: &Escrow) -> CommitRequest {
    let kc = KeyCommit {
        log_origin: shop.log_origin.clone(),
        tid: p.tid(),
        merchant: shop.merchant,
        expiration_ms: p.offer.offer.expiration_ms,
        key: escrow.commit_key,
    };
    CommitRequest {
        tid: kc.tid,
        merchant: kc.merchant,
        expiration_ms: kc.expiration_ms,
        key: kc.key,
        signature: kc.sign(&shop.signing),
    }
}

fn log_unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable("log_unavailable", format!("the log cannot be reached: {e}"))
}

impl Shop {
    /// `POST /api/v1/purchase`.
    pub async fn purchase(&self, req: PurchaseRequest) -> Result<Delivery, ApiError> {
        let tid = req.terms.tid;
        let _guard = self.locks.lock(tid).await;
        let mut p = self.known(&tid)?;
        if req.terms.bank != self.bank {
            return Err(ApiError::forbidden(
                "wrong_bank",
                "the terms are not from the bank this merchant uses",
            ));
        }
        req.terms
            .verify(&req.terms_signature)
            .map_err(|e| ApiError::forbidden("bad_terms_signature", e.to_string()))?;
        if req.terms != p.offer.offer.terms() {
            return Err(ApiError::conflict(
                "terms_differ",
                "the escrow terms differ from the offer's (price, expiration, merchant, log or bank)",
            ));
        }
        match p.stage() {
            Stage::Committed | Stage::Deposited | Stage::Unpaid => return self.deliver(&p),
            Stage::Aborted => return Err(aborted(&p)),
            Stage::Offered => {
                if self.now_ms() >= p.offer.offer.expiration_ms {
                    return Err(ApiError::Expired(format!(
                        "the offer for TID {tid} expired; the escrow will be aborted"
                    )));
                }
                let commit_key = if self.behaviour.bogus_key {
                    goods::fresh_key(&mut rand::rng())
                } else {
                    p.key
                };
                p.escrow = Some(Escrow {
                    request: req,
                    commit_key,
                });
                self.store.put(&p).await?;
                tracing::info!(%tid, price = p.offer.offer.price, "escrowed");
            }
            Stage::Escrowed => {}
        }
        self.commit(&mut p).await?;
        self.deliver(&p)
    }

    /// The record of `tid`, or 404.
    pub fn known(&self, tid: &Tid) -> Result<Purchase, ApiError> {
        self.store
            .get(tid)?
            .ok_or_else(|| ApiError::not_found("unknown_tid", format!("no offer with TID {tid}")))
    }

    /// P4/P5 for an escrowed purchase: commit, or learn the log's outcome
    /// if the expiration passed, and record it. Call with the TID's lock.
    pub async fn commit(&self, p: &mut Purchase) -> Result<(), ApiError> {
        let Some(escrow) = &p.escrow else {
            return Err(ApiError::Internal("commit without escrow".into()));
        };
        if p.commit.is_some() {
            return Ok(());
        }
        if self.behaviour.never_commit {
            return Err(ApiError::unavailable(
                "not_committed",
                "the merchant accepted the escrow but does not commit",
            ));
        }
        let tid = p.tid();
        let verified = if self.now_ms() < p.offer.offer.expiration_ms {
            let req = commit_request(self, p, escrow);
            match self.log.commit(&req).await {
                Ok(v) => v,
                Err(ClientError::Refused { status: 409, body }) => match body.existing {
                    Some(existing) => {
                        acd_client::log::verify_entry_proof(&existing, self.log.verifier())
                            .map_err(|e| {
                                log_unavailable(format!("its conflict answer does not verify: {e}"))
                            })?
                    }
                    None => return Err(log_unavailable("a conflict without the existing entry")),
                },
                Err(e) if e.code() == Some("expired") => self.outcome(&tid).await?,
                Err(e) => return Err(log_unavailable(e)),
            }
        } else {
            self.outcome(&tid).await?
        };
        self.record_outcome(p, verified).await
    }

    /// The log's outcome for `tid` after the expiration: 422 if none.
    async fn outcome(&self, tid: &Tid) -> Result<VerifiedEntry, ApiError> {
        self.log
            .transaction(tid)
            .await
            .map_err(log_unavailable)?
            .ok_or_else(|| {
                ApiError::Expired(format!(
                    "the offer for TID {tid} expired before the key was committed"
                ))
            })
    }

    async fn record_outcome(&self, p: &mut Purchase, v: VerifiedEntry) -> Result<(), ApiError> {
        let tid = p.tid();
        let commit_key = p.escrow.as_ref().map(|e| e.commit_key);
        match v.entry {
            _ if v.entry.tid() != tid => Err(ApiError::Internal(format!(
                "the log answered for TID {} when asked for {tid}",
                v.entry.tid()
            ))),
            LogEntry::Commit { merchant, key, .. }
                if merchant == self.merchant && Some(key) == commit_key =>
            {
                p.commit = Some(v.proof);
                self.store.put(p).await?;
                self.metrics.committed.inc();
                tracing::info!(%tid, index = p.commit.as_ref().map(|c| c.index), "committed");
                Ok(())
            }
            LogEntry::Commit { .. } => Err(ApiError::Internal(format!(
                "the log holds another commit for TID {tid}"
            ))),
            LogEntry::Abort { .. } => {
                p.abort = Some(v.proof);
                self.store.put(p).await?;
                self.metrics.aborted.inc();
                tracing::info!(%tid, "aborted in the log");
                Err(aborted(p))
            }
        }
    }
}

fn aborted(p: &Purchase) -> ApiError {
    ApiError::Conflict {
        code: "aborted",
        message: format!("the log recorded an abort for TID {}: no sale", p.tid()),
        existing: p.abort.clone().map(Box::new),
    }
}
