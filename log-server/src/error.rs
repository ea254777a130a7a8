//! The one API error type of the log server and its mapping to HTTP status
//! codes. Every error is a JSON `ErrorBody` naming the problem; internal
//! failures are logged and answered with a generic 500.

use acd_core::log_api::EntryProof;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::sequencer::AppendError;
use crate::storage::StorageError;

#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed or fails a check.
    BadRequest { code: &'static str, message: String },
    /// 403: a signer the log does not trust.
    Forbidden { code: &'static str, message: String },
    /// 404: no such thing (yet).
    NotFound { code: &'static str, message: String },
    /// 405: the path exists, the method does not.
    MethodNotAllowed(String),
    /// 409: the TID already has another outcome.
    Conflict {
        message: String,
        existing: Box<EntryProof>,
    },
    /// 413: the body is too large.
    TooLarge(String),
    /// 422: well-formed, but the protocol's time rule forbids it now.
    Rule { code: &'static str, message: String },
    /// 503 with Retry-After: back-pressure or storage trouble.
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

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::MethodNotAllowed(message.into())
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::NotFound {
            code,
            message: message.into(),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Corrupt(_) => ApiError::Internal(e.to_string()),
            StorageError::Io(_) | StorageError::Injected => ApiError::Unavailable {
                code: "storage_unavailable",
                message: e.to_string(),
            },
        }
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> Self {
        let message = e.to_string();
        match e {
            AppendError::Conflict { existing, .. } => ApiError::Conflict { message, existing },
            AppendError::Expired { .. } => ApiError::Rule {
                code: "expired",
                message,
            },
            AppendError::NotExpired { .. } => ApiError::Rule {
                code: "not_expired",
                message,
            },
            AppendError::Busy => ApiError::Unavailable {
                code: "busy",
                message,
            },
            AppendError::Unavailable(_) => ApiError::Unavailable {
                code: "unavailable",
                message,
            },
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

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad("bad_query", r.body_text())
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
            ApiError::MethodNotAllowed(message) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                message,
                None,
            ),
            ApiError::Conflict { message, existing } => {
                (StatusCode::CONFLICT, "conflict", message, Some(existing))
            }
            ApiError::TooLarge(message) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large", message, None)
            }
            ApiError::Rule { code, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, message, None)
            }
            ApiError::Unavailable { code, message } => {
                (StatusCode::SERVICE_UNAVAILABLE, code, message, None)
            }
            ApiError::Internal(detail) => return acd_serve::internal_error(&detail),
        };
        acd_serve::error_response(status, code, message, existing)
    }
}
