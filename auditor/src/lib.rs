//! `acd-auditor`: nobody has to trust the log. This crate holds the witness
//! (C2SP tlog-witness: cosigns a log's checkpoints only if each is
//! consistent with the last one it cosigned, and keeps the evidence when it
//! is not), the monitor (follows logs through their tiles, verifies
//! consistency and audits every entry against the protocol's invariants),
//! and gossip between them, which catches a log that shows different
//! histories to different parties (a split view).
//!
//! Layout:
//! - [`monitor`]: the follower and full audit, state in sled;
//!   [`monitor::MonitorRunner`] is its run loop (checks, gossip pulls,
//!   reports, clean shutdown), which the binary only starts.
//! - [`witness`]: the witness state (sled); `witness/add_checkpoint.rs` is
//!   the C2SP tlog-witness `add-checkpoint` step, `witness/peer.rs` the
//!   comparison with a gossip peer's checkpoint.
//! - [`gossip`]: the `/gossip/v1/checkpoints` format, peer pulls, split-view
//!   detection.
//! - [`frozen`]: origins the witness refuses to cosign after a split view.
//! - [`evidence_file`]: evidence files ([`acd_core::evidence`]) on disk.
//! - [`metrics`]: the Prometheus counters.
//! - [`http`]: the HTTP surfaces on `acd-serve`'s shell: the witness's
//!   `router` and `run(listener, …, shutdown)`, [`http::monitor`] for the
//!   monitor.
//! - [`config`]: the TOML configuration file, one documented struct.
//! - [`setup`]: from settings to a witness or monitor (logs, key, token).

pub mod config;
pub mod evidence_file;
pub mod frozen;
pub mod gossip;
pub mod http;
pub mod metrics;
pub mod monitor;
pub mod setup;
pub mod witness;
