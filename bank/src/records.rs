//! What the ledger stores, and where. One sled tree; every key starts with
//! a short prefix naming its table, values are JSON:
//!
//! | key | value |
//! |---|---|
//! | `acct/` account key (32) | [`Account`]: kind and balance |
//! | `credit/` account key (32) ‖ request id (16) | [`CreditRecord`]: the amount credited |
//! | `wdr/` account key (32) ‖ request id (16) | [`WithdrawalRecord`]: request digest and blind signatures |
//! | `reg/` token id h(t) (32) | [`Registration`]: Q and the receipt signature |
//! | `spent/` token id (32) | the TID (16 raw bytes) it was spent for |
//! | `escrow/` TID (16) | [`Escrow`]: terms, Q, token ids, status, proofs, refund |
//! | `due/` expiration (u64 BE) ‖ TID (16) | empty: the escrows still `Escrowed`, by expiration, for the sweeper |
//! | `ckpt/` log origin | tree size (u64 BE) ‖ the latest checkpoint seen of that log |
//! | `totals` | [`Totals`]: the maintained sums |
//!
//! Privacy: registrations, spends and escrows hold token ids, Q and TIDs,
//! never a customer's account key; withdrawals hold the account key and
//! digests of blinded messages, which the blinding makes unlinkable to
//! tokens. The only account key in an escrow is the merchant's, which the
//! terms name.

use acd_core::bank_api::{AccountKind, DisputeFinding, SpendResponse};
use acd_core::entry::Tid;
use acd_core::log_api::{EntryProof, hex_array, hex_hashes, hex_vecs};
use acd_core::purchase::{EscrowTerms, RefundReason};
use serde::{Deserialize, Serialize};

pub const ACCOUNT: &[u8] = b"acct/";
pub const CREDIT: &[u8] = b"credit/";
pub const WITHDRAWAL: &[u8] = b"wdr/";
pub const REGISTRATION: &[u8] = b"reg/";
pub const SPENT: &[u8] = b"spent/";
pub const ESCROW: &[u8] = b"escrow/";
pub const DUE: &[u8] = b"due/";
pub const CHECKPOINT: &[u8] = b"ckpt/";
pub const TOTALS: &[u8] = b"totals";

fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

pub fn account_key(account: &[u8; 32]) -> Vec<u8> {
    key(ACCOUNT, &[account])
}

pub fn credit_key(account: &[u8; 32], request_id: &[u8; 16]) -> Vec<u8> {
    key(CREDIT, &[account, request_id])
}

pub fn withdrawal_key(account: &[u8; 32], request_id: &[u8; 16]) -> Vec<u8> {
    key(WITHDRAWAL, &[account, request_id])
}

pub fn registration_key(token_id: &[u8; 32]) -> Vec<u8> {
    key(REGISTRATION, &[token_id])
}

pub fn spent_key(token_id: &[u8; 32]) -> Vec<u8> {
    key(SPENT, &[token_id])
}

pub fn escrow_key(tid: &Tid) -> Vec<u8> {
    key(ESCROW, &[&tid.0])
}

pub fn due_key(expiration_ms: u64, tid: &Tid) -> Vec<u8> {
    key(DUE, &[&expiration_ms.to_be_bytes(), &tid.0])
}

pub fn checkpoint_key(origin: &str) -> Vec<u8> {
    key(CHECKPOINT, &[origin.as_bytes()])
}

/// An account: a customer's (withdraws) or a merchant's (is paid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub kind: AccountKind,
    /// Negative only for a merchant debited by disputes after payment.
    pub balance: i64,
}

/// A credit as decided, for idempotent retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRecord {
    pub amount: u64,
}

/// A withdrawal as decided, for idempotent retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalRecord {
    /// SHA-256 of the withdrawal's signed bytes.
    #[serde(with = "hex_array")]
    pub digest: [u8; 32],
    #[serde(with = "hex_vecs")]
    pub blind_signatures: Vec<Vec<u8>>,
}

/// h(t) bound to Q (paper step 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    #[serde(with = "hex_array")]
    pub customer: [u8; 32],
    /// The bank's receipt signature.
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

/// Where an escrow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscrowStatus {
    /// The price is held; no outcome known yet.
    Escrowed,
    /// The bank logged the abort itself; the price is held for the refund.
    AbortLogged,
    /// The merchant was paid on a proven commit.
    Paid,
    /// Refunded to Q after an abort.
    Refunded,
    /// Refunded to Q on an upheld dispute.
    Disputed,
}

impl EscrowStatus {
    /// Is the price still held by the bank?
    pub fn holds_money(self) -> bool {
        matches!(self, EscrowStatus::Escrowed | EscrowStatus::AbortLogged)
    }
}

/// A refund as decided, for idempotent retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    /// SHA-256 of the refund's signed bytes.
    #[serde(with = "hex_array")]
    pub digest: [u8; 32],
    pub reason: RefundReason,
    #[serde(default)]
    pub finding: Option<DisputeFinding>,
    #[serde(with = "hex_vecs")]
    pub blind_signatures: Vec<Vec<u8>>,
}

/// One purchase's escrow (P2, P3) and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    pub terms: EscrowTerms,
    /// Q: the key that signed the spend and may ask for the refund.
    #[serde(with = "hex_array")]
    pub customer: [u8; 32],
    #[serde(with = "hex_hashes")]
    pub token_ids: Vec<[u8; 32]>,
    /// SHA-256 of the spend's signed bytes: an identical repeat gets the
    /// same answer.
    #[serde(with = "hex_array")]
    pub spend_digest: [u8; 32],
    /// The answer to the spend (terms, signatures, change).
    pub response: SpendResponse,
    pub status: EscrowStatus,
    /// The abort entry with its proof, once known.
    #[serde(default)]
    pub abort: Option<EntryProof>,
    #[serde(default)]
    pub refund: Option<RefundRecord>,
}

/// The sums the ledger maintains with every change (protocol invariant 5):
/// `credited == customer_balances + merchant_balances + live_tokens +
/// escrowed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub credited: u64,
    pub customer_balances: i64,
    pub merchant_balances: i64,
    pub live_tokens: u64,
    pub escrowed: u64,
}

impl Totals {
    pub fn conserved(&self) -> bool {
        i128::from(self.credited)
            == i128::from(self.customer_balances)
                + i128::from(self.merchant_balances)
                + i128::from(self.live_tokens)
                + i128::from(self.escrowed)
    }
}
