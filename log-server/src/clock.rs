//! The log's clock. It decides the protocol's race between commit and
//! abort, so it is injected: tests set it, the server reads the system time.
//! The same clock as every other party's ([`acd_core::clock`]).

pub use acd_core::clock::{Clock, ManualClock, SystemClock};
