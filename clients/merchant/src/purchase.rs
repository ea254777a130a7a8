//! P3 → P4 → P6 (paper figure 2): the bank's escrow terms arrive, the
//! merchant checks them against its offer (the bank's key and signature,
//! the TID's tag over the terms ([`crate::offer_secret`]), the offer not
//! expired), records the escrow (the first record of the TID), commits the goods key to the log (P4, appended and proven by the
//! log: P5), records the commit and hands the key to the customer (P6);
//! [`Shop::delivery`] answers P6 again for a TID.
//!
//! The paper has the bank send the escrow notice P3 to the merchant; here
//! it reaches the merchant through the customer, who holds the bank's
//! signed terms after P2, so that the bank never needs to reach merchants.
//!
//! Every step is durable before the next: the escrow before the commit is
//! sent, the commit proof before the key is answered. The log decides the
//! race with an abort; whatever it says is recorded. Another commit for the
//! TID in the log (someone else took it first) ends the purchase as failed,
//! 409 `commit_conflict`, and it is not tried again. A repeat of the
//! purchase answers from the record without a second commit.

use acd_client::ClientError;
use acd_client::log::VerifiedEntry;
use acd_core::bank_api::{Delivery, PurchaseRequest};
use acd_core::entry::{KeyCommit, LogEntry, Tid};
use acd_core::error::DomainError;
use acd_core::log_api::CommitRequest;
use acd_core::purchase::EscrowTerms;

use crate::shop::{Shop, unknown_tid};
use crate::store::{Escrow, Purchase, Stage};

