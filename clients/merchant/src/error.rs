//! The one API error type of the merchant and its mapping to HTTP status
//! codes. Every error is a JSON `ErrorBody` naming the problem; internal
//! failures are logged and answered with a generic 500.

use acd_core::log_api::EntryProof;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed.
    BadRequest { code: &'static str, message: String },
    /// 403: a signature that does not verify, or a bank this merchant does
    /// not use.
    Forbidden { code: &'static str, message: String },
    /// 404: no such item, TID or delivery (yet).
    NotFound { code: &'static str, message: String },
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 409: the request contradicts what is recorded (other terms, an
    /// abort in the log); `existing` carries the log's entry when there is
    /// one.
    Conflict {
        code: &'static str,
        message: String,
        existing: Option<Box<EntryProof>>,
    },
    /// 413: the body is too large.
    TooLarge(String),
    /// 422: the offer's expiration has passed.
    Expired(String),
    /// 503 with Retry-After: the log or the database cannot be reached now,
    /// or the merchant holds back (see [`crate::Behaviour`]).
    Unavailable { code: &'static str, message: String },
    /// 500: a bug or corrupt storage; details go to the server log only.
    Internal(String),
}

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
            existing: None,
        }
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unavailable {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(_) => ApiError::Internal(e.to_string()),
            StoreError::Sled(_) => ApiError::unavailable("storage_unavailable", e.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(r.body_text())
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, existing) = match self {
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, code, message, None)
            }
            ApiError::Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message, None),
            ApiError::NotFound { code, message } => (StatusCode::NOT_FOUND, code, message, None),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method".to_owned(),
                None,
            ),
            ApiError::Conflict {
                code,
                message,
                existing,
            } => (StatusCode::CONFLICT, code, message, existing),
            ApiError::TooLarge(message) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large", message, None)
            }
            ApiError::Expired(message) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "expired", message, None)
            }
            ApiError::Unavailable { code, message } => {
                (StatusCode::SERVICE_UNAVAILABLE, code, message, None)
            }
            ApiError::Internal(detail) => return acd_serve::internal_error(&detail),
        };
        acd_serve::error_response(status, code, message, existing)
    }
}
