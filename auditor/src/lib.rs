//! `acd-auditor`: nobody has to trust the log. This crate holds the witness
//! (C2SP tlog-witness: cosigns a log's checkpoints only if each is
//! consistent with the last one it cosigned, and keeps the evidence when it
//! is not). The monitor and gossip come next.
//!
//! Layout:
//! - [`witness`]: the witness state (sled) and its `add-checkpoint` rules.
//! - [`server`]: the HTTP surface, `router` and `run`.

pub mod server;
pub mod witness;
