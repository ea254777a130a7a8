//! P3 to P6 (paper figure 2): the customer gives the bank's escrow terms
//! to the merchant (the notice P3 reaches the merchant through the
//! customer) and accepts the key only with the log's proof of its commit
//! (P5): the commit entry's inclusion proof under a checkpoint on the
//! wallet's view of that log. Good goods are written; goods the committed
//! key does not deliver start a [`crate::dispute`].

use acd_client::merchant::MerchantClient;
use acd_core::bank_api::PurchaseRequest;
use acd_core::log_api::EntryProof;

use crate::checks::{check_commit, open_goods};
use crate::error::WalletError;
use crate::file::{PurchaseState, write_atomic};
use crate::purchase::offer_of;
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
            Err(finding) => steps.push(self.start_dispute(id, proof, finding)?),
        }
        Ok((key, steps))
    }
}
