//! The signed messages of preparation and purchase (paper figures 1 and 2)
//! other than the log's own entries ([`crate::entry`]):
//!
//! - [`Withdrawal`] (step 1): the account key authorises a debit for a list
//!   of blinded token messages, under a client-chosen request id.
//! - [`Receipt`] (step 4): the bank binds h(t) to the customer's fresh key Q.
//! - [`Offer`] (P1): the merchant's contract: goods description, price,
//!   hashes of the encrypted and plain goods, TID, log, Q, expiration.
//! - [`Spend`] (P2): q authorises escrowing its tokens for one offer's terms,
//!   with blinded messages for the change.
//! - [`EscrowTerms`] (P3): the bank tells the merchant it escrowed the price
//!   for these terms (the log gets the priceless
//!   [`crate::entry::EscrowNotice`] instead).
//! - [`Refund`]: q asks for fresh blind tokens after an abort or a dispute.
//!
//! Each is `label || 0x00 || fields` ([`crate::encoding`]), signed with
//! ed25519; lists are a u64 count and fixed-size items.

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::encoding::Writer;
use crate::entry::{EntryError, Tid, verify};
use crate::log_api::hex_array;
use crate::token::BlindedMessage;

pub const WITHDRAW_LABEL: &str = "acd/v1/withdraw";
pub const RECEIPT_LABEL: &str = "acd/v1/receipt";
pub const OFFER_LABEL: &str = "acd/v1/offer";
pub const SPEND_LABEL: &str = "acd/v1/spend";
pub const ESCROW_TERMS_LABEL: &str = "acd/v1/escrow-terms";
pub const REFUND_LABEL: &str = "acd/v1/refund";

/// Longest goods description accepted in an offer, in bytes.
pub const MAX_DESCRIPTION: usize = 1024;
/// Most tokens or blinded messages in one request.
pub const MAX_ITEMS: usize = 64;

fn blinded_list(w: Writer, list: &[BlindedMessage]) -> Writer {
    list.iter().fold(w.u64(list.len() as u64), |w, b| {
        w.fixed(&b.denomination).fixed(&b.digest())
    })
}

/// Step 1: a withdrawal from `account`, idempotent by `request_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    /// The bank's ed25519 key: a withdrawal is for one bank.
    #[serde(with = "hex_array")]
    pub bank: [u8; 32],
    /// The account's ed25519 key, which is also the account's id.
    #[serde(with = "hex_array")]
    pub account: [u8; 32],
    #[serde(with = "hex_array")]
    pub request_id: [u8; 16],
    pub blinded: Vec<BlindedMessage>,
}

impl Withdrawal {
    pub fn signed_bytes(&self) -> Vec<u8> {
        let w = Writer::labelled(WITHDRAW_LABEL)
            .fixed(&self.bank)
            .fixed(&self.account)
            .fixed(&self.request_id);
        blinded_list(w, &self.blinded).finish()
    }

    pub fn sign(&self, account: &SigningKey) -> [u8; 64] {
        account.sign(&self.signed_bytes()).to_bytes()
    }

    pub fn verify(&self, signature: &[u8; 64]) -> Result<(), EntryError> {
        verify(&self.account, &self.signed_bytes(), signature, "account")
    }
}

/// Step 4: the bank's receipt binding token id h(t) to the customer key Q.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    #[serde(with = "hex_array")]
    pub bank: [u8; 32],
    #[serde(with = "hex_array")]
    pub token_id: [u8; 32],
    #[serde(with = "hex_array")]
    pub customer: [u8; 32],
}

impl Receipt {
    pub fn signed_bytes(&self) -> Vec<u8> {
        Writer::labelled(RECEIPT_LABEL)
            .fixed(&self.bank)
            .fixed(&self.token_id)
            .fixed(&self.customer)
            .finish()
    }

    pub fn sign(&self, bank: &SigningKey) -> [u8; 64] {
        bank.sign(&self.signed_bytes()).to_bytes()
    }

    pub fn verify(&self, signature: &[u8; 64]) -> Result<(), EntryError> {
        verify(&self.bank, &self.signed_bytes(), signature, "bank")
    }
}

