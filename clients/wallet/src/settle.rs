//! Q1/Q2 and abort (paper figure 2): when the merchant did not deliver,
//! the customer asks the log for the TID's outcome. A proven commit
//! delivers (see [`crate::deliver`]); a proven abort prepares the refund;
//! after the expiration with no outcome, the wallet asks the log to abort
//! with the bank's notice.

use acd_client::ClientError;
use acd_core::entry::LogEntry;
use acd_core::log_api::{AbortRequest, EntryProof};
use acd_core::proof::ProofError;
use acd_core::purchase::RefundReason;

use crate::checks::check_abort;
use crate::error::WalletError;
use crate::file::{PendingRefund, PurchaseState};
use crate::purchase::offer_of;
use crate::report::{Source, Step};
use crate::wallet::Wallet;

impl Wallet {
    /// Checks an abort proof for purchase `id` and prepares the refund.
    pub(crate) async fn accept_abort(
        &mut self,
        id: u64,
        proof: &EntryProof,
    ) -> Result<Step, WalletError> {
        let r = self.purchase(id)?.clone();
        let terms = offer_of(&r)?.offer.terms();
        let v = self.verify_log_proof(proof, &terms.log_origin).await?;
        check_abort(&v.entry, &v.checkpoint.checkpoint.origin, &terms)?;
        let blinded = self.blind_amount(r.price)?;
        let rec = self.record_mut(id)?;
        rec.abort = Some(proof.clone());
        rec.refund = Some(PendingRefund {
            reason: RefundReason::Abort,
            blinded,
            finding: None,
        });
        rec.state = PurchaseState::Refunding;
        self.save()?;
        Ok(self.emit(Step::Abort {
            index: proof.index,
            tree_size: proof.tree_size,
        }))
    }

    /// Q1/Q2: asks the log for the outcome of the purchase's TID. A commit
    /// delivers (or disputes); an abort prepares the refund; after the
    /// expiration with no outcome, the wallet asks the log to abort with
    /// the bank's notice. With `wait`, polls until there is an outcome;
    /// without, returns after one look (the purchase stays awaiting).
    pub async fn settle(&mut self, id: u64, wait: bool) -> Result<Vec<Step>, WalletError> {
        let r = self.expect_state(
            id,
            &[PurchaseState::AwaitingOutcome],
            "not awaiting an outcome",
        )?;
        let spend = r.spend.clone().ok_or(WalletError::WrongState {
            id,
            state: r.state,
            wanted: "no escrow terms stored",
        })?;
        let terms = spend.terms.clone();
        let log = self.log_client(&terms.log_origin)?;
        let mut steps = Vec::new();
        let mut told_waiting = false;
        loop {
            let found = match log.transaction(&terms.tid).await? {
                Some(v) => Some(v.proof),
                None => {
                    let now_ms = self.clock.now_ms();
                    if now_ms >= terms.expiration_ms {
                        let abort = AbortRequest {
                            tid: terms.tid,
                            merchant: terms.merchant,
                            expiration_ms: terms.expiration_ms,
                            bank: terms.bank,
                            signature: spend.notice_signature,
                        };
                        steps.push(self.emit(Step::AbortRequested));
                        match log.abort(&abort).await {
                            Ok(v) => Some(v.proof),
                            Err(ClientError::Refused { body, .. }) if body.existing.is_some() => {
                                body.existing.map(|p| *p)
                            }
                            Err(ClientError::Refused { body, .. })
                                if body.error == "not_expired" =>
                            {
                                None
                            }
                            Err(e) => return Err(e.into()),
                        }
                    } else {
                        if !told_waiting {
                            steps.push(self.emit(Step::NoOutcomeYet {
                                expiration_ms: terms.expiration_ms,
                                now_ms,
                            }));
                            told_waiting = true;
                        }
                        None
                    }
                }
            };
            if let Some(proof) = found {
                let outcome = LogEntry::decode(&proof.entry)
                    .map_err(|e| ClientError::Invalid(e.to_string()))?
                    .outcome();
                let result = match outcome {
                    acd_core::entry::Outcome::Commit => self
                        .accept_commit(id, &proof, Source::Log)
                        .await
                        .map(|(_, s)| s),
                    acd_core::entry::Outcome::Abort => {
                        self.accept_abort(id, &proof).await.map(|s| vec![s])
                    }
                };
                match result {
                    Ok(s) => {
                        steps.extend(s);
                        return Ok(steps);
                    }
                    // Witnesses may not have cosigned the newest checkpoint
                    // yet: ask again later.
                    Err(WalletError::Log {
                        error: ProofError::Witnesses { .. },
                        ..
                    }) if wait => {}
                    Err(e) => return Err(e),
                }
            }
            if !wait {
                return Ok(steps);
            }
            let now_ms = self.clock.now_ms();
            let until_expiry = terms.expiration_ms.saturating_sub(now_ms);
            let pause = if until_expiry > 0 {
                self.poll_interval
                    .min(std::time::Duration::from_millis(until_expiry))
            } else {
                self.poll_interval
            };
            tokio::time::sleep(pause).await;
        }
    }
}
