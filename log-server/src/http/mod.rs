//! The log's HTTP surface: the router and its handlers, each a few lines
//! that extract the typed input, call the engine ([`crate::engine`]) and
//! answer with JSON (or the read path's plain bytes). Refusals are
//! [`acd_serve::ApiError`]s, the one error answer of every acd server.

pub mod metrics;
pub mod read_path;

use std::sync::Arc;

use acd_core::log_api::{AbortRequest, CommitRequest, ConsistencyProof, Entries, EntryProof};
use acd_serve::{ApiError, ApiJson, ApiPath, ApiQuery};
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};

use self::metrics::LogMetrics;
use crate::engine::Engine;
use crate::engine::query::{ConsistencyQuery, EntriesQuery, InclusionQuery};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub metrics: Arc<LogMetrics>,
}

/// The log's HTTP routes.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let routes = Router::new()
        .route("/checkpoint", get(read_path::checkpoint))
        .route("/tile/{*path}", get(read_path::tile))
        .route("/vkey", get(read_path::vkey))
        .route("/tx/{tid}", get(transaction))
        .route("/api/v1/commit", post(commit))
        .route("/api/v1/abort", post(abort))
        .route("/api/v1/inclusion", get(inclusion))
        .route("/api/v1/consistency", get(consistency))
        .route("/api/v1/entries", get(entries))
        .route("/metrics", get(metrics::page))
        .fallback(acd_serve::error::no_route)
        .method_not_allowed_fallback(acd_serve::error::wrong_method)
        .layer(acd_serve::BodyLimit::max(max_body_bytes));
    state.metrics.http.layer(routes).with_state(state)
}

/// `POST /api/v1/commit`: P4, the merchant's key commit.
async fn commit(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CommitRequest>,
) -> Result<ApiJson<EntryProof>, ApiError> {
    Ok(ApiJson(state.engine.commit(req).await?))
}

/// `POST /api/v1/abort`: the bank's escrow notice for an expired TID.
async fn abort(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AbortRequest>,
) -> Result<ApiJson<EntryProof>, ApiError> {
    Ok(ApiJson(state.engine.abort(req).await?))
}

/// `GET /tx/<TID>`: Q1/Q2.
async fn transaction(
    State(state): State<AppState>,
    ApiPath(tid): ApiPath<String>,
) -> Result<ApiJson<EntryProof>, ApiError> {
    Ok(ApiJson(state.engine.transaction(&tid)?))
}

/// `GET /api/v1/inclusion?index=I` or `?leaf_hash=H`, optionally `&size=N`.
async fn inclusion(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<ApiJson<EntryProof>, ApiError> {
    Ok(ApiJson(state.engine.inclusion(&q)?))
}

/// `GET /api/v1/consistency?from=M&to=N` (N defaults to the published size).
async fn consistency(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<ApiJson<ConsistencyProof>, ApiError> {
    Ok(ApiJson(state.engine.consistency(&q)?))
}

/// `GET /api/v1/entries?start=S&end=E`: entries S..E (end exclusive).
async fn entries(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EntriesQuery>,
) -> Result<ApiJson<Entries>, ApiError> {
    Ok(ApiJson(state.engine.entries(&q)?))
}

#[cfg(test)]
mod tests;
