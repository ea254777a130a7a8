//! Counters of the auditor and the witness, served at `GET /metrics` in the
//! Prometheus text exposition format (version 0.0.4). Every counter counts
//! since the process started; `frozen_origins` is read from the persisted
//! state when the page is rendered.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The content type of the metrics page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The counters; shared by the HTTP handlers and the gossip task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Split views found: two signed checkpoints of one origin that are not
    /// consistent (same size and another root, or no valid consistency
    /// proof), seen through gossip or in a request.
    pub split_views: AtomicU64,
    /// Checkpoints whose log signature verified (requests, checks, gossip).
    pub checkpoints_verified: AtomicU64,
    /// Cosignatures given (witness).
    pub cosignatures: AtomicU64,
    /// Checkpoints refused by `add-checkpoint` for contradicting the one
    /// cosigned (witness).
    pub checkpoints_refused: AtomicU64,
    /// Refused checkpoints checked against the log's own consistency proof
    /// (witness), whatever the outcome.
    pub refusals_checked: AtomicU64,
    /// Successful pulls of a peer's gossip endpoint.
    pub gossip_pulls: AtomicU64,
    /// Pulls that failed (unreachable peer, bad answer).
    pub gossip_errors: AtomicU64,
    /// Other violations found by the monitor (entries, tiles, rollback).
    pub violations: AtomicU64,
}

/// Adds one to `counter`.
pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// The Prometheus text page; `frozen` is the number of frozen origins,
    /// if this party freezes any.
    pub fn render(&self, frozen: Option<usize>) -> String {
        let mut out = String::new();
        let counters = [
            (
                "split_views_total",
                "Split views found (two signed checkpoints of one origin that are not consistent).",
                &self.split_views,
            ),
            (
                "checkpoints_verified_total",
                "Checkpoints whose log signature verified.",
                &self.checkpoints_verified,
            ),
            (
                "cosignatures_total",
                "Checkpoints cosigned.",
                &self.cosignatures,
            ),
            (
                "checkpoints_refused_total",
                "Checkpoints refused for contradicting the one cosigned.",
                &self.checkpoints_refused,
            ),
            (
                "refusals_checked_total",
                "Refused checkpoints checked against the log's own consistency proof.",
                &self.refusals_checked,
            ),
            (
                "gossip_pulls_total",
                "Successful pulls of a peer's checkpoints.",
                &self.gossip_pulls,
            ),
            (
                "gossip_errors_total",
                "Failed pulls of a peer's checkpoints.",
                &self.gossip_errors,
            ),
            (
                "violations_total",
                "Other log violations found (entries, tiles, rollback).",
                &self.violations,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        if let Some(n) = frozen {
            let _ = writeln!(
                out,
                "# HELP frozen_origins Origins the witness refuses to cosign until an operator clears them."
            );
            let _ = writeln!(out, "# TYPE frozen_origins gauge");
            let _ = writeln!(out, "frozen_origins {n}");
        }
        out
    }
}

/// Reads counter `name` from a metrics page (for tests and tools).
pub fn read(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // The page names every counter with its HELP and TYPE lines, and `read` finds a value by exact name.
    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        inc(&m.split_views);
        inc(&m.checkpoints_verified);
        inc(&m.checkpoints_verified);
        let page = m.render(Some(1));
        assert!(page.contains("# TYPE split_views_total counter\nsplit_views_total 1\n"));
        assert_eq!(read(&page, "checkpoints_verified_total"), Some(2));
        assert_eq!(read(&page, "frozen_origins"), Some(1));
        assert_eq!(read(&page, "split_views"), None);
        assert!(!m.render(None).contains("frozen_origins"));
    }
}
