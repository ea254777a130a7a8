//! The one API error of every acd server: a [`DomainError`] from a
//! protocol step, answered as the JSON [`acd_core::log_api::ErrorBody`]
//! with the status its [`ErrorKind`] fixes. This is the only place where a
//! kind becomes an HTTP status.

use acd_core::error::{DomainError, ErrorKind};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answer. Any domain error converts with `?`; an internal one is
/// logged with its detail and answered with a generic 500.
#[derive(Debug)]
pub struct ApiError(pub DomainError);

impl<E: Into<DomainError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ApiError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        status_of(self.0.kind)
    }

    /// The domain error inside.
    pub fn domain(&self) -> &DomainError {
        &self.0
    }
}

/// The status of each kind of refusal.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Timeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The code of the error an answer carries, read by the request log.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.kind == ErrorKind::Internal {
            tracing::error!(detail = %self.0.message, "internal error");
        }
        let status = self.status();
        let mut response = (status, Json(self.0.body())).into_response();
        // For the request log line: the refusal's code, never its message
        // (which may name what the client sent).
        response.extensions_mut().insert(ErrorCode(self.0.code));
        // Every 503 of ours is back-pressure or a storage hiccup worth
        // retrying.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        // The rest of a body too large or too slow is never read: the
        // connection closes after this answer.
        if matches!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The answer for an unknown route, shared by every router's fallback.
pub async fn no_route() -> ApiError {
    ApiError(DomainError::not_found("no_route", "no such endpoint"))
}

/// The answer for a known path with a method it does not take.
pub async fn wrong_method() -> ApiError {
    ApiError(DomainError::method_not_allowed(
        "this endpoint does not accept that method",
    ))
}
