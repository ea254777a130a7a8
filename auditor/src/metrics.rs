//! Counters of the auditor and the witness, served at `GET /metrics` in the
//! OpenMetrics text format (with the `prometheus-client` crate), prefixed
//! `acd_auditor_`. Every counter counts since the process started;
//! `frozen_origins` is read from the persisted state when the page is
//! rendered. HTTP requests are counted and timed by route and status.

use acd_serve::metrics::{Gauge, HttpMetrics, Registry, gauge_value};
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;

pub use acd_serve::metrics::read;

/// The counters; shared by the HTTP handlers and the gossip task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Split views found: two signed checkpoints of one origin that are not
    /// consistent (same size and another root, or no valid consistency
    /// proof), seen through gossip or in a request.
    pub split_views: Counter,
    /// Checkpoints whose log signature verified (requests, checks, gossip).
    pub checkpoints_verified: Counter,
    /// Cosignatures given (witness).
    pub cosignatures: Counter,
    /// Checkpoints refused by `add-checkpoint` for contradicting the one
    /// cosigned (witness).
    pub checkpoints_refused: Counter,
    /// Refused checkpoints checked against the log's own consistency proof
    /// (witness), whatever the outcome.
    pub refusals_checked: Counter,
    /// Successful pulls of a peer's gossip endpoint.
    pub gossip_pulls: Counter,
    /// Pulls that failed (unreachable peer, bad answer).
    pub gossip_errors: Counter,
    /// Other violations found by the monitor (entries, tiles, rollback).
    pub violations: Counter,
    /// The HTTP server's requests.
    pub http: HttpMetrics,
}

/// Adds one to `counter`.
pub fn inc(counter: &Counter) {
    counter.inc();
}

impl Metrics {
    /// The metrics page; `frozen` is the number of frozen origins, if this
    /// party freezes any.
    pub fn render(&self, frozen: Option<usize>) -> Response {
        let mut registry = Registry::with_prefix("acd_auditor");
        let counters = [
            (
                "split_views",
                "Split views found (two signed checkpoints of one origin that are not consistent)",
                &self.split_views,
            ),
            (
                "checkpoints_verified",
                "Checkpoints whose log signature verified",
                &self.checkpoints_verified,
            ),
            ("cosignatures", "Checkpoints cosigned", &self.cosignatures),
            (
                "checkpoints_refused",
                "Checkpoints refused for contradicting the one cosigned",
                &self.checkpoints_refused,
            ),
            (
                "refusals_checked",
                "Refused checkpoints checked against the log's own consistency proof",
                &self.refusals_checked,
            ),
            (
                "gossip_pulls",
                "Successful pulls of a peer's checkpoints",
                &self.gossip_pulls,
            ),
            (
                "gossip_errors",
                "Failed pulls of a peer's checkpoints",
                &self.gossip_errors,
            ),
            (
                "violations",
                "Other log violations found (entries, tiles, rollback)",
                &self.violations,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        if let Some(n) = frozen {
            let gauge = Gauge::<i64>::default();
            gauge.set(gauge_value(n));
            registry.register(
                "frozen_origins",
                "Origins the witness refuses to cosign until an operator clears them",
                gauge,
            );
        }
        self.http.register(&mut registry);
        acd_serve::metrics::render(&registry)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn text(r: Response) -> String {
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    // The page names every counter with its HELP and TYPE lines, and `read` finds a value by exact name.
    #[tokio::test]
    async fn renders_openmetrics_text() {
        let m = Metrics::default();
        inc(&m.split_views);
        inc(&m.checkpoints_verified);
        inc(&m.checkpoints_verified);
        let page = text(m.render(Some(1))).await;
        assert!(
            page.contains("# TYPE acd_auditor_split_views counter\n"),
            "{page}"
        );
        assert_eq!(read(&page, "acd_auditor_split_views_total"), Some(1.0));
        assert_eq!(
            read(&page, "acd_auditor_checkpoints_verified_total"),
            Some(2.0)
        );
        assert_eq!(read(&page, "acd_auditor_frozen_origins"), Some(1.0));
        assert_eq!(read(&page, "acd_auditor_split_views"), None);
        assert!(!text(m.render(None)).await.contains("frozen_origins"));
    }
}
