//! The merchant's HTTP surface (`acd_core::bank_api`, merchant routes):
//! the router and one few-line handler per route. Each extracts its input
//! with the shared extractors, calls a protocol step of [`Shop`] and
//! answers JSON or the shared [`ApiError`].

use std::sync::Arc;

use acd_core::bank_api::{Catalog, Delivery, OfferRequest, OfferResponse, PurchaseRequest};
use acd_serve::{ApiError, ApiJson, ApiPath};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};

use crate::purchase::parse_tid;
use crate::shop::Shop;

#[cfg(test)]
mod tests;

/// Every route of the merchant, with per-route metrics and the body limit.
pub fn router(shop: Arc<Shop>) -> Router {
    let routes = Router::new()
        .route("/api/v1/catalog", get(catalog))
        .route("/api/v1/offer", post(offer))
        .route("/api/v1/purchase", post(purchase))
        .route("/api/v1/delivery/{tid}", get(delivery))
        .route("/metrics", get(metrics))
        .fallback(acd_serve::error::no_route)
        .method_not_allowed_fallback(acd_serve::error::wrong_method)
        .layer(acd_serve::BodyLimit::max(shop.max_body_bytes));
    shop.metrics.http.layer(routes).with_state(shop)
}

/// `GET /api/v1/catalog`.
async fn catalog(State(shop): State<Arc<Shop>>) -> ApiJson<Catalog> {
    ApiJson(shop.public_catalog())
}

/// `POST /api/v1/offer` (P1).
async fn offer(
    State(shop): State<Arc<Shop>>,
    ApiJson(req): ApiJson<OfferRequest>,
) -> Result<ApiJson<OfferResponse>, ApiError> {
    Ok(ApiJson(shop.offer(req).await?))
}

/// `POST /api/v1/purchase` (P3 → P4 → P6). After a commit, the deposit
/// runs on its own task.
async fn purchase(
    State(shop): State<Arc<Shop>>,
    ApiJson(req): ApiJson<PurchaseRequest>,
) -> Result<ApiJson<Delivery>, ApiError> {
    let tid = req.terms.tid;
    let answer = shop.purchase(req).await;
    shop.deposit_soon(tid);
    Ok(ApiJson(answer?))
}

/// `GET /api/v1/delivery/{tid}` (P6 again).
async fn delivery(
    State(shop): State<Arc<Shop>>,
    ApiPath(tid): ApiPath<String>,
) -> Result<ApiJson<Delivery>, ApiError> {
    Ok(ApiJson(shop.delivery(&parse_tid(&tid)?).await?))
}

/// `GET /metrics`.
async fn metrics(State(shop): State<Arc<Shop>>) -> Result<Response, ApiError> {
    Ok(acd_serve::metrics::render(
        &crate::metrics::registry(&shop).await?,
    ))
}
