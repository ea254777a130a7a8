//! The bank's metrics in the OpenMetrics text format. `GET /metrics` (open,
//! for any scraper): the build, HTTP requests by route and status and their
//! latency; every ledger op decided, by kind and result (`accepted` or the
//! refusal's code); group-commit batches and their sizes; failed ledger
//! writes. `GET /admin/v1/metrics` (admin token) adds the maintained sums of
//! invariant 5, read from the books without a scan: how much money the bank
//! holds is the operator's business. Nothing here names an account, a token
//! or a TID.

use acd_serve::metrics::{Gauge, HttpMetrics, Registry, gauge_value};
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::records::Totals;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
    result: &'static str,
}

/// The bank's registry and the handles the writer and the page update.
pub struct BankMetrics {
    /// What `/metrics` shows.
    registry: Registry,
    /// The same and the sums, for `/admin/v1/metrics`.
    full: Registry,
    pub http: HttpMetrics,
    ops: Family<OpLabels, Counter>,
    batches: Histogram,
    storage_failures: Counter,
    sums: [Gauge; 5],
    conserved: Gauge,
}

impl BankMetrics {
    pub fn new() -> BankMetrics {
        let mut registry = Registry::with_prefix("acd_bank");
        let mut full = Registry::with_prefix("acd_bank");
        let http = HttpMetrics::default();
        let ops = Family::default();
        let batches = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        let storage_failures = Counter::default();
        // The handles are shared: both pages show the same counts.
        for r in [&mut registry, &mut full] {
            http.register(r);
            r.register(
                "ledger_ops",
                "Ledger ops decided, by kind and result (accepted, or the refusal's code)",
                ops.clone(),
            );
            r.register(
                "ledger_batch_ops",
                "Ops per group commit of the ledger",
                batches.clone(),
            );
            r.register(
                "ledger_write_failures",
                "Ledger writes that failed (answered 503)",
                storage_failures.clone(),
            );
        }
        let sums: [Gauge; 5] = Default::default();
        for (gauge, (name, help)) in sums.iter().zip([
            ("credited", "Money that entered the system"),
            ("customer_balances", "Held in customer accounts"),
            ("merchant_balances", "Held in merchant accounts"),
            ("live_tokens", "Value of issued tokens not yet spent"),
            ("escrowed", "Held in escrow for purchases"),
        ]) {
            full.register(name, help, gauge.clone());
        }
        let conserved = Gauge::default();
        full.register(
            "conserved",
            "1 while credited = balances + live tokens + escrowed (maintained sums)",
            conserved.clone(),
        );
        BankMetrics {
            registry,
            full,
            http,
            ops,
            batches,
            storage_failures,
            sums,
            conserved,
        }
    }

    /// Records one group commit of the writer: each op's kind and its
    /// acceptance or refusal code.
    pub fn decided(&self, outcomes: &[(&'static str, Result<(), &'static str>)]) {
        self.batches.observe(outcomes.len() as f64);
        let mut failed = false;
        for &(op, outcome) in outcomes {
            let result = match outcome {
                Ok(()) => "accepted",
                Err(code) => code,
            };
            failed |= result == "storage_unavailable";
            self.ops.get_or_create(&OpLabels { op, result }).inc();
        }
        if failed {
            self.storage_failures.inc();
        }
    }
}

impl Default for BankMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl BankMetrics {
    /// The open metrics page.
    pub fn page(&self) -> Response {
        acd_serve::metrics::render(&self.registry)
    }

    /// The admin's metrics page: the open one and the sums of invariant 5
    /// set from `totals`.
    pub fn admin_page(&self, totals: &Totals) -> Response {
        let values = [
            gauge_value(totals.credited),
            totals.customer_balances,
            totals.merchant_balances,
            gauge_value(totals.live_tokens),
            gauge_value(totals.escrowed),
        ];
        for (gauge, v) in self.sums.iter().zip(values) {
            gauge.set(v);
        }
        self.conserved.set(i64::from(totals.conserved()));
        acd_serve::metrics::render(&self.full)
    }
}
