//! The bank's HTTP surface: the routes of [`acd_core::bank_api`] and the
//! admin routes, on the shell of `acd-serve`. Each handler extracts its
//! input ([`ApiJson`](acd_serve::ApiJson), [`ApiPath`](acd_serve::ApiPath),
//! the bearer-token [`Admin`](acd_serve::Admin)), calls one engine step and
//! answers its typed reply as JSON or its error as
//! [`ApiError`](acd_serve::ApiError).

mod handlers;

use std::sync::Arc;

use acd_core::error::DomainError;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::BankState;

/// The bank's routes; every body is limited to `max_body_bytes` but the
/// dispute's (it carries the encrypted goods), and at most
/// `max_concurrent_disputes` disputes are read at once.
pub fn router(
    state: Arc<BankState>,
    max_body_bytes: usize,
    max_dispute_body_bytes: usize,
    max_concurrent_disputes: usize,
) -> Router {
    let disputes = Arc::new(Semaphore::new(max_concurrent_disputes));
    let routes = Router::new()
        .route("/api/v1/info", get(handlers::info))
        .route("/api/v1/withdraw", post(handlers::withdraw))
        .route("/api/v1/register", post(handlers::register))
        .route("/api/v1/spend", post(handlers::spend))
        .route("/api/v1/deposit", post(handlers::deposit))
        .route("/api/v1/refund", post(handlers::refund))
        .route(
            "/api/v1/dispute",
            post(handlers::dispute).route_layer(axum::middleware::from_fn_with_state(
                disputes,
                one_of_the_disputes,
            )),
        )
        .route("/admin/v1/accounts", post(handlers::create_account))
        .route("/admin/v1/accounts/{key}", get(handlers::account))
        .route("/admin/v1/credit", post(handlers::credit))
        .route("/admin/v1/sums", get(handlers::sums))
        .route("/admin/v1/metrics", get(handlers::admin_metrics))
        .route("/metrics", get(handlers::metrics))
        .fallback(acd_serve::error::no_route)
        .method_not_allowed_fallback(acd_serve::error::wrong_method)
        .layer(
            acd_serve::BodyLimit::max(max_body_bytes)
                .route("/api/v1/dispute", max_dispute_body_bytes),
        );
    state.metrics.http.layer(routes).with_state(state)
}

/// Lets a dispute in while fewer than the cap are being read and checked;
/// beyond it, 503 `busy`, so that large dispute bodies cannot add up to
/// the bank's memory.
async fn one_of_the_disputes(
    State(permits): State<Arc<Semaphore>>,
    req: Request,
    next: Next,
) -> Response {
    match permits.try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => acd_serve::ApiError(DomainError::unavailable(
            "busy",
            "too many disputes at once; retry",
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests;
