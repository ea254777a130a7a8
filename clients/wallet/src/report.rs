//! What the wallet did, step by step: typed results that a program can
//! match and a person can read (every type here implements `Display`).

use std::fmt;
use std::path::PathBuf;

use acd_core::bank_api::DisputeFinding;
use acd_core::entry::Tid;
use acd_core::purchase::RefundReason;

use crate::file::PurchaseState;

/// Who answered with the commit that delivered the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The merchant's delivery (P6).
    Merchant,
    /// The log, asked by TID (Q1/Q2).
    Log,
}

/// One step of a purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The catalog named the item's price.
    Catalog {
        item: String,
        description: String,
        price: u64,
    },
    /// Tokens chosen to pay; `reused_key` when they include tokens already
    /// registered to the key of a purchase that stopped before paying.
    Selected {
        tokens: Vec<u64>,
        total: u64,
        change: Vec<u64>,
        reused_key: bool,
    },
    /// Step 3/4: every token registered to Q, receipts verified.
    Registered { tokens: usize },
    /// P1: the offer verified.
    Offer {
        tid: Tid,
        merchant: [u8; 32],
        price: u64,
        expiration_ms: u64,
        log_origin: String,
        description: String,
    },
    /// P2/P3: the bank escrowed the price and returned the change.
    Escrowed { tid: Tid, price: u64, change: u64 },
    /// The merchant failed to deliver; the log decides.
    MerchantFailed { reason: String },
    /// A proven commit entry (its key and inclusion in the log).
    Commit {
        source: Source,
        index: u64,
        tree_size: u64,
        key: [u8; 32],
    },
    /// The log has no outcome yet.
    NoOutcomeYet { expiration_ms: u64, now_ms: u64 },
    /// The wallet asked the log to abort the expired transaction.
    AbortRequested,
    /// A proven abort entry.
    Abort { index: u64, tree_size: u64 },
    /// The goods decrypted and matched the contract, and were written.
    Goods { bytes: usize, path: PathBuf },
    /// The logged key does not deliver the contract's goods.
    BadGoods { finding: DisputeFinding },
    /// The bank refunded the escrowed price as fresh tokens.
    Refunded {
        reason: RefundReason,
        amount: u64,
        tokens: usize,
    },
    /// The purchase stopped before anything was spent.
    Cancelled { reason: String },
}

/// A time in ms since the Unix epoch as an RFC 3339 UTC time to the second.
pub fn time(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn short(b: &[u8]) -> String {
    hex::encode(&b[..b.len().min(8)])
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Catalog {
                item,
                description,
                price,
            } => write!(f, "catalog: {item} ({description}) costs {price}"),
            Step::Selected {
                tokens,
                total,
                change,
                reused_key,
            } => {
                write!(f, "paying with tokens {tokens:?} (total {total})")?;
                if !change.is_empty() {
                    write!(f, ", change {change:?}")?;
                }
                if *reused_key {
                    write!(f, ", under the key of an unfinished purchase")?;
                }
                Ok(())
            }
            Step::Registered { tokens } => write!(
                f,
                "registered {tokens} token(s) to a fresh key; the bank's receipts verify"
            ),
            Step::Offer {
                tid,
                merchant,
                price,
                expiration_ms,
                log_origin,
                description,
            } => write!(
                f,
                "P1 offer verified: TID {tid}, merchant {}…, {description:?} for {price}, log {log_origin}, expires at {}",
                short(merchant),
                time(*expiration_ms)
            ),
            Step::Escrowed { tid, price, change } => write!(
                f,
                "P2/P3 the bank escrowed {price} for TID {tid}; change {change} unblinded and verified"
            ),
            Step::MerchantFailed { reason } => {
                write!(f, "the merchant did not deliver ({reason}); asking the log")
            }
            Step::Commit {
                source,
                index,
                tree_size,
                key,
            } => write!(
                f,
                "commit entry #{index} proven in the log's tree of {tree_size} ({}), key {}…",
                match source {
                    Source::Merchant => "P6 from the merchant",
                    Source::Log => "Q1/Q2 from the log",
                },
                short(key)
            ),
            Step::NoOutcomeYet {
                expiration_ms,
                now_ms,
            } => write!(
                f,
                "the log has no outcome yet; it expires at {} (in {} s)",
                time(*expiration_ms),
                expiration_ms.saturating_sub(*now_ms) / 1000
            ),
            Step::AbortRequested => {
                write!(f, "expired: asked the log to abort with the bank's notice")
            }
            Step::Abort { index, tree_size } => {
                write!(
                    f,
                    "abort entry #{index} proven in the log's tree of {tree_size}"
                )
            }
            Step::Goods { bytes, path } => write!(
                f,
                "decrypted {bytes} bytes matching the contract's hash, written to {}",
                path.display()
            ),
            Step::BadGoods { finding } => write!(
                f,
                "the logged key does not deliver the goods ({}); disputing",
                match finding {
                    DisputeFinding::KeyDoesNotDecrypt => "it does not decrypt",
                    DisputeFinding::WrongGoods => "wrong plaintext hash",
                }
            ),
            Step::Refunded {
                reason,
                amount,
                tokens,
            } => write!(
                f,
                "refund after {}: {amount} back as {tokens} fresh token(s)",
                match reason {
                    RefundReason::Abort => "the abort",
                    RefundReason::Dispute => "the dispute",
                }
            ),
            Step::Cancelled { reason } => {
                write!(
                    f,
                    "cancelled before paying: {reason}; the tokens stay in the wallet"
                )
            }
        }
    }
}

