//! The merchant's clock: it sets offers' expirations and refuses escrows
//! that arrive too late, so it is injected and tests can set it.

pub use acd_core::clock::{Clock, SystemClock};

/// The system clock shifted by a fixed offset (negative: behind), for tests
/// of a merchant whose clock disagrees with the log's.
#[derive(Debug, Default, Clone, Copy)]
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms().saturating_add_signed(self.0)
    }
}
