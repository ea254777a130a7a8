//! The customer's wallet of anonymous certified delivery: withdraws blind
//! tokens from an identified account (paper figure 1), buys information
//! goods with them anonymously (figure 2), accepts a goods key only with
//! the log's proof that the merchant committed it, and gets the money back
//! (refund after an abort, dispute after a bogus key) when a purchase
//! fails. One JSON file holds the whole state and is saved atomically
//! before every request that depends on it, so a crash at any point is
//! finished by [`Wallet::resume`].
//!
//! Layout:
//! - [`wallet`]: [`Wallet`] (create, open, withdraw, balance, verification
//!   of log proofs against the wallet's view of each log), [`Clock`].
//! - [`purchase`]: the purchase state machine: `start_purchase`,
//!   `register`, `request_offer`, `spend`, `deliver`, `settle`, `refund`,
//!   `cancel`, and `drive`/`buy`/`resume` that run them.
//! - [`certify`]: proof bundles of delivered purchases.
//! - [`checks`]: the customer's checks of every answer (pure).
//! - [`coins`]: denominations and token selection (pure).
//! - [`file`]: the wallet file and its crash-safe saving.
//! - [`report`]: typed, printable results of each step.
//! - [`error`]: the one error type, [`WalletError`].

pub mod certify;
pub mod checks;
pub mod coins;
pub mod error;
pub mod file;
pub mod purchase;
pub mod report;
pub mod wallet;

pub use error::WalletError;
pub use file::{PurchaseRecord, PurchaseState, WalletFile};
pub use report::{
    Balance, PurchaseOutcome, PurchaseReport, ResumeReport, Source, Step, WithdrawReport,
};
pub use wallet::{Clock, SystemClock, Wallet};
