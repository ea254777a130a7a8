//! Rules a misbehaving log breaks on purpose, so that tests can show that
//! auditors catch it. Every sequencer carries a [`Faults`], all off; only
//! test code can turn one on: the type is public only to this crate's own
//! tests and with the `faults` cargo feature, which no binary enables.

/// Which of the sequencer's rules to break.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Accept commits at or after their expiration, aborts before it.
    pub ignore_expiration: bool,
    /// Append a second, different outcome for a TID.
    pub allow_second_outcome: bool,
}
