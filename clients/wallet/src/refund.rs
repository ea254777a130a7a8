//! Refund (PROTOCOL.md, outcomes): the holder of q asks the bank for the
//! escrowed price back as fresh blind tokens, unlinkable to the purchase:
//! after an abort with the abort entry and its proof; after a bogus key
//! with the dispute's evidence ([`crate::dispute`]). The blinded messages
//! were saved when the refund was prepared, so a crash repeats the
//! identical request.

use acd_core::bank_api::{RefundRequest, SignedOffer};
use acd_core::purchase::{Refund, RefundReason};
use acd_core::token::BlindedToken;
use ed25519_dalek::SigningKey;

use crate::error::WalletError;
use crate::file::{PendingRefund, PurchaseRecord, PurchaseState};
use crate::purchase::offer_of;
use crate::report::Step;
use crate::wallet::Wallet;

impl Wallet {
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
        let (refund, signature) = refund_message(self.data.bank.bank, &r, &signed, &pending);
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
            RefundReason::Dispute => self.dispute(&r, refund, signature, signed).await?,
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
}

/// The refund message for purchase `r`, signed by its q: what the bank
/// blind-signs `pending.blinded` for.
pub fn refund_message(
    bank: [u8; 32],
    r: &PurchaseRecord,
    offer: &SignedOffer,
    pending: &PendingRefund,
) -> (Refund, [u8; 64]) {
    let refund = Refund {
        bank,
        tid: offer.offer.tid,
        reason: pending.reason,
        customer: r.customer,
        blinded: pending.blinded.iter().map(BlindedToken::request).collect(),
    };
    let signature = refund.sign(&SigningKey::from_bytes(&r.q));
    (refund, signature)
}
