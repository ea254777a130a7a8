//! The wallet's one error type.

use std::path::{Path, PathBuf};

use acd_client::ClientError;
use acd_core::proof::ProofError;
use acd_core::token::TokenError;
use thiserror::Error;

use crate::checks::CheckError;
use crate::coins::CoinError;
use crate::file::PurchaseState;

#[derive(Debug, Error)]
pub enum WalletError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a usable wallet file: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{} exists already; refusing to overwrite a wallet", .0.display())]
    Exists(PathBuf),
    /// Another command has the wallet open; it waited `waited_ms`.
    #[error(
        "{} is in use by another command (waited {waited_ms} ms); try again when it has finished",
        path.display()
    )]
    Busy { path: PathBuf, waited_ms: u64 },
    /// The goods cannot be written to `path`: found before paying, or after
    /// (then the purchase waits in `unwritten` for `resume --out PATH`).
    #[error("cannot write the goods to {}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bank refused a token as spent or registered to another key; it
    /// was set aside and the purchase cancelled, to start again without it.
    #[error("the bank refused a token of {value} ({reason}); it was set aside")]
    TokenSetAside { value: u64, reason: String },
    /// No purchase waits to have its goods written, or several do.
    #[error("{0}")]
    NoUnwritten(String),
    /// No token matches what was asked for.
    #[error("{0}")]
    NoToken(String),
    /// The wallet was opened read-only.
    #[error("{} is open read-only", .0.display())]
    ReadOnly(PathBuf),
    /// A server could not be reached, refused, or answered nonsense.
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the bank's info is unusable: {0}")]
    BankInfo(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Coins(#[from] CoinError),
    /// A server's answer failed the wallet's checks.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// A proof from a log failed (signature, witnesses, inclusion).
    #[error("log {origin}: {error}")]
    Log { origin: String, error: ProofError },
    /// A log showed a checkpoint that is not consistent with one it showed
    /// before: both signed notes are the evidence of its misbehaviour.
    #[error("log {origin} forked: {error}")]
    LogInconsistent {
        origin: String,
        error: ProofError,
        /// The checkpoint the wallet had accepted before.
        old: String,
        /// The checkpoint that does not extend it.
        new: String,
    },
    #[error("proof bundle: {0}")]
    Bundle(acd_core::bundle::BundleError),
    #[error("the bank does not trust a log named {0:?}")]
    UnknownLog(String),
    #[error("the merchant has no item {0:?}")]
    UnknownItem(String),
    #[error("no purchase {0}")]
    UnknownPurchase(String),
    #[error("purchase {id} is {state}: {wanted}")]
    WrongState {
        id: u64,
        state: PurchaseState,
        wanted: &'static str,
    },
}

impl WalletError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        WalletError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// True when a server refused the request itself (a 4xx answer), so
    /// that it had no effect; anything else (no answer, a 5xx) leaves the
    /// effect unknown and the same request must be repeated.
    pub fn is_refusal(&self) -> bool {
        match self {
            WalletError::Client(e) => e.status().is_some_and(|s| (400..500).contains(&s)),
            _ => false,
        }
    }
}
