//! The bank's engine: one file per protocol step, each holding the step's
//! request checks, its crypto (signatures, token verification, proofs,
//! blind signing on the blocking pool) and its ledger rule (a
//! [`LedgerOp`](crate::ledger::LedgerOp) decided by the single writer).
//! Steps take the typed requests of [`acd_core::bank_api`], answer with a
//! typed reply and refuse with a [`DomainError`]; none knows about HTTP.
//!
//! - [`withdraw`]: figure 1 step 1, blind tokens against a balance.
//! - [`register`]: figure 1 steps 3 and 4, a token bound to a key Q.
//! - [`spend`]: P2, escrow for a purchase with change, answering P3.
//! - [`deposit`]: the merchant paid on a proven commit.
//! - [`abort`]: an expired escrow aborted at its log (the sweeper's step).
//! - [`refund`]: fresh blind tokens after an abort.
//! - [`dispute`]: fresh blind tokens after an upheld dispute.
//! - [`account`]: the operator's steps: accounts, credits, the sums.
//!
//! Blind signatures made by a step leave the bank only if its op commits.

pub mod abort;
pub mod account;
pub mod deposit;
pub mod dispute;
pub mod refund;
pub mod register;
pub mod spend;
pub mod withdraw;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use acd_core::bank_api::BankInfo;
use acd_core::clock::Clock;
use acd_core::entry::LogEntry;
use acd_core::error::DomainError;
use acd_core::log_api::EntryProof;
use acd_core::proof::WitnessPolicy;
use acd_core::purchase::MAX_ITEMS;
use acd_core::token::{BlindedMessage, Token};
use acd_serve::{AdminToken, AdminTokenSource};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::DenominationKey;
use crate::ledger::{Ledger, Tx, corrupt_totals};
use crate::logs::{self, Logs, Proven};
use crate::metrics::BankMetrics;
use crate::records::{Escrow, EscrowStatus, Totals, due_key};
use crate::signer::SignerError;
use crate::writer::WriterHandle;

/// The engine: everything the steps share.
pub struct BankState {
    pub(crate) signing: SigningKey,
    /// The bank's ed25519 public key.
    pub public: [u8; 32],
    pub(crate) denominations: HashMap<[u8; 32], DenominationKey>,
    pub(crate) logs: Logs,
    pub(crate) policy: WitnessPolicy,
    pub(crate) info: BankInfo,
    pub(crate) admin_token: AdminToken,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) writer: WriterHandle,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<BankMetrics>,
    pub(crate) min_expiration_ms: u64,
    pub(crate) max_expiration_ms: u64,
    pub(crate) http: reqwest::Client,
}

impl AdminTokenSource for BankState {
    fn admin_token(&self) -> Option<&AdminToken> {
        Some(&self.admin_token)
    }
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Runs CPU-heavy work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DomainError> + Send + 'static,
) -> Result<T, DomainError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DomainError::internal(format!("blocking task: {e}")))?
}

pub(crate) fn bad_signature(e: impl std::fmt::Display) -> DomainError {
    DomainError::bad("bad_signature", e.to_string())
}

pub(crate) fn check_key(key: &[u8; 32], what: &str) -> Result<(), DomainError> {
    ed25519_dalek::VerifyingKey::from_bytes(key)
        .map(|_| ())
        .map_err(|_| DomainError::bad("bad_key", format!("{what} is not an ed25519 key")))
}

/// Does a proven entry (of a refund's abort or a dispute's commit) name
/// the escrow's TID, merchant, expiration and log, within the log's
/// expiration rule?
pub(crate) fn entry_matches(
    entry: &LogEntry,
    origin: &str,
    escrow: &Escrow,
) -> Result<(), DomainError> {
    let t = &escrow.terms;
    if entry.tid() != t.tid
        || entry.merchant() != t.merchant
        || entry.expiration_ms() != t.expiration_ms
        || origin != t.log_origin
    {
        return Err(DomainError::bad(
            "entry_mismatch",
            "the entry's TID, merchant, expiration or log differ from the escrow's terms",
        ));
    }
    if !entry.timely() {
        return Err(DomainError::bad(
            "untimely_entry",
            "the entry breaks the log's expiration rule",
        ));
    }
    Ok(())
}

