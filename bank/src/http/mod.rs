//! The bank's HTTP surface: the routes of [`acd_core::bank_api`] and the
//! admin routes, on the shell of `acd-serve`. Each handler extracts its
//! input ([`ApiJson`](acd_serve::ApiJson), [`ApiPath`](acd_serve::ApiPath),
//! the bearer-token [`Admin`](acd_serve::Admin)), calls one engine step and
//! answers its typed reply as JSON or its error as
//! [`ApiError`](acd_serve::ApiError).

mod handlers;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::BankState;

/// The bank's routes; every body is limited to `max_body_bytes` but the
/// dispute's (it carries the encrypted goods).
pub fn router(
    state: Arc<BankState>,
    max_body_bytes: usize,
    max_dispute_body_bytes: usize,
) -> Router {
    let routes = Router::new()
        .route("/api/v1/info", get(handlers::info))
        .route("/api/v1/withdraw", post(handlers::withdraw))
        .route("/api/v1/register", post(handlers::register))
        .route("/api/v1/spend", post(handlers::spend))
        .route("/api/v1/deposit", post(handlers::deposit))
        .route("/api/v1/refund", post(handlers::refund))
        .route("/api/v1/dispute", post(handlers::dispute))
        .route("/admin/v1/accounts", post(handlers::create_account))
        .route("/admin/v1/accounts/{key}", get(handlers::account))
        .route("/admin/v1/credit", post(handlers::credit))
        .route("/admin/v1/sums", get(handlers::sums))
        .route("/metrics", get(handlers::metrics))
        .fallback(acd_serve::error::no_route)
        .method_not_allowed_fallback(acd_serve::error::wrong_method)
        .layer(
            acd_serve::BodyLimit::max(max_body_bytes)
                .route("/api/v1/dispute", max_dispute_body_bytes),
        );
    state.metrics.http.layer(routes).with_state(state)
}
