//! `acd-auditor`: nobody has to trust the log. This crate holds the witness
//! (C2SP tlog-witness: cosigns a log's checkpoints only if each is
//! consistent with the last one it cosigned, and keeps the evidence when it
//! is not) and the monitor (follows logs through their tiles, verifies
//! consistency and audits every entry against the protocol's invariants).
//! Gossip between auditors comes next.
//!
//! Layout:
//! - [`monitor`]: the follower and full audit, state in sled.
//! - [`witness`]: the witness state (sled) and its `add-checkpoint` rules.
//! - [`server`]: the HTTP surface, `router` and `run`.

pub mod monitor;
pub mod server;
pub mod witness;
