//! The customer's wallet of anonymous certified delivery: withdraws blind
//! tokens from an identified account (paper figure 1), buys information
//! goods with them anonymously (figure 2), accepts a goods key only with
//! the log's proof that the merchant committed it, and gets the money back
//! (refund after an abort, dispute after a bogus key) when a purchase
//! fails. One JSON file holds the whole state and is saved atomically
//! before every request that depends on it, so a crash at any point is
//! finished by [`Wallet::resume`].
//!
//! Layout, one file per step of the customer:
//! - [`wallet`]: [`Wallet`] (create, open, balance, verification of log
//!   proofs against the wallet's view of each log), [`Clock`], the
//!   injected randomness ([`wallet::Rng`]).
//! - [`withdraw`]: figure 1, steps 1 and 2: blind tokens from the account.
//! - [`purchase`]: the purchase state machine and its first steps: `buy`,
//!   `start_purchase`, `register` (steps 3 and 4), `request_offer` (P1),
//!   `spend` (P2/P3), `cancel`.
//! - [`deliver`]: P3 to P6, the key accepted only with a proven commit.
//! - [`settle`]: Q1/Q2, the log's outcome, and the abort.
//! - [`refund`]: the money back after an abort.
//! - [`dispute`]: the money back after a bogus key or wrong goods.
//! - [`resume`]: `step`, `drive` and `resume`, which run the steps.
//! - [`certify`]: proof bundles of delivered purchases.
//! - [`checks`]: the customer's checks of every answer (pure).
//! - [`coins`]: denominations and token selection (pure).
//! - [`file`]: the wallet file and its crash-safe saving.
//! - [`report`]: typed, printable results of each step.
//! - [`error`]: the one error type, [`WalletError`].

pub mod certify;
pub mod checks;
pub mod coins;
pub mod deliver;
pub mod dispute;
pub mod error;
pub mod file;
pub mod purchase;
pub mod refund;
pub mod report;
pub mod resume;
pub mod settle;
pub mod wallet;
pub mod withdraw;

pub use error::WalletError;
pub use file::{PurchaseRecord, PurchaseState, WalletFile};
pub use report::{
    Balance, PurchaseOutcome, PurchaseReport, ResumeReport, Source, Step, WithdrawReport,
};
pub use wallet::{Clock, SystemClock, Wallet};
