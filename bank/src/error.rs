//! The one error type of the bank, used from the ledger's rules to the
//! HTTP answers, and its mapping to status codes in one place. Every error
//! is a JSON `ErrorBody` `{error, message}` naming the problem; internal
//! failures are logged and answered with a generic 500.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// What kind of refusal, which fixes the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400: malformed, or fails a check of the request alone.
    BadRequest,
    /// 401: an admin route without the right bearer token.
    Unauthorized,
    /// 403: a signer or key that may not do this.
    Forbidden,
    /// 404: no such account, escrow or route.
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 409: conflicts with the ledger's state.
    Conflict,
    /// 413: the body is too large.
    TooLarge,
    /// 422: well-formed evidence that does not support the claim.
    Unprocessable,
    /// 503 with Retry-After: back-pressure, storage or a log unreachable.
    Unavailable,
    /// 500: a bug or corrupt storage; details go to the server log only.
    Internal,
}

/// A refusal with a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(Kind::BadRequest, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(Kind::Forbidden, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(Kind::NotFound, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(Kind::Conflict, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(Kind::Unprocessable, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(Kind::Unavailable, code, message)
    }

    /// A bug or corrupt storage: `detail` is logged, never sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::new(Kind::Internal, "internal", detail)
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(Kind::TooLarge, "too_large", r.body_text())
        } else {
            ApiError::bad("bad_json", r.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad("bad_path", r.body_text())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(_) | StoreError::Injected => {
                ApiError::unavailable("storage_unavailable", e.to_string())
            }
            StoreError::Corrupt(_) => ApiError::internal(format!("storage: {e}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.kind == Kind::Internal {
            return acd_serve::internal_error(&self.message);
        }
        acd_serve::error_response(self.status(), self.code, self.message, None)
    }
}
