//! A purchase as a state machine (paper figure 2, and the ways out of it):
//! each public step moves one [`PurchaseRecord`] from one
//! [`PurchaseState`] to the next and saves it. The steps, each in the file
//! named after it:
//!
//! - here: [`Wallet::buy`] (start a purchase and drive it), the start
//!   (catalog, token selection, q), registration of the tokens to Q (steps
//!   3 and 4), P1 ([`Wallet::request_offer`]), P2/P3 ([`Wallet::spend`])
//!   and [`Wallet::cancel`];
//! - [`crate::deliver`]: P3 to P6, the merchant's delivery, and the check
//!   of a commit proof;
//! - [`crate::settle`]: Q1/Q2, the log's outcome, and the abort;
//! - [`crate::refund`]: the money back after an abort;
//! - [`crate::dispute`]: the money back after a bogus key or wrong goods;
//! - [`crate::resume`]: running the steps until a purchase is final.
//!
//! Which failures cancel and which wait: until the spend is sent nothing is
//! at stake, so any failure cancels (the tokens go back into the wallet,
//! bound to Q). Once the spend may have reached the bank, only an explicit
//! refusal cancels; anything else leaves the state for an identical retry.
//! Once escrowed, the log decides: a proven commit gives the key (or a
//! dispute), an abort gives a refund.

use std::path::{Path, PathBuf};

use acd_client::merchant::MerchantClient;
use acd_core::bank_api::{OfferRequest, RegisterRequest, SignedOffer, SpendRequest};
use acd_core::entry::Tid;
use acd_core::purchase::Spend;
use acd_core::token::BlindedToken;
use ed25519_dalek::SigningKey;

