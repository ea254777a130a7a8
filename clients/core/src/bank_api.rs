//! JSON bodies of the bank's and the merchant's HTTP APIs, shared by the
//! servers and their clients. Binary fields are lowercase hex, goods are
//! base64; what is signed is never the JSON but the canonical bytes of the
//! [`crate::purchase`] messages inside. Errors use
//! [`crate::log_api::ErrorBody`].
//!
//! Bank routes (paper step in brackets):
//! - `GET  /api/v1/info`: [`BankInfo`]
//! - `POST /api/v1/withdraw` [1]: [`WithdrawRequest`] → [`BlindSignatures`]
//! - `POST /api/v1/register` [3, 4]: [`RegisterRequest`] → [`SignedReceipt`]
//! - `POST /api/v1/spend` [P2, P3]: [`SpendRequest`] → [`SpendResponse`]
//! - `POST /api/v1/deposit`: [`DepositRequest`] → [`DepositResponse`]; a
//!   proof whose checkpoint lacks the cosignatures of the bank's witness
//!   policy is 422 `insufficient_cosignatures` (retry with a later proof),
//!   one the bank cannot verify is 400 `bad_proof`, one inconsistent with
//!   a checkpoint the bank accepted is 409 `inconsistent_checkpoint`
//! - `POST /api/v1/refund`: [`RefundRequest`] → [`BlindSignatures`]
//! - `POST /api/v1/dispute`: [`DisputeRequest`] → [`DisputeResponse`]
//! - admin, with `Authorization: Bearer <token>`:
//!   `POST /admin/v1/accounts` [`CreateAccount`] → [`AccountInfo`],
//!   `POST /admin/v1/credit` [`Credit`] → [`AccountInfo`],
//!   `GET /admin/v1/accounts/{key}` → [`AccountInfo`],
//!   `GET /admin/v1/sums` → [`Sums`].
//!
//! Merchant routes:
//! - `GET  /api/v1/catalog`: [`Catalog`]
//! - `POST /api/v1/offer` [P1]: [`OfferRequest`] → [`OfferResponse`]
//! - `POST /api/v1/purchase` [P3 → P4, P6]: [`PurchaseRequest`] → [`Delivery`]
//! - `GET  /api/v1/delivery/{tid}` [P6 again]: [`Delivery`]

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::entry::Tid;
use crate::log_api::{EntryProof, base64_vec, hex_array, hex_vec, hex_vecs};
use crate::purchase::{EscrowTerms, Offer, Receipt, Refund, Spend, Withdrawal};
use crate::token::Token;

/// A denomination as published: id, value and RSA key (SPKI DER in hex and
/// PEM, so that any RFC 9474 implementation can verify tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenominationInfo {
    #[serde(with = "hex_array")]
    pub id: [u8; 32],
    pub value: u64,
    #[serde(with = "hex_vec")]
    pub spki: Vec<u8>,
    pub pem: String,
}

/// A log the bank trusts: its note verifier key and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInfo {
    pub vkey: String,
    pub url: String,
}

/// The witness policy the bank applies to checkpoints: `threshold` of the
/// listed cosignature vkeys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    pub threshold: usize,
    pub witnesses: Vec<String>,
}

/// `GET /api/v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankInfo {
    /// The bank's ed25519 key (receipts, escrow terms, notices).
    #[serde(with = "hex_array")]
    pub bank: [u8; 32],
    pub denominations: Vec<DenominationInfo>,
    pub logs: Vec<LogInfo>,
    /// Longest time from now to an expiration the bank escrows for.
    pub max_expiration_ms: u64,
    /// Shortest time from now to an expiration the bank escrows for.
    pub min_expiration_ms: u64,
    pub witness_policy: PolicyInfo,
}

/// `POST /api/v1/withdraw`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    pub withdrawal: Withdrawal,
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

/// Blind signatures, in the order of the request's blinded messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlindSignatures {
    #[serde(with = "hex_vecs")]
    pub blind_signatures: Vec<Vec<u8>>,
}

/// `POST /api/v1/register`: bind the token to the customer key Q.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub token: Token,
    #[serde(with = "hex_array")]
    pub customer: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    pub receipt: Receipt,
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

/// `POST /api/v1/spend` (P2): the tokens, in the order of
/// `spend.token_ids`, and q's signature over the spend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendRequest {
    pub spend: Spend,
    pub tokens: Vec<Token>,
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

/// The bank's answer to P2: the signed terms for the merchant (P3), the
/// priceless notice signature for the log's abort, and the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendResponse {
    pub terms: EscrowTerms,
    #[serde(with = "hex_array")]
    pub terms_signature: [u8; 64],
    /// Signature over `terms.notice()` ([`crate::entry::EscrowNotice`]).
    #[serde(with = "hex_array")]
    pub notice_signature: [u8; 64],
    #[serde(with = "hex_vecs")]
    pub change: Vec<Vec<u8>>,
}

