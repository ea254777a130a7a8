//! The retry schedule of a server whose storage failed: first retry
//! after 100 ms, each failed one doubles the wait, up to 5 s.

use std::time::{Duration, Instant};

/// The first wait after a failure.
pub const FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two retries.
pub const MAX: Duration = Duration::from_secs(5);

/// When to retry next; driven by the one thread that retries.
#[derive(Debug, Clone)]
pub struct Backoff {
    delay: Duration,
    next: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            delay: FIRST,
            next: None,
        }
    }
}

impl Backoff {
    /// Is a retry due now? The first call after a success (or ever) arms
    /// the schedule and waits [`FIRST`].
    pub fn due(&mut self) -> bool {
        let now = Instant::now();
        match self.next {
            None => {
                self.next = Some(now + self.delay);
                false
            }
            Some(at) => now >= at,
        }
    }

    /// How long until the next retry (zero if due; [`FIRST`] if unarmed).
    pub fn wait(&self) -> Duration {
        match self.next {
            None => self.delay,
            Some(at) => at.saturating_duration_since(Instant::now()),
        }
    }

    /// The retry failed: wait twice as long (at most [`MAX`]).
    pub fn failed(&mut self) {
        self.delay = (self.delay * 2).min(MAX);
        self.next = Some(Instant::now() + self.delay);
    }

    /// The retry worked: the next failure starts over at [`FIRST`].
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Waits double from 100 ms and stop at 5 s; a success starts over.
    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        assert!(!b.due(), "armed, not yet due");
        let mut waits = Vec::new();
        for _ in 0..8 {
            b.failed();
            waits.push(b.delay);
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert!(b.wait() <= MAX);
        b.reset();
        assert_eq!(b.delay, FIRST);
        assert!(b.next.is_none());
    }
}
