//! Extractors that turn every rejection into the JSON error shape: a body
//! that is not the expected JSON is `400 bad_json` (`413 too_large` past
//! the route's limit), a path that does not parse is `400 bad_path`, a
//! query `400 bad_query`. Handlers take these instead of axum's own, so no
//! handler repeats the rejection dance.

use acd_core::error::DomainError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A body that is JSON, or with `Content-Type: application/octet-stream`
/// the raw bytes of a binary form the handler decodes (the log's commits).
#[derive(Debug, Clone)]
pub enum JsonOrBytes<T> {
    Json(T),
    Bytes(axum::body::Bytes),
}

/// Whether the request declares an octet-stream body.
fn is_octet_stream(req: &Request) -> bool {
    req.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"))
}

impl<T, S> FromRequest<S> for JsonOrBytes<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_octet_stream(&req) {
            return ApiJson::<T>::from_request(req, state)
                .await
                .map(|ApiJson(v)| JsonOrBytes::Json(v));
        }
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(JsonOrBytes::Bytes(bytes)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError(DomainError::too_large(r.body_text())))
            }
            Err(r) => Err(ApiError(DomainError::bad("bad_body", r.body_text()))),
        }
    }
}

/// A JSON body in, or a JSON answer out.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// The JSON error for a body axum's JSON extractor refused.
pub fn json_rejection(r: JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(DomainError::too_large(r.body_text()))
    } else {
        ApiError(DomainError::bad("bad_json", r.body_text()))
    }
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(path_rejection(r)),
        }
    }
}

/// The JSON error for a path axum's extractor refused.
pub fn path_rejection(r: PathRejection) -> ApiError {
    ApiError(DomainError::bad("bad_path", r.body_text()))
}

/// Query parameters.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

/// The JSON error for a query axum's extractor refused.
pub fn query_rejection(r: QueryRejection) -> ApiError {
    ApiError(DomainError::bad("bad_query", r.body_text()))
}
