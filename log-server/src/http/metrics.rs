//! `GET /metrics`: the log's metrics in the OpenMetrics text format. HTTP
//! requests by route and status (commits and aborts appended or refused
//! among them) and their latency, the published tree size and the size of
//! the newest checkpoint its witnesses all cosigned. Everything here is public anyway: the
//! log publishes every entry.

use axum::extract::State;
use axum::response::Response;

use acd_serve::metrics::{Gauge, HttpMetrics, Registry, gauge_value};

use super::AppState;

/// The log's registry and the handles its page updates.
pub struct LogMetrics {
    registry: Registry,
    pub http: HttpMetrics,
    tree_size: Gauge,
    cosigned_size: Gauge,
}

impl LogMetrics {
    pub fn new() -> LogMetrics {
        let mut registry = Registry::with_prefix("acd_log");
        let http = HttpMetrics::default();
        http.register(&mut registry);
        let tree_size = Gauge::default();
        registry.register(
            "tree_size",
            "Entries under the latest published checkpoint",
            tree_size.clone(),
        );
        let cosigned_size = Gauge::default();
        registry.register(
            "cosigned_tree_size",
            "Entries under the newest checkpoint that carried every witness's cosignature (0 without witnesses, or before the first)",
            cosigned_size.clone(),
        );
        LogMetrics {
            registry,
            http,
            tree_size,
            cosigned_size,
        }
    }
}

impl Default for LogMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /metrics`.
pub async fn page(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    m.tree_size
        .set(gauge_value(state.engine.sequencer.published().size));
    if let Some(c) = &state.engine.cosigned {
        m.cosigned_size.set(gauge_value(c.borrow().witnessed_size));
    }
    acd_serve::metrics::render(&m.registry)
}
