//! HTTP clients of the three servers, shared by the wallet, the merchant,
//! the bank (which reads logs) and the command line.
//!
//! - [`log`]: the log's API; every entry it returns is verified against a
//!   checkpoint signed by the log's key.
//! - [`bank`]: the bank's API.
//! - [`merchant`]: a merchant's shop.
//! - [`error`]: the one error type, with the server's JSON error body.

pub mod bank;
pub mod error;
pub mod log;
pub mod merchant;

pub use error::ClientError;
