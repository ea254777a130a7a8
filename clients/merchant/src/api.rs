//! The merchant's HTTP handlers (`acd_core::bank_api`, merchant routes).
//! Each parses and checks its input, then calls [`Shop`].

use std::sync::Arc;

use acd_core::bank_api::{Catalog, Delivery, OfferRequest, OfferResponse, PurchaseRequest};
use acd_core::entry::Tid;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};

use crate::error::ApiError;
use crate::shop::Shop;

/// `GET /api/v1/catalog`.
pub async fn catalog(State(shop): State<Arc<Shop>>) -> Json<Catalog> {
    Json(shop.public_catalog())
}

/// `POST /api/v1/offer` (P1).
pub async fn offer(
    State(shop): State<Arc<Shop>>,
    body: Result<Json<OfferRequest>, JsonRejection>,
) -> Result<Json<OfferResponse>, ApiError> {
    let Json(req) = body?;
    Ok(Json(shop.offer(req).await?))
}

/// `POST /api/v1/purchase` (P3 → P4 → P6). After a commit, the deposit
/// runs on its own task.
pub async fn purchase(
    State(shop): State<Arc<Shop>>,
    body: Result<Json<PurchaseRequest>, JsonRejection>,
) -> Result<Json<Delivery>, ApiError> {
    let Json(req) = body?;
    let tid = req.terms.tid;
    let answer = shop.purchase(req).await;
    if shop
        .store
        .get(&tid)
        .ok()
        .flatten()
        .is_some_and(|p| p.stage() == crate::store::Stage::Committed)
    {
        let shop = shop.clone();
        tokio::spawn(async move {
            if let Err(e) = shop.deposit(tid, false).await {
                tracing::warn!(%tid, error = %e, "deposit failed; it will be retried");
            }
        });
    }
    Ok(Json(answer?))
}

/// `GET /api/v1/delivery/{tid}` (P6 again).
pub async fn delivery(
    State(shop): State<Arc<Shop>>,
    tid: Result<Path<String>, PathRejection>,
) -> Result<Json<Delivery>, ApiError> {
    let Path(tid) = tid?;
    let tid: Tid = tid
        .parse()
        .map_err(|_| ApiError::bad("bad_tid", "a TID is 32 lowercase hex digits"))?;
    let p = shop.known(&tid)?;
    if p.abort.is_some() {
        return Err(ApiError::conflict(
            "aborted",
            format!("the log recorded an abort for TID {tid}: no sale"),
        ));
    }
    Ok(Json(shop.deliver(&p)?))
}
