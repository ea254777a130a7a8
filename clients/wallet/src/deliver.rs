//! P3 to P6 (paper figure 2): the customer gives the bank's escrow terms
//! to the merchant (the notice P3 reaches the merchant through the
//! customer) and accepts the key only with the log's proof of its commit
//! (P5): the commit entry's inclusion proof under a checkpoint on the
//! wallet's view of that log. Good goods are written; goods the committed
//! key does not deliver start a [`crate::dispute`].

use acd_client::merchant::MerchantClient;
use acd_core::bank_api::PurchaseRequest;
use acd_core::entry::LogEntry;
use acd_core::log_api::EntryProof;
use std::path::Path;

use crate::checks::{check_commit, open_goods};
use crate::error::WalletError;
use crate::file::{PurchaseState, write_atomic};
use crate::purchase::{check_output, offer_of};
use crate::report::{Source, Step};
use crate::wallet::Wallet;

impl Wallet {
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
                // Forks and our own disk are nothing the merchant did.
                Err(e @ (WalletError::LogInconsistent { .. } | WalletError::Output { .. })) => {
                    return Err(e);
                }
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
    pub(crate) async fn accept_commit(
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
        let ct_path = self.ciphertext_path(&r)?;
        let ciphertext = std::fs::read(&ct_path).map_err(|e| WalletError::io(&ct_path, e))?;
        match open_goods(&key, &offer, &ciphertext) {
            Ok(plain) => {
                let rec = self.record_mut(id)?;
                rec.commit = Some(proof.clone());
                steps.push(self.write_plain(id, &plain)?);
            }
            Err(finding) => steps.push(self.start_dispute(id, proof, finding)?),
        }
        Ok((key, steps))
    }

    /// Writes checked goods to the purchase's `out_path`: delivered, or,
    /// if that fails, [`PurchaseState::Unwritten`] (the commit is stored
    /// with the ciphertext, so [`Wallet::write_goods`] can try again) and
    /// [`WalletError::Output`].
    fn write_plain(&mut self, id: u64, plain: &[u8]) -> Result<Step, WalletError> {
        let out = self.resolve(&self.purchase(id)?.out_path);
        let written = write_atomic(&out, plain);
        let rec = self.record_mut(id)?;
        if let Err(e) = written {
            let source = match e {
                WalletError::Io { source, .. } => source,
                other => std::io::Error::other(other.to_string()),
            };
            rec.state = PurchaseState::Unwritten;
            rec.note = Some(format!(
                "paid and delivered, but the goods could not be written to {}: {source}; \
                 write them with resume --out PATH",
                out.display()
            ));
            self.save()?;
            return Err(WalletError::Output { path: out, source });
        }
        rec.state = PurchaseState::Delivered;
        self.save()?;
        Ok(self.emit(Step::Goods {
            bytes: plain.len(),
            path: out,
        }))
    }

    /// Writes the goods of an [`PurchaseState::Unwritten`] purchase, to
    /// `out` if given (which is then stored as its path), from its stored
    /// ciphertext and the key of its proven commit.
    pub fn write_goods(&mut self, id: u64, out: Option<&Path>) -> Result<Step, WalletError> {
        let r = self.expect_state(id, &[PurchaseState::Unwritten], "not waiting to be written")?;
        if let Some(out) = out {
            check_output(out)?;
            let stored = self.stored_path(out)?;
            self.record_mut(id)?.out_path = stored;
        }
        let offer = offer_of(&r)?.offer.clone();
        let commit = r.commit.as_ref().ok_or(WalletError::WrongState {
            id,
            state: r.state,
            wanted: "no commit stored",
        })?;
        // The commit was verified before it was stored.
        let key = match LogEntry::decode(&commit.entry) {
            Ok(LogEntry::Commit { key, .. }) => key,
            _ => {
                return Err(WalletError::WrongState {
                    id,
                    state: r.state,
                    wanted: "the stored commit is not a commit",
                });
            }
        };
        let ct_path = self.ciphertext_path(&r)?;
        let ciphertext = std::fs::read(&ct_path).map_err(|e| WalletError::io(&ct_path, e))?;
        let plain = open_goods(&key, &offer, &ciphertext).map_err(|_| WalletError::WrongState {
            id,
            state: r.state,
            wanted: "the stored goods do not open",
        })?;
        self.write_plain(id, &plain)
    }

    /// The one purchase waiting to have its goods written, or `id`.
    pub fn unwritten(&self, id: Option<u64>) -> Result<u64, WalletError> {
        let waiting: Vec<u64> = self
            .purchases()
            .iter()
            .filter(|p| p.state == PurchaseState::Unwritten)
            .map(|p| p.id)
            .collect();
        match (id, waiting.as_slice()) {
            (Some(id), _) => Ok(id),
            (None, [id]) => Ok(*id),
            (None, []) => Err(WalletError::NoUnwritten(
                "no purchase waits to have its goods written".into(),
            )),
            (None, ids) => Err(WalletError::NoUnwritten(format!(
                "purchases {ids:?} wait to have their goods written; choose one with --purchase"
            ))),
        }
    }
}
