//! A purchase as a state machine (paper figure 2, and the ways out of it):
//! each public step moves one [`PurchaseRecord`] from one
//! [`PurchaseState`] to the next and saves it; [`Wallet::drive`] runs the
//! steps until the purchase is final, [`Wallet::buy`] starts one and drives
//! it, [`Wallet::resume`] drives all that a crash or an outage left.
//!
//! Which failures cancel and which wait: until the spend is sent nothing is
//! at stake, so any failure cancels (the tokens go back into the wallet,
//! bound to Q). Once the spend may have reached the bank, only an explicit
//! refusal cancels; anything else leaves the state for an identical retry.
//! Once escrowed, the log decides: a proven commit gives the key (or a
//! dispute), an abort gives a refund.

use std::path::{Path, PathBuf};

use acd_client::ClientError;
use acd_client::merchant::MerchantClient;
use acd_core::bank_api::{
    DisputeRequest, OfferRequest, PurchaseRequest, RefundRequest, RegisterRequest, SpendRequest,
};
use acd_core::entry::{LogEntry, Tid};
use acd_core::log_api::{AbortRequest, EntryProof};
use acd_core::proof::ProofError;
use acd_core::purchase::{Refund, RefundReason, Spend};
use acd_core::token::BlindedToken;
use ed25519_dalek::SigningKey;

use crate::checks::{
    CheckError, OfferExpectation, check_abort, check_commit, check_offer, check_receipt,
    check_spend_response, open_goods,
};
use crate::coins::select;
use crate::error::WalletError;
use crate::file::{
    PendingRefund, PurchaseRecord, PurchaseState, PurchaseToken, StoredToken, write_atomic,
};
use crate::report::{PurchaseOutcome, PurchaseReport, ResumeReport, Source, Step};
use crate::wallet::Wallet;

impl Wallet {
    /// All purchases, oldest first.
    pub fn purchases(&self) -> &[PurchaseRecord] {
        &self.data.purchases
    }

    pub fn purchase(&self, id: u64) -> Result<&PurchaseRecord, WalletError> {
        self.data
            .purchase(id)
            .ok_or_else(|| WalletError::UnknownPurchase(id.to_string()))
    }

    fn record_mut(&mut self, id: u64) -> Result<&mut PurchaseRecord, WalletError> {
        self.data
            .purchase_mut(id)
            .ok_or_else(|| WalletError::UnknownPurchase(id.to_string()))
    }

    fn expect_state(
        &self,
        id: u64,
        states: &[PurchaseState],
        wanted: &'static str,
    ) -> Result<PurchaseRecord, WalletError> {
        let r = self.purchase(id)?;
        if !states.contains(&r.state) {
            return Err(WalletError::WrongState {
                id,
                state: r.state,
                wanted,
            });
        }
        Ok(r.clone())
    }