impl BankState {
    /// The ledger (committed state).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// What `GET /api/v1/info` serves.
    pub fn info(&self) -> &BankInfo {
        &self.info
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub(crate) fn check_ours(&self, bank: &[u8; 32]) -> Result<(), DomainError> {
        if bank != &self.public {
            return Err(DomainError::bad(
                "wrong_bank",
                "the message is addressed to another bank",
            ));
        }
        Ok(())
    }

    fn denomination_value(&self, id: &[u8; 32]) -> Result<u64, DomainError> {
        self.denominations
            .get(id)
            .map(|d| d.denomination.value)
            .ok_or_else(|| {
                DomainError::bad(
                    "unknown_denomination",
                    format!("no denomination {}", hex::encode(id)),
                )
            })
    }

    /// Checks a list of blinded messages (count, denominations, sizes) and
    /// returns their total value.
    pub(crate) fn check_blinded(
        &self,
        list: &[BlindedMessage],
        allow_empty: bool,
    ) -> Result<u64, DomainError> {
        if list.len() > MAX_ITEMS || (list.is_empty() && !allow_empty) {
            return Err(DomainError::bad(
                "bad_item_count",
                format!("between 1 and {MAX_ITEMS} blinded messages are needed"),
            ));
        }
        let mut total = 0u64;
        for b in list {
            let d = self.denominations.get(&b.denomination).ok_or_else(|| {
                DomainError::bad(
                    "unknown_denomination",
                    format!("no denomination {}", hex::encode(b.denomination)),
                )
            })?;
            if b.message.len() != d.denomination.modulus_bytes() {
                return Err(DomainError::bad(
                    "bad_blinded_message",
                    format!(
                        "a blinded message has {} bytes, the key {}",
                        b.message.len(),
                        d.denomination.modulus_bytes()
                    ),
                ));
            }
            total = total
                .checked_add(d.denomination.value)
                .ok_or_else(|| DomainError::bad("overflow", "the total is out of range"))?;
        }
        Ok(total)
    }

    /// Blind-signs `list` (already checked) on the blocking pool, so that
    /// signing runs on every core and never inside the writer.
    pub(crate) async fn sign_blinded(
        &self,
        list: Vec<BlindedMessage>,
    ) -> Result<Vec<Vec<u8>>, DomainError> {
        let signers = list
            .iter()
            .map(|b| {
                self.denominations
                    .get(&b.denomination)
                    .map(|d| d.signer.clone())
                    .ok_or_else(|| DomainError::bad("unknown_denomination", "unknown denomination"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        blocking(move || {
            list.iter()
                .zip(signers)
                .map(|(b, signer)| {
                    signer.blind_sign(&b.message).map_err(|e| match e {
                        SignerError::Length { .. } | SignerError::OutOfRange => {
                            DomainError::bad("bad_blinded_message", e.to_string())
                        }
                        SignerError::Key(_) | SignerError::Rsa(_) | SignerError::Faulty => {
                            DomainError::internal(format!("blind signing: {e}"))
                        }
                    })
                })
                .collect()
        })
        .await
    }

    /// Verifies tokens under their denominations on the blocking pool;
    /// returns their total value.
    pub(crate) async fn verify_tokens(
        self: &Arc<Self>,
        tokens: Vec<Token>,
    ) -> Result<u64, DomainError> {
        let mut total = 0u64;
        for t in &tokens {
            total = total
                .checked_add(self.denomination_value(&t.denomination)?)
                .ok_or_else(|| DomainError::bad("overflow", "the total is out of range"))?;
        }
        let state = self.clone();
        blocking(move || {
            for t in &tokens {
                let d = state.denominations.get(&t.denomination).ok_or_else(|| {
                    DomainError::bad("unknown_denomination", "unknown denomination")
                })?;
                t.verify(&d.denomination).map_err(|e| {
                    DomainError::bad("bad_token", format!("token {}: {e}", hex::encode(t.id())))
                })?;
            }
            Ok(())
        })
        .await?;
        Ok(total)
    }

    /// Checks an entry proof of a trusted log under the witness policy.
    pub(crate) async fn prove(&self, proof: &EntryProof) -> Result<Proven, DomainError> {
        logs::prove(&self.logs, &self.http, proof, &self.policy).await
    }
}

/// Releases an escrow's price from the held total and the due index
/// (deposit, refund, dispute).
pub(crate) fn release(tx: &mut Tx<'_>, e: &Escrow, t: &mut Totals) -> Result<(), DomainError> {
    t.escrowed = t
        .escrowed
        .checked_sub(e.terms.price)
        .ok_or_else(corrupt_totals)?;
    if e.status == EscrowStatus::Escrowed {
        tx.delete(due_key(e.terms.expiration_ms, &e.terms.tid));
    }
    Ok(())
}
