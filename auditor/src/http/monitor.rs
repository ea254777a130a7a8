//! The monitor's HTTP surface, when it is asked to listen: its gossip
//! (`GET /gossip/v1/checkpoints`, [`crate::gossip`]) and `GET /metrics`.

use std::sync::Arc;

use acd_serve::ApiJson;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::gossip::{self, GossipCheckpoints};
use crate::monitor::Monitor;

async fn monitor_gossip(State(monitor): State<Arc<Monitor>>) -> Response {
    match monitor.held() {
        Ok(held) => ApiJson(GossipCheckpoints::new(held)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "monitor storage failed");
            // Answered as it always was: without the Retry-After that
            // `acd_serve::ApiError` adds to every 503.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": "unavailable", "message": "monitor storage failed"})),
            )
                .into_response()
        }
    }
}

async fn monitor_metrics(State(monitor): State<Arc<Monitor>>) -> Response {
    monitor.metrics().render(None)
}

/// The monitor's routes: gossip and metrics.
pub fn router(monitor: Arc<Monitor>) -> Router {
    let routes = Router::new()
        .route(gossip::PATH, get(monitor_gossip))
        .route("/metrics", get(monitor_metrics))
        .fallback(acd_serve::error::no_route)
        .method_not_allowed_fallback(acd_serve::error::wrong_method);
    let db = monitor.clone();
    let ready = acd_serve::ops::readiness(
        move || {
            let db = db.clone();
            acd_serve::ops::blocking_check("storage", move || db.storage_ready())
        },
        Vec::new(),
    );
    monitor
        .metrics()
        .http
        .layer(routes)
        .with_state(monitor)
        .merge(acd_serve::ops::health_routes(ready))
}
