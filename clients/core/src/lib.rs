//! The protocol core of anonymous certified delivery: every byte format that
//! the parties sign, hash or exchange, and the checks on them. No I/O, no
//! async: a wallet, an auditor or a third-party verifier needs only this.
//!
//! Layout:
//! - [`merkle`]: RFC 6962 / RFC 9162 leaf and node hashing, inclusion and
//!   consistency proofs (generation over any source of subtree hashes, and
//!   verification).
//! - [`compact`]: the right edge of a tree, for incremental roots.
//! - [`tile`]: C2SP tlog-tiles: tile and entry-bundle paths, tile math.
//! - [`note`]: C2SP signed-note with ed25519 keys (vkeys, key ids).
//! - [`checkpoint`]: C2SP tlog-checkpoint bodies.
//! - [`cosignature`]: C2SP tlog-cosignature (witness cosignatures, v1).
//! - [`witness`]: C2SP tlog-witness request and answer formats.
//! - [`encoding`]: the canonical binary layout of every signed message.
//! - [`log_api`]: JSON bodies of the log's HTTP API.
//! - [`entry`]: the log's entries (commit P4/P5 and abort) and the signed
//!   messages they carry (the merchant's key commit, the bank's escrow
//!   notice).
//!
//! - [`token`]: RFC 9474 blind-RSA tokens and denominations (figure 1).
//! - [`purchase`]: the signed messages of withdrawal, registration, offer
//!   (P1), spend (P2), escrow terms (P3) and refund.
//! - [`goods`]: AES-256-GCM encryption of the goods under k.
//! - [`proof`]: entry proofs under witnessed checkpoints, and a consistent
//!   view of a log.
//! - [`bank_api`]: JSON bodies of the bank's and the merchant's HTTP APIs.
//! - [`clock`]: the injected clock (milliseconds since the Unix epoch);
//!   randomness is injected too: every function that draws takes a
//!   `rand_core::CryptoRng`.
//! - [`error`]: the domain error every server's protocol steps return.
//! - [`tlog_proof`]: C2SP tlog-proof text.
//! - [`bundle`]: proof bundles (certified delivery for third parties).
//! - [`evidence`]: evidence files of a log's misbehaviour, verified offline.
//!
//! `docs/formats.md` in the repository gives every layout byte by byte.

pub mod bank_api;
pub mod bundle;
pub mod checkpoint;
pub mod clock;
pub mod compact;
pub mod cosignature;
pub mod encoding;
pub mod entry;
pub mod error;
pub mod evidence;
pub mod goods;
pub mod log_api;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod purchase;
pub mod tile;
pub mod tlog_proof;
pub mod token;
pub mod witness;
