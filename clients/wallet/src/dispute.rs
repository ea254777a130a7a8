//! Dispute (PROTOCOL.md, outcomes: bogus key): the key the log holds for
//! the purchase does not decrypt the ciphertext, or the plaintext does not
//! hash to the contract's hash. The customer shows the bank the offer
//! signed by the merchant, the ciphertext and the commit entry with its
//! proof; anyone can check that evidence. If the bank upholds it, it
//! refunds with fresh blind tokens and debits the merchant.
//!
//! Two steps: [`Wallet::start_dispute`] records the finding, the commit and
//! the blinded refund before anything is sent; [`Wallet::dispute`] sends
//! the evidence (repeated identically after a crash) from the refund step.

use acd_core::bank_api::{DisputeFinding, DisputeRequest, SignedOffer};
use acd_core::log_api::EntryProof;
use acd_core::purchase::{Refund, RefundReason};

use crate::error::WalletError;
use crate::file::{PendingRefund, PurchaseRecord, PurchaseState};
use crate::report::Step;
use crate::wallet::Wallet;

impl Wallet {
    /// After a proven commit whose key does not deliver the contract's
    /// goods (`finding`): records the commit and prepares the refund by
    /// dispute.
    pub(crate) fn start_dispute(
        &mut self,
        id: u64,
        proof: &EntryProof,
        finding: DisputeFinding,
    ) -> Result<Step, WalletError> {
        let price = self.purchase(id)?.price;
        let blinded = self.blind_amount(price)?;
        let rec = self.record_mut(id)?;
        rec.commit = Some(proof.clone());
        rec.refund = Some(PendingRefund {
            reason: RefundReason::Dispute,
            blinded,
            finding: Some(finding),
        });
        rec.state = PurchaseState::Refunding;
        self.save()?;
        Ok(self.emit(Step::BadGoods { finding }))
    }

    /// Sends the dispute's evidence for purchase `r` with its signed
    /// refund message; returns the bank's blind signatures.
    pub(crate) async fn dispute(
        &self,
        r: &PurchaseRecord,
        refund: Refund,
        signature: [u8; 64],
        offer: SignedOffer,
    ) -> Result<Vec<Vec<u8>>, WalletError> {
        let ct_path = self.ciphertext_path(r)?;
        let ciphertext = std::fs::read(&ct_path).map_err(|e| WalletError::io(&ct_path, e))?;
        let request = dispute_request(r, refund, signature, offer, ciphertext)?;
        Ok(self.bank.dispute(&request).await?.blind_signatures)
    }
}

/// The dispute's evidence for purchase `r`: the refund message signed by
/// q, the merchant's signed offer, the ciphertext as received and the
/// commit entry with its proof.
pub fn dispute_request(
    r: &PurchaseRecord,
    refund: Refund,
    signature: [u8; 64],
    offer: SignedOffer,
    ciphertext: Vec<u8>,
) -> Result<DisputeRequest, WalletError> {
    let commit = r.commit.clone().ok_or(WalletError::WrongState {
        id: r.id,
        state: r.state,
        wanted: "no commit stored",
    })?;
    Ok(DisputeRequest {
        refund,
        signature,
        offer,
        ciphertext,
        commit,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use acd_core::entry::{Outcome, Tid};
    use acd_core::goods;
    use acd_core::purchase::Offer;
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::checks::open_goods;
    use crate::refund::refund_message;

    const GOODS: &[u8] = b"the goods";

    fn record(commit: Option<EntryProof>) -> (PurchaseRecord, Vec<u8>, [u8; 32]) {
        let q = [3; 32];
        let customer = SigningKey::from_bytes(&q).verifying_key().to_bytes();
        let merchant = SigningKey::from_bytes(&[4; 32]);
        let tid = Tid([5; 16]);
        let k = [6; 32];
        let ciphertext = goods::encrypt(&k, &tid, GOODS).unwrap();
        let offer = Offer {
            bank: [7; 32],
            log_origin: "log.test".into(),
            tid,
            merchant: merchant.verifying_key().to_bytes(),
            customer,
            expiration_ms: 1_000,
            price: 10,
            description: "goods".into(),
            ciphertext_hash: goods::hash(&ciphertext),
            plaintext_hash: goods::hash(GOODS),
        };
        let signed = SignedOffer {
            signature: offer.sign(&merchant),
            offer,
        };
        let r = PurchaseRecord {
            id: 1,
            merchant_url: "http://merchant.test".into(),
            item: "goods".into(),
            out_path: "/nonexistent/out".into(),
            merchant: signed.offer.merchant,
            price: 10,
            q,
            customer,
            tokens: vec![],
            offer: Some(signed),
            ciphertext: None,
            change: vec![],
            spend: None,
            commit,
            abort: None,
            refund: None,
            state: PurchaseState::Refunding,
            note: None,
            started_ms: None,
            ended_ms: None,
        };
        (r, ciphertext, k)
    }

    fn commit(tid: Tid) -> EntryProof {
        EntryProof {
            index: 2,
            tid,
            outcome: Outcome::Commit,
            timestamp_ms: 1,
            entry: vec![1],
            leaf_hash: [0; 32],
            tree_size: 3,
            inclusion: vec![],
            checkpoint: String::new(),
        }
    }

    // The dispute step without servers: a logged key that does not decrypt
    // (or decrypts other goods) is the finding; the evidence sent is the
    // refund signed by q for the dispute, the merchant's signed offer, the
    // ciphertext as received and the commit; without a commit on record
    // there is no dispute to make.
    #[test]
    fn dispute_evidence_is_the_offer_the_ciphertext_and_the_commit() {
        let (r, ciphertext, k) = record(Some(commit(Tid([5; 16]))));
        let offer = r.offer.clone().unwrap();
        assert_eq!(open_goods(&k, &offer.offer, &ciphertext).unwrap(), GOODS);
        assert_eq!(
            open_goods(&[8; 32], &offer.offer, &ciphertext),
            Err(DisputeFinding::KeyDoesNotDecrypt)
        );
        let other = goods::encrypt(&k, &offer.offer.tid, b"other goods").unwrap();
        assert_eq!(
            open_goods(&k, &offer.offer, &other),
            Err(DisputeFinding::WrongGoods)
        );

        let pending = PendingRefund {
            reason: RefundReason::Dispute,
            blinded: vec![],
            finding: Some(DisputeFinding::KeyDoesNotDecrypt),
        };
        let (refund, signature) = refund_message([7; 32], &r, &offer, &pending);
        let req =
            dispute_request(&r, refund, signature, offer.clone(), ciphertext.clone()).unwrap();
        req.refund.verify(&req.signature).unwrap();
        assert_eq!(req.refund.reason, RefundReason::Dispute);
        assert_eq!(
            (req.refund.customer, req.refund.tid),
            (r.customer, offer.offer.tid)
        );
        assert_eq!(req.offer, offer);
        assert_eq!(req.ciphertext, ciphertext);
        assert_eq!(req.commit.index, 2);

        let (r, ciphertext, _) = record(None);
        let (refund, signature) = refund_message([7; 32], &r, &offer, &pending);
        assert!(matches!(
            dispute_request(&r, refund, signature, offer, ciphertext),
            Err(WalletError::WrongState {
                wanted: "no commit stored",
                ..
            })
        ));
    }
}