/// How a purchase ended (or where it stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseOutcome {
    Delivered {
        path: PathBuf,
        bytes: usize,
    },
    Refunded {
        reason: RefundReason,
        amount: u64,
    },
    Cancelled {
        reason: String,
    },
    /// Not finished: the log has no outcome yet and the caller did not
    /// want to wait; `resume` continues.
    Pending {
        state: PurchaseState,
    },
}

impl fmt::Display for PurchaseOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PurchaseOutcome::Delivered { path, bytes } => {
                write!(f, "delivered: {bytes} bytes in {}", path.display())
            }
            PurchaseOutcome::Refunded { reason, amount } => {
                write!(f, "refunded {amount} ({reason:?})")
            }
            PurchaseOutcome::Cancelled { reason } => write!(f, "cancelled: {reason}"),
            PurchaseOutcome::Pending { state } => {
                write!(f, "pending ({state}); run resume later")
            }
        }
    }
}

/// Everything that happened in one purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseReport {
    /// The wallet's id of the purchase.
    pub id: u64,
    pub tid: Option<Tid>,
    pub steps: Vec<Step>,
    pub outcome: PurchaseOutcome,
}

impl fmt::Display for PurchaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tid {
            Some(tid) => writeln!(f, "purchase {} (TID {tid}):", self.id)?,
            None => writeln!(f, "purchase {}:", self.id)?,
        }
        for s in &self.steps {
            writeln!(f, "  - {s}")?;
        }
        write!(f, "  => {}", self.outcome)
    }
}

/// A withdrawal's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawReport {
    pub amount: u64,
    /// Values of the tokens unblinded and verified.
    pub tokens: Vec<u64>,
    /// Requests sent (one per [`acd_core::purchase::MAX_ITEMS`] tokens).
    pub requests: usize,
}

impl fmt::Display for WithdrawReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "withdrew {} as {} token(s) {:?} in {} request(s); each unblinded and verified",
            self.amount,
            self.tokens.len(),
            self.tokens,
            self.requests
        )
    }
}

/// What the wallet holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Balance {
    /// Value of the spendable tokens.
    pub spendable: u64,
    pub tokens: usize,
    /// Part of `spendable` already registered to the key of a purchase
    /// that stopped before paying: still the customer's, and spent first
    /// (under that key) by the next purchase. Not shown: it is no purchase's.
    pub bound: u64,
    /// Value of withdrawals sent but not yet unblinded.
    pub withdrawing: u64,
    /// Value held by purchases that have no outcome yet (see
    /// [`crate::file::PurchaseRecord::at_stake`]): never also counted in
    /// `spendable`.
    pub in_purchases: u64,
    /// Count of spendable tokens by value, ascending.
    pub by_value: Vec<(u64, usize)>,
    /// Value of the tokens set aside because the bank refused them (not
    /// part of `spendable`).
    pub set_aside: u64,
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spendable {} in {} token(s)",
            self.spendable, self.tokens
        )?;
        if !self.by_value.is_empty() {
            let parts: Vec<String> = self
                .by_value
                .iter()
                .map(|(v, n)| format!("{n}x{v}"))
                .collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        if self.withdrawing > 0 {
            write!(f, "; {} being withdrawn", self.withdrawing)?;
        }
        if self.in_purchases > 0 {
            write!(f, "; {} in unfinished purchases", self.in_purchases)?;
        }
        if self.set_aside > 0 {
            write!(
                f,
                "; {} set aside (the bank reports it spent)",
                self.set_aside
            )?;
        }
        Ok(())
    }
}

/// What `resume` did.
#[derive(Debug, Default)]
pub struct ResumeReport {
    pub withdrawals: Vec<Result<WithdrawReport, crate::WalletError>>,
    pub purchases: Vec<(u64, Result<PurchaseReport, crate::WalletError>)>,
}

impl ResumeReport {
    /// True when something could not be finished.
    pub fn has_errors(&self) -> bool {
        self.withdrawals.iter().any(Result::is_err)
            || self.purchases.iter().any(|(_, r)| r.is_err())
    }
}

impl fmt::Display for ResumeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.withdrawals.is_empty() && self.purchases.is_empty() {
            return write!(f, "nothing to resume");
        }
        for w in &self.withdrawals {
            match w {
                Ok(r) => writeln!(f, "{r}")?,
                Err(e) => writeln!(f, "withdrawal: {e}")?,
            }
        }
        for (id, p) in &self.purchases {
            match p {
                Ok(r) => writeln!(f, "{r}")?,
                Err(e) => writeln!(f, "purchase {id}: {e}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balance_names_no_purchase_it_does_not_have() {
        // Tokens left registered to the key of a cancelled purchase are
        // spendable and belong to no purchase: the balance says so.
        let b = Balance {
            spendable: 20,
            tokens: 2,
            bound: 10,
            by_value: vec![(10, 2)],
            ..Balance::default()
        };
        assert_eq!(b.to_string(), "spendable 20 in 2 token(s) (2x10)");
        let b = Balance {
            in_purchases: 10,
            ..b
        };
        assert!(b.to_string().ends_with("; 10 in unfinished purchases"));
    }

    #[test]
    fn times_are_rfc_3339() {
        assert_eq!(time(0), "1970-01-01T00:00:00Z");
        assert_eq!(time(1_764_806_400_999), "2025-12-04T00:00:00Z");
    }
}