/// `POST /api/v1/deposit`: the commit entry with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositRequest {
    pub proof: EntryProof,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositResponse {
    pub tid: Tid,
    #[serde(with = "hex_array")]
    pub merchant: [u8; 32],
    pub amount: u64,
}

/// `POST /api/v1/refund` after an abort: q's signed refund and, unless the
/// bank logged the abort itself, the abort entry with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub refund: Refund,
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
    #[serde(default)]
    pub abort: Option<EntryProof>,
}

/// An offer with the merchant's signature (P1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedOffer {
    pub offer: Offer,
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

/// `POST /api/v1/dispute`: a bogus key. The signed offer, the ciphertext
/// as received, and the commit entry with its proof: evidence anyone can
/// check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeRequest {
    pub refund: Refund,
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
    pub offer: SignedOffer,
    #[serde(with = "base64_vec")]
    pub ciphertext: Vec<u8>,
    pub commit: EntryProof,
}

/// What the bank found in a dispute it upheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeFinding {
    /// The logged key does not decrypt the ciphertext.
    KeyDoesNotDecrypt,
    /// It decrypts, but not to goods with the contract's hash.
    WrongGoods,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeResponse {
    pub finding: DisputeFinding,
    #[serde(with = "hex_vecs")]
    pub blind_signatures: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Customer,
    Merchant,
}

/// `POST /admin/v1/accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    #[serde(with = "hex_array")]
    pub key: [u8; 32],
    pub kind: AccountKind,
}

/// `POST /admin/v1/credit`: money entering the system (a customer's
/// deposit of outside funds). The request id makes it safe to retry: the
/// bank credits each (account, request id) once, and answers a repeat with
/// the account as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    #[serde(with = "hex_array")]
    pub key: [u8; 32],
    pub amount: u64,
    #[serde(with = "hex_array")]
    pub request_id: [u8; 16],
}

impl Credit {
    /// A credit with a fresh random request id drawn from `rng`; send this
    /// same value again to retry it.
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R, key: [u8; 32], amount: u64) -> Credit {
        let mut request_id = [0u8; 16];
        rng.fill_bytes(&mut request_id);
        Credit {
            key,
            amount,
            request_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    #[serde(with = "hex_array")]
    pub key: [u8; 32],
    pub kind: AccountKind,
    /// Negative only for a merchant debited by disputes after payment.
    pub balance: i64,
}

/// `GET /admin/v1/sums`: the conservation check (invariant 5). `credited`
/// is all money ever brought in; it must equal the sum of the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sums {
    pub credited: u64,
    pub customer_balances: i64,
    pub merchant_balances: i64,
    /// Value of tokens signed and not yet spent (withdrawals, change,
    /// refunds minus tokens spent).
    pub live_tokens: u64,
    pub escrowed: u64,
    /// True when `credited == balances + live_tokens + escrowed`.
    pub conserved: bool,
}

/// An item of a merchant's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogItem {
    pub id: String,
    pub description: String,
    pub price: u64,
}

/// `GET /api/v1/catalog` (merchant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    #[serde(with = "hex_array")]
    pub merchant: [u8; 32],
    #[serde(with = "hex_array")]
    pub bank: [u8; 32],
    pub log_origin: String,
    pub items: Vec<CatalogItem>,
}

/// `POST /api/v1/offer` (merchant): ask for an offer on an item, for the
/// customer key Q.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferRequest {
    pub item: String,
    #[serde(with = "hex_array")]
    pub customer: [u8; 32],
}

/// P1: the signed offer and the encrypted goods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferResponse {
    pub offer: SignedOffer,
    #[serde(with = "base64_vec")]
    pub ciphertext: Vec<u8>,
}

/// `POST /api/v1/purchase` (merchant): the bank's P3 terms for an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    pub terms: EscrowTerms,
    #[serde(with = "hex_array")]
    pub terms_signature: [u8; 64],
}

/// P6: the key k and the commit entry that publishes it, with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    #[serde(with = "hex_array")]
    pub key: [u8; 32],
    pub commit: EntryProof,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let body = r#"{"token":{"denomination":"00","serial":"00","randomizer":"00","signature":""},"customer":"00","extra":1}"#;
        assert!(serde_json::from_str::<RegisterRequest>(body).is_err());
    }

    #[test]
    fn blind_signatures_round_trip() {
        let b = BlindSignatures {
            blind_signatures: vec![vec![1, 2], vec![]],
        };
        let text = serde_json::to_string(&b).expect("json");
        assert_eq!(text, r#"{"blind_signatures":["0102",""]}"#);
        assert_eq!(
            serde_json::from_str::<BlindSignatures>(&text).expect("parses"),
            b
        );
    }
}
