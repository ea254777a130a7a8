//! The log's HTTP surface: the router and its handlers, each a few lines
//! that extract the typed input, call the engine ([`crate::engine`]) and
//! answer with JSON (or the read path's plain bytes). Refusals are
//! [`acd_serve::ApiError`]s, the one error answer of every acd server.

pub mod explorer;
pub mod metrics;
pub mod read_path;

use std::sync::Arc;

use acd_core::error::DomainError;
use acd_core::log_api::{
    AbortRequest, CommitBatch, CommitBatchResponse, CommitRequest, ConsistencyProof, Entries,
    EntryProof, MAX_BATCH_COMMITS,
};
use acd_serve::{ApiError, ApiJson, ApiPath, ApiQuery, JsonOrBytes};
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
        .route("/", get(explorer::index))
        .route("/explorer/explorer.js", get(explorer::script))
        .route("/explorer/explorer.css", get(explorer::style))
        .route("/explorer/acd_explorer.wasm", get(explorer::verifier))
        .route("/api/v1/log", get(explorer::info))
        .route("/checkpoint", get(read_path::checkpoint))
        .route("/tile/{*path}", get(read_path::tile))
        .route("/vkey", get(read_path::vkey))
        .route("/tx/{tid}", get(transaction))
        .route("/api/v1/commit", post(commit))
        .route("/api/v1/commits", post(commits))
        .route("/api/v1/abort", post(abort))
        .route("/api/v1/inclusion", get(inclusion))
        .route("/api/v1/consistency", get(consistency))
        .route("/api/v1/entries", get(entries))
        .route("/metrics", get(metrics::page))
        .fallback(acd_serve::error::no_route)
        .method_not_allowed_fallback(acd_serve::error::wrong_method)
        .layer(
            acd_serve::BodyLimit::max(max_body_bytes)
                .route("/api/v1/commits", max_body_bytes.max(BATCH_BODY_BYTES)),
        );
    state.metrics.http.layer(routes).with_state(state)
}

/// Room for [`MAX_BATCH_COMMITS`] commits as JSON (about 420 bytes each).
const BATCH_BODY_BYTES: usize = MAX_BATCH_COMMITS * 512;

/// `POST /api/v1/commit`: P4, the merchant's key commit, as JSON or as its
/// 152-byte binary form (`application/octet-stream`).
async fn commit(
    State(state): State<AppState>,
    body: JsonOrBytes<CommitRequest>,
) -> Result<ApiJson<EntryProof>, ApiError> {
    let req = match body {
        JsonOrBytes::Json(req) => req,
        JsonOrBytes::Bytes(bytes) => CommitRequest::from_bytes(&bytes)
            .map_err(|e| DomainError::bad("bad_commit", format!("binary commit: {e}")))?,
    };
    Ok(ApiJson(state.engine.commit(req).await?))
}

/// `POST /api/v1/commits`: up to [`MAX_BATCH_COMMITS`] key commits, as
/// JSON `{"commits": [...]}` or binary commits end to end; one result per
/// commit, in order.
async fn commits(
    State(state): State<AppState>,
    body: JsonOrBytes<CommitBatch>,
) -> Result<ApiJson<CommitBatchResponse>, ApiError> {
    let reqs = match body {
        JsonOrBytes::Json(batch) => {
            let n = batch.commits.len();
            if n == 0 || n > MAX_BATCH_COMMITS {
                return Err(DomainError::bad(
                    "bad_batch",
                    format!("{n} commits in one request; from 1 to {MAX_BATCH_COMMITS}"),
                )
                .into());
            }
            batch.commits
        }
        JsonOrBytes::Bytes(bytes) => CommitRequest::batch_from_bytes(&bytes, MAX_BATCH_COMMITS)
            .map_err(|e| DomainError::bad("bad_batch", e.to_string()))?,
    };
    Ok(ApiJson(CommitBatchResponse {
        results: state.engine.commit_batch(reqs).await,
    }))
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
