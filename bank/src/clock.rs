//! The bank's clock: it decides whether an expiration is within the
//! escrow window and when the sweeper asks a log to abort. Injected, so
//! that tests of expiration are deterministic.
//! The same clock as every other party's ([`acd_core::clock`]).

pub use acd_core::clock::{Clock, ManualClock, SystemClock};
