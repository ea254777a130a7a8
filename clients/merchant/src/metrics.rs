//! The merchant's metrics for `GET /metrics` in the OpenMetrics text format,
//! prefixed `acd_merchant_`: HTTP requests by route and status and their
//! latency, and the life of its sales (offers made, purchases committed in
//! the log, aborts seen there, deposits paid, deposits the bank refused for
//! good, purchases failed on another commit for their TID, purchases with
//! work left, goods files read). Counts only: no TID, item or key.

use acd_core::error::DomainError;
use acd_serve::metrics::{Gauge, HttpMetrics, Registry, gauge_value};
use prometheus_client::metrics::counter::Counter;

use crate::shop::Shop;

/// The merchant's counters, shared by the handlers and the background task.
#[derive(Debug, Default)]
pub struct MerchantMetrics {
    pub http: HttpMetrics,
    pub offers: Counter,
    pub committed: Counter,
    pub aborted: Counter,
    pub deposited: Counter,
    pub unpaid: Counter,
    pub failed: Counter,
}

/// Everything `GET /metrics` shows, read now.
pub async fn registry(shop: &Shop) -> Result<Registry, DomainError> {
    let pending = shop.store.pending().await?.len();
    let m = &shop.metrics;
    let mut registry = Registry::with_prefix("acd_merchant");
    m.http.register(&mut registry);
    for (name, help, counter) in [
        ("offers", "Offers signed (P1)", &m.offers),
        (
            "committed",
            "Purchases whose key commit the log recorded (P4, P5)",
            &m.committed,
        ),
        (
            "aborted",
            "Purchases the log recorded an abort for",
            &m.aborted,
        ),
        ("deposited", "Purchases the bank paid", &m.deposited),
        (
            "unpaid",
            "Committed purchases the bank refused to pay for good (disputed or refunded first)",
            &m.unpaid,
        ),
        (
            "failed",
            "Purchases that failed because the log holds another commit for their TID",
            &m.failed,
        ),
    ] {
        registry.register(name, help, counter.clone());
    }
    let reads = Counter::<u64>::default();
    reads.inc_by(shop.goods.reads());
    registry.register(
        "goods_reads",
        "Times a goods file was read (once, and again when it changes)",
        reads,
    );
    let gauge = Gauge::<i64>::default();
    gauge.set(gauge_value(pending));
    registry.register(
        "pending",
        "Purchases with work left: escrowed but not committed, or committed but not paid",
        gauge,
    );
    Ok(registry)
}