    /// Where ciphertexts are kept: a directory beside the wallet file.
    pub fn goods_dir(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".goods");
        self.path.with_file_name(name)
    }

    /// Buys `item` from the merchant at `merchant_url` and writes the goods
    /// to `out`: every step of figure 2 and, if the merchant fails, the
    /// log's outcome, waiting for the expiration if need be.
    pub async fn buy(
        &mut self,
        merchant_url: &str,
        item: &str,
        out: &Path,
    ) -> Result<PurchaseReport, WalletError> {
        let (id, steps) = self.start_purchase(merchant_url, item, out).await?;
        let mut report = self.drive(id, true).await?;
        report.steps.splice(0..0, steps);
        Ok(report)
    }

    /// Asks the merchant's catalog for the price, chooses tokens (and the
    /// key q, fresh unless tokens bound to an earlier key must be spent),
    /// and saves the new purchase before anything is sent.
    pub async fn start_purchase(
        &mut self,
        merchant_url: &str,
        item: &str,
        out: &Path,
    ) -> Result<(u64, Vec<Step>), WalletError> {
        let merchant = MerchantClient::with_http(self.http.clone(), merchant_url);
        let catalog = merchant.catalog().await?;
        if catalog.bank != self.data.bank.bank {
            return Err(CheckError::OfferField { field: "bank" }.into());
        }
        let entry = catalog
            .items
            .iter()
            .find(|i| i.id == item)
            .ok_or_else(|| WalletError::UnknownItem(item.to_owned()))?;
        let mut steps = vec![self.emit(Step::Catalog {
            item: entry.id.clone(),
            description: entry.description.clone(),
            price: entry.price,
        })];

        let bound = self.data.tokens.iter().find_map(|t| t.bound_to);
        let required: Vec<usize> = match bound {
            Some(q) => (0..self.data.tokens.len())
                .filter(|&i| self.data.tokens[i].bound_to == Some(q))
                .collect(),
            None => vec![],
        };
        let values: Vec<u64> = self.data.tokens.iter().map(|t| t.value).collect();
        let selection = select(&values, &required, entry.price, &self.denomination_values())?;
        let q = bound.unwrap_or_else(|| {
            let mut seed = [0u8; 32];
            rand::fill(&mut seed);
            seed
        });
        let mut tokens = Vec::new();
        for &i in selection.indices.iter().rev() {
            let t = self.data.tokens.remove(i);
            tokens.push(PurchaseToken {
                token: t.token,
                value: t.value,
                receipt: None,
            });
        }
        tokens.reverse();
        let id = self.data.next_purchase;
        self.data.next_purchase += 1;
        let out_path = std::path::absolute(out).map_err(|e| WalletError::io(out, e))?;
        self.data.purchases.push(PurchaseRecord {
            id,
            merchant_url: merchant.base().to_owned(),
            item: item.to_owned(),
            out_path,
            merchant: catalog.merchant,
            price: entry.price,
            q,
            customer: SigningKey::from_bytes(&q).verifying_key().to_bytes(),
            tokens,
            offer: None,
            ciphertext: None,
            change: vec![],
            spend: None,
            commit: None,
            abort: None,
            refund: None,
            state: PurchaseState::Registering,
            note: None,
        });
        self.save()?;
        steps.push(self.emit(Step::Selected {
            tokens: selection.indices.iter().map(|&i| values[i]).collect(),
            total: selection.total,
            change: selection.change,
            reused_key: bound.is_some(),
        }));
        Ok((id, steps))
    }

    /// Steps 3 and 4: registers every token to Q (idempotent at the bank)
    /// and verifies the receipts.
    pub async fn register(&mut self, id: u64) -> Result<Step, WalletError> {
        let r = self.expect_state(id, &[PurchaseState::Registering], "not registering")?;
        let bank = self.data.bank.bank;
        let mut receipts = Vec::new();
        for t in &r.tokens {
            let receipt = match &t.receipt {
                Some(receipt) => receipt.clone(),
                None => {
                    let receipt = self
                        .bank
                        .register(&RegisterRequest {
                            token: t.token.clone(),
                            customer: r.customer,
                        })
                        .await?;
                    check_receipt(&receipt, &bank, &t.token.id(), &r.customer)?;
                    receipt
                }
            };
            receipts.push(receipt);
        }
        let rec = self.record_mut(id)?;
        for (t, receipt) in rec.tokens.iter_mut().zip(receipts) {
            t.receipt = Some(receipt);
        }
        rec.state = PurchaseState::Registered;
        let count = rec.tokens.len();
        self.save()?;
        Ok(self.emit(Step::Registered { tokens: count }))
    }

    /// P1: asks the merchant for an offer for Q, checks it
    /// ([`crate::checks::check_offer`]) and stores it with the ciphertext.
    pub async fn request_offer(&mut self, id: u64) -> Result<Step, WalletError> {
        let r = self.expect_state(id, &[PurchaseState::Registered], "not registered")?;
        let merchant = MerchantClient::with_http(self.http.clone(), &r.merchant_url);
        let resp = merchant
            .offer(&OfferRequest {
                item: r.item.clone(),
                customer: r.customer,
            })
            .await?;
        let trusted: Vec<String> = self
            .logs
            .iter()
            .map(|l| l.verifier.name().to_owned())
            .collect();
        check_offer(
            &resp,
            &OfferExpectation {
                bank: self.data.bank.bank,
                customer: r.customer,
                merchant: r.merchant,
                price: r.price,
                trusted_logs: &trusted,
                now_ms: self.clock.now_ms(),
                max_expiration_ms: self.data.bank.max_expiration_ms,
            },
        )?;
        let o = resp.offer.offer.clone();
        let dir = self.goods_dir();
        std::fs::create_dir_all(&dir).map_err(|e| WalletError::io(&dir, e))?;
        let path = dir.join(format!("{}.ciphertext", o.tid));
        write_atomic(&path, &resp.ciphertext)?;
        let rec = self.record_mut(id)?;
        rec.offer = Some(resp.offer);
        rec.ciphertext = Some(path);
        rec.state = PurchaseState::Offered;
        self.save()?;
        Ok(self.emit(Step::Offer {
            tid: o.tid,
            merchant: o.merchant,
            price: o.price,
            expiration_ms: o.expiration_ms,
            log_origin: o.log_origin,
            description: o.description,
        }))
    }

    /// P2/P3: saves the change's blinding secrets, sends the spend signed by
    /// q (repeating the identical request after a crash), checks the bank's
    /// escrow terms and unblinds the change.
    pub async fn spend(&mut self, id: u64) -> Result<Step, WalletError> {
        let mut r = self.expect_state(
            id,
            &[PurchaseState::Offered, PurchaseState::Spending],
            "not ready to spend",
        )?;
        let offer = offer_of(&r)?.offer.clone();
        if r.state == PurchaseState::Offered {
            let now_ms = self.clock.now_ms();
            if now_ms.saturating_add(self.data.bank.min_expiration_ms) >= offer.expiration_ms {
                return Err(CheckError::Expired {
                    expiration_ms: offer.expiration_ms,
                    now_ms,
                }
                .into());
            }
            let change = self.blind_amount(r.total() - r.price)?;
            let rec = self.record_mut(id)?;
            rec.change = change;
            rec.state = PurchaseState::Spending;
            r = rec.clone();
            self.save()?;
        }
        let q = SigningKey::from_bytes(&r.q);
        let spend = Spend {
            terms: offer.terms(),
            customer: r.customer,
            token_ids: r.tokens.iter().map(|t| t.token.id()).collect(),
            change: r.change.iter().map(BlindedToken::request).collect(),
        };
        let signature = spend.sign(&q);
        let resp = self
            .bank
            .spend(&SpendRequest {
                spend,
                tokens: r.tokens.iter().map(|t| t.token.clone()).collect(),
                signature,
            })
            .await?;
        check_spend_response(&resp, &offer, r.change.len())?;
        let change = self.unblind(&r.change, &resp.change)?;
        let change_value = change.iter().map(|t| t.value).sum();
        self.data.tokens.extend(change);
        let rec = self.record_mut(id)?;
        rec.spend = Some(resp);
        rec.state = PurchaseState::Escrowed;
        self.save()?;
        Ok(self.emit(Step::Escrowed {
            tid: offer.tid,
            price: offer.price,
            change: change_value,
        }))
    }

    /// P3 to P6: gives the bank's terms to the merchant and accepts the key
    /// it returns only with a proven commit. Any failure of the merchant
    /// moves the purchase to [`PurchaseState::AwaitingOutcome`].
    pub async fn deliver(&mut self, id: u64) -> Result<Vec<Step>, WalletError> {
        let r = self.expect_state(id, &[PurchaseState::Escrowed], "not escrowed")?;
        let spend = r.spend.clone().ok_or(WalletError::WrongState {
            id,
            state: r.state,
            wanted: "escrowed without the bank's answer",
        })?;
        let merchant = MerchantClient::with_http(self.http.clone(), &r.merchant_url);
        let answer = merchant
            .purchase(&PurchaseRequest {
                terms: spend.terms,
                terms_signature: spend.terms_signature,
            })
            .await;
        // The key that counts is the one in the proven commit entry; the
        // merchant's copy of it in the answer is not used.
        let failure = match answer {
            Ok(delivery) => match self
                .accept_commit(id, &delivery.commit, Source::Merchant)
                .await
            {
                Ok((_, steps)) => return Ok(steps),
                Err(e @ WalletError::LogInconsistent { .. }) => return Err(e),
                Err(e) => format!("its delivery does not verify: {e}"),
            },
            Err(e) => e.to_string(),
        };
        let rec = self.record_mut(id)?;
        rec.state = PurchaseState::AwaitingOutcome;
        rec.note = Some(format!("the merchant failed: {failure}"));
        self.save()?;
        Ok(vec![self.emit(Step::MerchantFailed { reason: failure })])
    }

    /// Checks a commit proof for purchase `id` and, if it holds, decrypts:
    /// good goods are written and the purchase is delivered; a key that
    /// does not deliver the contract's goods starts a dispute. Returns the
    /// committed key.
    async fn accept_commit(
        &mut self,
        id: u64,
        proof: &EntryProof,
        source: Source,
    ) -> Result<([u8; 32], Vec<Step>), WalletError> {
        let r = self.purchase(id)?.clone();
        let offer = offer_of(&r)?.offer.clone();
        let v = self.verify_log_proof(proof, &offer.log_origin).await?;
        let key = check_commit(&v.entry, &v.checkpoint.checkpoint.origin, &offer)?;
        let mut steps = vec![self.emit(Step::Commit {
            source,
            index: proof.index,
            tree_size: proof.tree_size,
            key,
        })];
        let ct_path = r.ciphertext.clone().ok_or(WalletError::WrongState {
            id,
            state: r.state,
            wanted: "no ciphertext stored",
        })?;
        let ciphertext = std::fs::read(&ct_path).map_err(|e| WalletError::io(&ct_path, e))?;
        match open_goods(&key, &offer, &ciphertext) {
            Ok(plain) => {
                write_atomic(&r.out_path, &plain)?;
                let rec = self.record_mut(id)?;
                rec.commit = Some(proof.clone());
                rec.state = PurchaseState::Delivered;
                self.save()?;
                steps.push(self.emit(Step::Goods {
                    bytes: plain.len(),
                    path: r.out_path.clone(),
                }));
            }
            Err(finding) => {
                let blinded = self.blind_amount(r.price)?;
                let rec = self.record_mut(id)?;
                rec.commit = Some(proof.clone());
                rec.refund = Some(PendingRefund {
                    reason: RefundReason::Dispute,
                    blinded,
                    finding: Some(finding),
                });
                rec.state = PurchaseState::Refunding;
                self.save()?;
                steps.push(self.emit(Step::BadGoods { finding }));
            }
        }
        Ok((key, steps))
    }

    /// Checks an abort proof for purchase `id` and prepares the refund.
    async fn accept_abort(&mut self, id: u64, proof: &EntryProof) -> Result<Step, WalletError> {
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

    /// Asks the bank for the escrowed price back as fresh tokens (after an
    /// abort: the abort entry with its proof; after a bad key: the dispute's
    /// evidence), repeating the identical request after a crash, and
    /// unblinds the answer.
    pub async fn refund(&mut self, id: u64) -> Result<Step, WalletError> {
        let r = self.expect_state(id, &[PurchaseState::Refunding], "not refunding")?;
        let pending = r.refund.clone().ok_or(WalletError::WrongState {
            id,
            state: r.state,
            wanted: "no refund prepared",
        })?;
        let signed = offer_of(&r)?.clone();
        let refund = Refund {
            bank: self.data.bank.bank,
            tid: signed.offer.tid,
            reason: pending.reason,
            customer: r.customer,
            blinded: pending.blinded.iter().map(BlindedToken::request).collect(),
        };
        let signature = refund.sign(&SigningKey::from_bytes(&r.q));
        let signatures = match pending.reason {
            RefundReason::Abort => {
                self.bank
                    .refund(&RefundRequest {
                        refund,
                        signature,
                        abort: r.abort.clone(),
                    })
                    .await?
                    .blind_signatures
            }
            RefundReason::Dispute => {
                let ct_path = r.ciphertext.clone().ok_or(WalletError::WrongState {
                    id,
                    state: r.state,
                    wanted: "no ciphertext stored",
                })?;
                let ciphertext =
                    std::fs::read(&ct_path).map_err(|e| WalletError::io(&ct_path, e))?;
                let commit = r.commit.clone().ok_or(WalletError::WrongState {
                    id,
                    state: r.state,
                    wanted: "no commit stored",
                })?;
                self.bank
                    .dispute(&DisputeRequest {
                        refund,
                        signature,
                        offer: signed,
                        ciphertext,
                        commit,
                    })
                    .await?
                    .blind_signatures
            }
        };
        let tokens = self.unblind(&pending.blinded, &signatures)?;
        let count = tokens.len();
        self.data.tokens.extend(tokens);
        let rec = self.record_mut(id)?;
        rec.state = PurchaseState::Refunded;
        self.save()?;
        Ok(self.emit(Step::Refunded {
            reason: pending.reason,
            amount: r.price,
            tokens: count,
        }))
    }

    /// Stops a purchase before anything was spent: its tokens go back into
    /// the wallet, bound to Q (they may be registered to it), so that the
    /// next purchase spends them with q.
    pub fn cancel(&mut self, id: u64, reason: &str) -> Result<Step, WalletError> {
        let r = self.expect_state(
            id,
            &[
                PurchaseState::Registering,
                PurchaseState::Registered,
                PurchaseState::Offered,
                PurchaseState::Spending,
            ],
            "past the point where nothing is spent",
        )?;
        self.data
            .tokens
            .extend(r.tokens.iter().map(|t| StoredToken {
                token: t.token.clone(),
                value: t.value,
                bound_to: Some(r.q),
            }));
        let rec = self.record_mut(id)?;
        rec.state = PurchaseState::Cancelled;
        rec.change.clear();
        rec.note = Some(reason.to_owned());
        self.save()?;
        Ok(self.emit(Step::Cancelled {
            reason: reason.to_owned(),
        }))
    }

    /// Runs the next step for the purchase's state.
    pub async fn step(&mut self, id: u64, wait: bool) -> Result<Vec<Step>, WalletError> {
        Ok(match self.purchase(id)?.state {
            PurchaseState::Registering => vec![self.register(id).await?],
            PurchaseState::Registered => vec![self.request_offer(id).await?],
            PurchaseState::Offered | PurchaseState::Spending => vec![self.spend(id).await?],
            PurchaseState::Escrowed => self.deliver(id).await?,
            PurchaseState::AwaitingOutcome => self.settle(id, wait).await?,
            PurchaseState::Refunding => vec![self.refund(id).await?],
            PurchaseState::Delivered | PurchaseState::Refunded | PurchaseState::Cancelled => {
                vec![]
            }
        })
    }

    /// Runs the steps of purchase `id` until it is final (or, without
    /// `wait`, until only waiting for the log is left). A failure before
    /// the spend, or the bank's refusal of the spend, cancels the purchase
    /// and is returned; other failures leave it for [`Wallet::resume`].
    pub async fn drive(&mut self, id: u64, wait: bool) -> Result<PurchaseReport, WalletError> {
        let mut steps = Vec::new();
        loop {
            let state = self.purchase(id)?.state;
            if state.is_final() {
                break;
            }
            match self.step(id, wait).await {
                Ok(s) => steps.extend(s),
                Err(e) => {
                    // The state the failure left (a spend saves `spending`
                    // before it sends), not the one it started from.
                    let cancel = match self.purchase(id)?.state {
                        PurchaseState::Registering
                        | PurchaseState::Registered
                        | PurchaseState::Offered => true,
                        PurchaseState::Spending => e.is_refusal(),
                        _ => false,
                    };
                    if cancel {
                        self.cancel(id, &e.to_string())?;
                    }
                    return Err(e);
                }
            }
            if !wait && self.purchase(id)?.state == PurchaseState::AwaitingOutcome {
                break;
            }
        }
        let r = self.purchase(id)?;
        let outcome = match r.state {
            PurchaseState::Delivered => PurchaseOutcome::Delivered {
                path: r.out_path.clone(),
                bytes: std::fs::metadata(&r.out_path)
                    .map(|m| m.len() as usize)
                    .unwrap_or(0),
            },
            PurchaseState::Refunded => PurchaseOutcome::Refunded {
                reason: r
                    .refund
                    .as_ref()
                    .map(|p| p.reason)
                    .unwrap_or(RefundReason::Abort),
                amount: r.price,
            },
            PurchaseState::Cancelled => PurchaseOutcome::Cancelled {
                reason: r.note.clone().unwrap_or_default(),
            },
            state => PurchaseOutcome::Pending { state },
        };
        Ok(PurchaseReport {
            id,
            tid: r.tid(),
            steps,
            outcome,
        })
    }

    /// Finishes every pending withdrawal and drives every unfinished
    /// purchase (see [`Wallet::drive`]); without `wait`, purchases still
    /// waiting for the log's outcome are left pending.
    pub async fn resume(&mut self, wait: bool) -> ResumeReport {
        let mut report = ResumeReport::default();
        let ids: Vec<[u8; 16]> = self.data.withdrawals.iter().map(|w| w.request_id).collect();
        for id in ids {
            report.withdrawals.push(self.finish_withdrawal(&id).await);
        }
        let ids: Vec<u64> = self
            .data
            .purchases
            .iter()
            .filter(|p| !p.state.is_final())
            .map(|p| p.id)
            .collect();
        for id in ids {
            let r = self.drive(id, wait).await;
            report.purchases.push((id, r));
        }
        report
    }

    /// The purchase of a TID.
    pub fn purchase_by_tid(&self, tid: &Tid) -> Result<&PurchaseRecord, WalletError> {
        self.data
            .purchase_by_tid(tid)
            .ok_or_else(|| WalletError::UnknownPurchase(tid.to_string()))
    }
}

fn offer_of(r: &PurchaseRecord) -> Result<&acd_core::bank_api::SignedOffer, WalletError> {
    r.offer.as_ref().ok_or(WalletError::WrongState {
        id: r.id,
        state: r.state,
        wanted: "no offer stored",
    })
}
