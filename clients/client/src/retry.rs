//! Repeating a request that failed on the way (no connection, a timeout, a
//! 502/503/504 or 429 from a server or a proxy in front of it) after a
//! pause that doubles up to a cap, until a total time is spent. Only for
//! requests that may be repeated: reads, and the protocol's POSTs whose
//! repetition gives the first answer (withdraw by request id, register,
//! spend, refund, commit, abort, a purchase's terms). A refusal (4xx) is
//! never repeated.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::ClientError;

/// How a client repeats transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The pause after the first failure; each later pause doubles.
    pub first_delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
    /// No attempt starts later than this after the first one.
    pub give_up_after: Duration,
}

/// First pause of [`RetryPolicy::default`].
pub const DEFAULT_FIRST_DELAY: Duration = Duration::from_millis(100);
/// Longest pause of [`RetryPolicy::default`].
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(2);
/// How long [`RetryPolicy::default`] keeps trying: a server restarting, or
/// a proxy's short outage, not a server that is gone.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(20);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first_delay: DEFAULT_FIRST_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
        }
    }
}

impl RetryPolicy {
    /// One attempt only.
    pub const NONE: RetryPolicy = RetryPolicy {
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        give_up_after: Duration::ZERO,
    };

    /// Runs `attempt` until it succeeds, fails for good, or the time is up.
    pub async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let started = Instant::now();
        let mut delay = self.first_delay;
        loop {
            match attempt().await {
                Err(e) if e.is_transient() && started.elapsed() + delay < self.give_up_after => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max_delay);
                }
                result => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn unavailable() -> ClientError {
        ClientError::Status { status: 503 }
    }

    /// The default policy's shape, in milliseconds.
    const QUICK: RetryPolicy = RetryPolicy {
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        give_up_after: Duration::from_millis(50),
    };

    #[tokio::test]
    async fn transient_failures_are_repeated_until_success() {
        // Two 503s, then an answer: three attempts, one result.
        let n = AtomicUsize::new(0);
        let r = QUICK
            .run(|| async {
                match n.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(unavailable()),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(r.ok(), Some(7));
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn refusals_are_not_repeated_and_outages_end() {
        // A 409 is final at once; a 503 that lasts ends after the total time.
        let n = AtomicUsize::new(0);
        let r: Result<(), _> = QUICK
            .run(|| async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(ClientError::Status { status: 409 })
            })
            .await;
        assert!(r.is_err());
        assert_eq!(n.load(Ordering::SeqCst), 1);

        let n = AtomicUsize::new(0);
        let r: Result<(), _> = QUICK
            .run(|| async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(unavailable())
            })
            .await;
        assert!(r.is_err());
        assert!(n.load(Ordering::SeqCst) > 2);
        let r: Result<(), _> = RetryPolicy::NONE.run(|| async { Err(unavailable()) }).await;
        assert!(r.is_err());
    }
}
