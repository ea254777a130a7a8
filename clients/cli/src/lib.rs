//! The `acd` command line as a library: each command's arguments and what
//! it runs, so that `main` only parses and dispatches.
//!
//! Layout:
//! - [`log_client`]: typed HTTP client of the log, which verifies every
//!   answer (checkpoint signature, inclusion proof) before returning it.
//! - [`loadgen_cmd`]: `acd loadgen`, over [`loadgen`] (`acd loadgen log`)
//!   and [`loadgen_purchases`] (`acd loadgen purchases`).
//! - [`demo`]: `acd demo`, the all-in-one walk-through.
//! - [`merchant_cmd`]: `acd merchant serve`, `key`, `backup`, `restore`.
//! - [`wallet_cmd`]: `acd wallet` (init, catalog, withdraw, balance,
//!   history, buy, resume, proof, export-token).
//! - [`progress`]: progress bars and lines for long work.
//! - [`verify`]: `acd verify FILE`, offline checking of proof bundles.
//! - [`output`]: standard output that ends quietly on a closed pipe.

#[macro_use]
pub mod output;

pub mod demo;
pub mod loadgen;
pub mod loadgen_cmd;
pub mod loadgen_purchases;
pub mod merchant_cmd;
pub mod progress;
pub mod verify;
pub mod wallet_cmd;
pub use acd_client::log as log_client;

/// A fresh random ed25519 key (customer q, load-test accounts).
pub fn fresh_key() -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    ed25519_dalek::SigningKey::from_bytes(&seed)
}