/// P1: the merchant's offer (the contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// The bank that will escrow the payment.
    #[serde(with = "hex_array")]
    pub bank: [u8; 32],
    /// The log that serializes the outcome (its origin).
    pub log_origin: String,
    pub tid: Tid,
    #[serde(with = "hex_array")]
    pub merchant: [u8; 32],
    /// The customer's key Q for this purchase.
    #[serde(with = "hex_array")]
    pub customer: [u8; 32],
    pub expiration_ms: u64,
    pub price: u64,
    /// What is sold, in UTF-8, at most [`MAX_DESCRIPTION`] bytes.
    pub description: String,
    /// SHA-256 of the encrypted goods as delivered with the offer.
    #[serde(with = "hex_array")]
    pub ciphertext_hash: [u8; 32],
    /// SHA-256 of the plain goods.
    #[serde(with = "hex_array")]
    pub plaintext_hash: [u8; 32],
}

impl Offer {
    pub fn signed_bytes(&self) -> Vec<u8> {
        Writer::labelled(OFFER_LABEL)
            .fixed(&self.bank)
            .var(self.log_origin.as_bytes())
            .fixed(&self.tid.0)
            .fixed(&self.merchant)
            .fixed(&self.customer)
            .u64(self.expiration_ms)
            .u64(self.price)
            .var(self.description.as_bytes())
            .fixed(&self.ciphertext_hash)
            .fixed(&self.plaintext_hash)
            .finish()
    }

    pub fn sign(&self, merchant: &SigningKey) -> [u8; 64] {
        merchant.sign(&self.signed_bytes()).to_bytes()
    }

    /// Checks the merchant's signature and the field bounds that keep the
    /// encoding canonical.
    pub fn verify(&self, signature: &[u8; 64]) -> Result<(), EntryError> {
        if self.description.len() > MAX_DESCRIPTION || self.log_origin.len() > usize::from(u16::MAX)
        {
            return Err(EntryError::Decode(crate::encoding::DecodeError::Invalid {
                field: "description",
                reason: "too long",
            }));
        }
        verify(&self.merchant, &self.signed_bytes(), signature, "merchant")
    }

    /// The terms the bank escrows for this offer.
    pub fn terms(&self) -> EscrowTerms {
        EscrowTerms {
            bank: self.bank,
            log_origin: self.log_origin.clone(),
            tid: self.tid,
            merchant: self.merchant,
            expiration_ms: self.expiration_ms,
            price: self.price,
        }
    }
}

/// P2: q authorises the bank to escrow the tokens `token_ids` for the
/// offer's terms and to return change as blind signatures on `change`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spend {
    pub terms: EscrowTerms,
    /// Q: the key every spent token is registered to.
    #[serde(with = "hex_array")]
    pub customer: [u8; 32],
    #[serde(with = "crate::log_api::hex_hashes")]
    pub token_ids: Vec<[u8; 32]>,
    pub change: Vec<BlindedMessage>,
}

impl Spend {
    pub fn signed_bytes(&self) -> Vec<u8> {
        let t = &self.terms;
        let w = Writer::labelled(SPEND_LABEL)
            .fixed(&t.bank)
            .var(t.log_origin.as_bytes())
            .fixed(&t.tid.0)
            .fixed(&t.merchant)
            .u64(t.expiration_ms)
            .u64(t.price)
            .fixed(&self.customer)
            .u64(self.token_ids.len() as u64);
        let w = self.token_ids.iter().fold(w, |w, id| w.fixed(id));
        blinded_list(w, &self.change).finish()
    }

    pub fn sign(&self, q: &SigningKey) -> [u8; 64] {
        q.sign(&self.signed_bytes()).to_bytes()
    }

    pub fn verify(&self, signature: &[u8; 64]) -> Result<(), EntryError> {
        verify(&self.customer, &self.signed_bytes(), signature, "customer")
    }
}

/// P3: the bank escrowed `price` for these terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscrowTerms {
    #[serde(with = "hex_array")]
    pub bank: [u8; 32],
    pub log_origin: String,
    pub tid: Tid,
    #[serde(with = "hex_array")]
    pub merchant: [u8; 32],
    pub expiration_ms: u64,
    pub price: u64,
}

impl EscrowTerms {
    pub fn signed_bytes(&self) -> Vec<u8> {
        Writer::labelled(ESCROW_TERMS_LABEL)
            .fixed(&self.bank)
            .var(self.log_origin.as_bytes())
            .fixed(&self.tid.0)
            .fixed(&self.merchant)
            .u64(self.expiration_ms)
            .u64(self.price)
            .finish()
    }

    pub fn sign(&self, bank: &SigningKey) -> [u8; 64] {
        bank.sign(&self.signed_bytes()).to_bytes()
    }

    pub fn verify(&self, signature: &[u8; 64]) -> Result<(), EntryError> {
        verify(&self.bank, &self.signed_bytes(), signature, "bank")
    }