/// The P4 message for `p`'s escrow, signed by the merchant.
pub fn commit_request(shop: &Shop, p: &Purchase, escrow: &Escrow) -> CommitRequest {
    let kc = KeyCommit {
        log_origin: shop.log_origin.clone(),
        tid: p.tid(),
        merchant: shop.merchant,
        expiration_ms: p.terms.expiration_ms,
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

fn log_unavailable(e: impl std::fmt::Display) -> DomainError {
    DomainError::unavailable("log_unavailable", format!("the log cannot be reached: {e}"))
}

impl Shop {
    /// P3 → P4 → P6: the escrow terms for an offer in, the committed key
    /// and its commit proof out.
    pub async fn purchase(&self, req: PurchaseRequest) -> Result<Delivery, DomainError> {
        let tid = req.terms.tid;
        if req.terms.bank != self.bank {
            return Err(DomainError::forbidden(
                "wrong_bank",
                "the terms are not from the bank this merchant uses",
            ));
        }
        req.terms
            .verify(&req.terms_signature)
            .map_err(|e| DomainError::forbidden("bad_terms_signature", e.to_string()))?;
        let _guard = self.locks.lock(tid).await;
        let mut p = match self.store.get(&tid).await? {
            Some(p) => p,
            None => self.offered(&req.terms)?,
        };
        if req.terms != p.terms {
            return Err(DomainError::conflict(
                "terms_differ",
                "the escrow terms differ from the offer's (price, expiration, merchant, log or bank)",
            ));
        }
        match p.stage() {
            Stage::Committed | Stage::Deposited | Stage::Unpaid => return self.deliver(&p),
            Stage::Aborted => return Err(aborted(&p)),
            Stage::Failed => return Err(conflict(&p)),
            Stage::Offered => {
                if self.now_ms() >= p.terms.expiration_ms {
                    return Err(DomainError::unprocessable(
                        "expired",
                        format!("the offer for TID {tid} expired; the escrow will be aborted"),
                    ));
                }
                let commit_key = if self.behaviour.bogus_key {
                    self.fresh_key()
                } else {
                    p.key
                };
                p.escrow = Some(Escrow {
                    request: req,
                    commit_key,
                });
                self.store.put(&p).await?;
                tracing::info!(%tid, price = p.terms.price, "escrowed");
            }
            Stage::Escrowed => {}
        }
        self.commit(&mut p).await?;
        self.deliver(&p)
    }

    /// The unsold offer on `terms`, as it would have been stored: known by
    /// its TID's tag, else 404 `unknown_tid`.
    fn offered(&self, terms: &EscrowTerms) -> Result<Purchase, DomainError> {
        if !self.offer_secret.made(terms) {
            return Err(unknown_tid(&terms.tid));
        }
        if terms.merchant != self.merchant || terms.log_origin != self.log_origin {
            return Err(DomainError::conflict(
                "terms_differ",
                "the offer names another merchant key or log than this merchant now has",
            ));
        }
        Ok(Purchase {
            key: self.offer_secret.goods_key(&terms.tid),
            terms: terms.clone(),
            escrow: None,
            commit: None,
            deposit: None,
            abort: None,
            unpaid: None,
            conflict: None,
        })
    }

    /// P6 again, for `GET /api/v1/delivery/{tid}`: the committed key and
    /// its proof, 409 `aborted` if the log recorded an abort, 409
    /// `commit_conflict` if it holds another commit, 404 if the TID is
    /// unknown or not committed yet.
    pub async fn delivery(&self, tid: &Tid) -> Result<Delivery, DomainError> {
        let p = self.known(tid).await?;
        match p.stage() {
            Stage::Aborted => Err(aborted(&p)),
            Stage::Failed => Err(conflict(&p)),
            _ => self.deliver(&p),
        }
    }

    /// P6: the committed key and its commit proof, for a committed purchase.
    pub fn deliver(&self, p: &Purchase) -> Result<Delivery, DomainError> {
        let (Some(escrow), Some(commit)) = (&p.escrow, &p.commit) else {
            return Err(DomainError::not_found(
                "not_committed",
                format!("no key has been committed for TID {}", p.tid()),
            ));
        };
        if self.behaviour.withhold_key {
            return Err(DomainError::unavailable(
                "key_withheld",
                "the key is not available from the merchant; it is in the log",
            ));
        }
        Ok(Delivery {
            key: escrow.commit_key,
            commit: commit.clone(),
        })
    }

    /// P4/P5 for an escrowed purchase: commit, or learn the log's outcome
    /// if the expiration passed, and record it. Call with the TID's lock.
    pub async fn commit(&self, p: &mut Purchase) -> Result<(), DomainError> {
        let Some(escrow) = &p.escrow else {
            return Err(DomainError::internal("commit without escrow"));
        };
        if p.commit.is_some() {
            return Ok(());
        }
        if self.behaviour.never_commit {
            return Err(DomainError::unavailable(
                "not_committed",
                "the merchant accepted the escrow but does not commit",
            ));
        }
        let tid = p.tid();
        let verified = if self.now_ms() < p.terms.expiration_ms {
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
    async fn outcome(&self, tid: &Tid) -> Result<VerifiedEntry, DomainError> {
        self.log
            .transaction(tid)
            .await
            .map_err(log_unavailable)?
            .ok_or_else(|| {
                DomainError::unprocessable(
                    "expired",
                    format!("the offer for TID {tid} expired before the key was committed"),
                )
            })
    }

    async fn record_outcome(&self, p: &mut Purchase, v: VerifiedEntry) -> Result<(), DomainError> {
        let tid = p.tid();
        let commit_key = p.escrow.as_ref().map(|e| e.commit_key);
        match v.entry {
            _ if v.entry.tid() != tid => Err(DomainError::internal(format!(
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
            // Someone else committed this TID first (its TID is public
            // once offered); the log will never take ours.
            LogEntry::Commit { .. } => {
                p.conflict = Some(v.proof);
                self.store.put(p).await?;
                self.metrics.failed.inc();
                tracing::warn!(%tid, "the log holds another commit for this TID; the purchase failed");
                Err(conflict(p))
            }
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

fn aborted(p: &Purchase) -> DomainError {
    let e = DomainError::conflict(
        "aborted",
        format!("the log recorded an abort for TID {}: no sale", p.tid()),
    );
    match &p.abort {
        Some(abort) => e.with_existing(Box::new(abort.clone())),
        None => e,
    }
}

fn conflict(p: &Purchase) -> DomainError {
    let e = DomainError::conflict(
        "commit_conflict",
        format!(
            "the log holds another commit for TID {}: no sale; the escrow is not paid to this merchant",
            p.tid()
        ),
    );
    match &p.conflict {
        Some(other) => e.with_existing(Box::new(other.clone())),
        None => e,
    }
}

/// A TID as it appears in a path: 32 lowercase hex digits, else 400
/// `bad_tid`.
pub fn parse_tid(text: &str) -> Result<Tid, DomainError> {
    text.parse()
        .map_err(|_| DomainError::bad("bad_tid", "a TID is 32 lowercase hex digits"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use acd_core::entry::Outcome;
    use acd_core::error::ErrorKind;
    use acd_core::log_api::EntryProof;

    use super::*;
    use crate::fixture;
    use crate::store::Stage;

    fn fake_commit(tid: Tid) -> EntryProof {
        EntryProof {
            index: 3,
            tid,
            outcome: Outcome::Commit,
            timestamp_ms: 1,
            entry: vec![1, 2, 3],
            leaf_hash: [0; 32],
            tree_size: 4,
            inclusion: vec![],
            checkpoint: String::new(),
        }
    }

    // P3 → P4 → P6 through the engine: wrong terms (the TID's tag does not
    // match them) are refused before anything is recorded; right terms are
    // recorded as escrowed, with the k derived from the TID, before the
    // commit is tried (the log is unreachable: 503); once a commit is on
    // record, a repeat and the delivery lookup answer k from it.
    #[tokio::test]
    async fn purchase_step_checks_records_and_delivers() {
        let dir = tempfile::tempdir().unwrap();
        let shop = fixture::shop(dir.path(), "http://127.0.0.1:1", Default::default(), 1).await;
        let o = fixture::offer(&shop).await;
        let tid = o.offer.offer.tid;

        let mut other = fixture::terms(&o);
        other.terms.price += 1;
        other.terms_signature = other.terms.sign(&fixture::bank());
        let e = shop.purchase(other).await.unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::NotFound, "unknown_tid"));
        let mut forged = fixture::terms(&o);
        forged.terms_signature = forged
            .terms
            .sign(&ed25519_dalek::SigningKey::from_bytes(&[9; 32]));
        let e = shop.purchase(forged).await.unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::Forbidden, "bad_terms_signature")
        );
        assert!(shop.store.get(&tid).await.unwrap().is_none());

        let e = shop.purchase(fixture::terms(&o)).await.unwrap_err();
        assert_eq!(
            (e.kind, e.code),
            (ErrorKind::Unavailable, "log_unavailable")
        );
        let mut p = shop.known(&tid).await.unwrap();
        assert_eq!(p.stage(), Stage::Escrowed);
        assert_eq!(p.key, shop.offer_secret.goods_key(&tid));
        // Once recorded, terms other than the record's are told apart.
        let mut other = fixture::terms(&o);
        other.terms.price += 1;
        other.terms_signature = other.terms.sign(&fixture::bank());
        let e = shop.purchase(other).await.unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::Conflict, "terms_differ"));
        let e = shop.delivery(&tid).await.unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::NotFound, "not_committed"));

        p.commit = Some(fake_commit(tid));
        shop.store.put(&p).await.unwrap();
        let d = shop.purchase(fixture::terms(&o)).await.unwrap();
        assert_eq!((d.key, d.commit.index), (p.key, 3));
        assert_eq!(shop.delivery(&tid).await.unwrap().key, p.key);

        let e = shop.delivery(&Tid([0; 16])).await.unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::NotFound, "unknown_tid"));
        assert_eq!(parse_tid(&tid.to_string()).unwrap(), tid);
        assert_eq!(parse_tid("xyz").unwrap_err().code, "bad_tid");
    }
}