use crate::checks::{
    CheckError, OfferExpectation, check_offer, check_receipt, check_spend_response,
};
use crate::coins::select;
use crate::error::WalletError;
use crate::file::{
    PurchaseRecord, PurchaseState, PurchaseToken, SetAsideToken, StoredToken, parent_dir,
    write_atomic,
};
use crate::report::{PurchaseReport, Step};
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

    pub(crate) fn record_mut(&mut self, id: u64) -> Result<&mut PurchaseRecord, WalletError> {
        self.data
            .purchase_mut(id)
            .ok_or_else(|| WalletError::UnknownPurchase(id.to_string()))
    }

    pub(crate) fn expect_state(
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

    /// The stored ciphertext of a purchase. Older wallets stored the path
    /// as the working directory of that command saw it; such a path is
    /// found beside this wallet by its file name.
    pub(crate) fn ciphertext_path(&self, r: &PurchaseRecord) -> Result<PathBuf, WalletError> {
        let stored = r.ciphertext.as_ref().ok_or(WalletError::WrongState {
            id: r.id,
            state: r.state,
            wanted: "no ciphertext stored",
        })?;
        let path = self.resolve(stored);
        if path.exists() || stored.is_absolute() {
            return Ok(path);
        }
        Ok(match stored.file_name() {
            Some(name) if self.goods_dir().join(name).exists() => self.goods_dir().join(name),
            _ => path,
        })
    }

    /// The latest purchase of `item` from the merchant at `merchant_url`
    /// that was not cancelled: buying it again is usually a mistake, so the
    /// command line asks for `--again`.
    pub fn bought(&self, merchant_url: &str, item: &str) -> Option<&PurchaseRecord> {
        let base = MerchantClient::new(merchant_url).base().to_owned();
        self.data.purchases.iter().rev().find(|p| {
            p.merchant_url == base && p.item == item && p.state != PurchaseState::Cancelled
        })
    }

    /// The purchase of a TID.
    pub fn purchase_by_tid(&self, tid: &Tid) -> Result<&PurchaseRecord, WalletError> {
        self.data
            .purchase_by_tid(tid)
            .ok_or_else(|| WalletError::UnknownPurchase(tid.to_string()))
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
        self.buy_waiting(merchant_url, item, out, true).await
    }

    /// [`Wallet::buy`]; without `wait`, returns once only the log's outcome
    /// is left to wait for ([`Wallet::resume`] finishes). A token the bank
    /// refuses as spent is set aside and the purchase starts again with
    /// others, each time with one token fewer.
    pub async fn buy_waiting(
        &mut self,
        merchant_url: &str,
        item: &str,
        out: &Path,
        wait: bool,
    ) -> Result<PurchaseReport, WalletError> {
        let mut earlier = Vec::new();
        loop {
            let (id, steps) = self.start_purchase(merchant_url, item, out).await?;
            earlier.extend(steps);
            match self.drive(id, wait).await {
                Err(WalletError::TokenSetAside { .. }) => {
                    let r = self.purchase(id)?;
                    earlier.push(Step::Cancelled {
                        reason: r.note.clone().unwrap_or_default(),
                    });
                }
                Err(e) => return Err(e),
                Ok(mut report) => {
                    report.steps.splice(0..0, earlier);
                    return Ok(report);
                }
            }
        }
    }

    /// Asks the merchant's catalog for the price, chooses tokens (and the
    /// key q, fresh unless tokens bound to an earlier key must be spent),
    /// and saves the new purchase before anything is sent. Fails with
    /// [`WalletError::Output`], before anything else, if the goods could
    /// not be written to `out`.
    pub async fn start_purchase(
        &mut self,
        merchant_url: &str,
        item: &str,
        out: &Path,
    ) -> Result<(u64, Vec<Step>), WalletError> {
        check_output(out)?;
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
        let q = bound.unwrap_or_else(|| self.fresh_seed());
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
        let out_path = self.stored_path(out)?;
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
            started_ms: Some(self.clock.now_ms()),
            ended_ms: None,
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
        for (i, t) in r.tokens.iter().enumerate() {
            let receipt = match &t.receipt {
                Some(receipt) => receipt.clone(),
                None => {
                    let answer = self
                        .bank
                        .register(&RegisterRequest {
                            token: t.token.clone(),
                            customer: r.customer,
                        })
                        .await;
                    let receipt = match answer {
                        Ok(receipt) => receipt,
                        Err(e) => match e.code() {
                            Some(code @ ("token_spent" | "already_registered")) => {
                                let code = code.to_owned();
                                return Err(self.set_aside(id, i, &code)?);
                            }
                            _ => return Err(e.into()),
                        },
                    };
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

    /// Takes token `index` of purchase `id` out of it and out of the
    /// wallet, for good: the bank refused it with `code` (a wallet restored
    /// from a backup holds tokens spent since). The purchase is then
    /// cancelled by [`Wallet::drive`] and its other tokens come back.
    fn set_aside(&mut self, id: u64, index: usize, code: &str) -> Result<WalletError, WalletError> {
        let rec = self.record_mut(id)?;
        if index >= rec.tokens.len() {
            return Err(WalletError::UnknownPurchase(format!(
                "token {index} of purchase {id}"
            )));
        }
        let t = rec.tokens.remove(index);
        self.data.set_aside.push(SetAsideToken {
            token: t.token,
            value: t.value,
            reason: code.to_owned(),
        });
        self.save()?;
        Ok(WalletError::TokenSetAside {
            value: t.value,
            reason: code.to_owned(),
        })
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
        let stored = self.stored_path(&path)?;
        let rec = self.record_mut(id)?;
        rec.offer = Some(resp.offer);
        rec.ciphertext = Some(stored);
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
}

/// The offer stored with a purchase.
pub(crate) fn offer_of(r: &PurchaseRecord) -> Result<&SignedOffer, WalletError> {
    r.offer.as_ref().ok_or(WalletError::WrongState {
        id: r.id,
        state: r.state,
        wanted: "no offer stored",
    })
}

/// Checks, before anything is paid, that the goods could be written to
/// `out`: not a directory, its directory exists or can be made, a new file
/// can be made in it, and an existing `out` opens for writing.
pub fn check_output(out: &Path) -> Result<(), WalletError> {
    let fail = |source| WalletError::Output {
        path: out.to_owned(),
        source,
    };
    if out.is_dir() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory",
        )));
    }
    let dir = parent_dir(out);
    std::fs::create_dir_all(&dir).map_err(fail)?;
    // Removed when dropped.
    tempfile::Builder::new()
        .prefix(".acd-probe.")
        .tempfile_in(&dir)
        .map_err(fail)?;
    if out.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(out)
            .map_err(fail)?;
    }
    Ok(())
}