    /// The priceless notice the log needs for an abort.
    pub fn notice(&self) -> crate::entry::EscrowNotice {
        crate::entry::EscrowNotice {
            log_origin: self.log_origin.clone(),
            tid: self.tid,
            merchant: self.merchant,
            expiration_ms: self.expiration_ms,
        }
    }
}

/// Why a refund is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefundReason {
    /// The log recorded an abort for the TID.
    Abort,
    /// The committed key does not deliver the contract's goods.
    Dispute,
}

impl RefundReason {
    fn byte(self) -> u8 {
        match self {
            RefundReason::Abort => 1,
            RefundReason::Dispute => 2,
        }
    }
}

/// q asks for the escrowed value of `tid` back as fresh blind tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    #[serde(with = "hex_array")]
    pub bank: [u8; 32],
    pub tid: Tid,
    pub reason: RefundReason,
    #[serde(with = "hex_array")]
    pub customer: [u8; 32],
    pub blinded: Vec<BlindedMessage>,
}

impl Refund {
    pub fn signed_bytes(&self) -> Vec<u8> {
        let w = Writer::labelled(REFUND_LABEL)
            .fixed(&self.bank)
            .fixed(&self.tid.0)
            .u8(self.reason.byte())
            .fixed(&self.customer);
        blinded_list(w, &self.blinded).finish()
    }

    pub fn sign(&self, q: &SigningKey) -> [u8; 64] {
        q.sign(&self.signed_bytes()).to_bytes()
    }

    pub fn verify(&self, signature: &[u8; 64]) -> Result<(), EntryError> {
        verify(&self.customer, &self.signed_bytes(), signature, "customer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn offer() -> Offer {
        Offer {
            bank: key(1).verifying_key().to_bytes(),
            log_origin: "example.com/log".into(),
            tid: Tid([9; 16]),
            merchant: key(2).verifying_key().to_bytes(),
            customer: key(3).verifying_key().to_bytes(),
            expiration_ms: 1_800_000_000_000,
            price: 250,
            description: "a song".into(),
            ciphertext_hash: [4; 32],
            plaintext_hash: [5; 32],
        }
    }

    #[test]
    fn offer_signature_covers_every_field() {
        let o = offer();
        let sig = o.sign(&key(2));
        o.verify(&sig).expect("verifies");
        let mut m = o.clone();
        m.price += 1;
        assert!(m.verify(&sig).is_err());
        let mut m = o.clone();
        m.description.push('!');
        assert!(m.verify(&sig).is_err());
        let mut m = o.clone();
        m.ciphertext_hash[0] ^= 1;
        assert!(m.verify(&sig).is_err());
        let mut m = o.clone();
        m.description = "x".repeat(MAX_DESCRIPTION + 1);
        let sig = m.sign(&key(2));
        assert!(m.verify(&sig).is_err());
    }

    #[test]
    fn labels_separate_messages() {
        // The same terms signed as P3 do not verify as another message.
        let o = offer();
        let terms = o.terms();
        let sig = terms.sign(&key(1));
        terms.verify(&sig).expect("verifies");
        let notice = terms.notice();
        assert!(notice.verify(&terms.bank, &sig).is_err());
        let spend = Spend {
            terms: terms.clone(),
            customer: o.customer,
            token_ids: vec![[1; 32], [2; 32]],
            change: vec![],
        };
        let q = key(3);
        let sig = spend.sign(&q);
        spend.verify(&sig).expect("verifies");
        let mut other = spend.clone();
        other.token_ids.pop();
        assert!(other.verify(&sig).is_err());
        let mut other = spend.clone();
        other.change.push(BlindedMessage {
            denomination: [0; 32],
            message: vec![1, 2, 3],
        });
        assert!(other.verify(&sig).is_err());
    }

    #[test]
    fn refund_binds_reason_and_blinded() {
        let r = Refund {
            bank: [1; 32],
            tid: Tid([2; 16]),
            reason: RefundReason::Abort,
            customer: key(3).verifying_key().to_bytes(),
            blinded: vec![BlindedMessage {
                denomination: [7; 32],
                message: vec![8; 256],
            }],
        };
        let sig = r.sign(&key(3));
        r.verify(&sig).expect("verifies");
        let mut m = r.clone();
        m.reason = RefundReason::Dispute;
        assert!(m.verify(&sig).is_err());
        let mut m = r.clone();
        m.blinded[0].message[0] = 9;
        assert!(m.verify(&sig).is_err());
    }

    #[test]
    fn json_round_trip() {
        let o = offer();
        let text = serde_json::to_string(&o).expect("json");
        let back: Offer = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, o);
    }
}
