//! The domain error every protocol step of every server returns: a stable
//! machine-readable code, a sentence for people, and the kind of refusal.
//! It knows nothing of HTTP; `acd-serve` maps [`ErrorKind`] to a status in
//! one place and answers with the JSON [`ErrorBody`] shape.

use crate::log_api::{EntryProof, ErrorBody};

/// What kind of refusal, which fixes the status an HTTP shell answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Malformed, or fails a check of the request alone (HTTP 400).
    BadRequest,
    /// An admin action without the right bearer token (401).
    Unauthorized,
    /// A signer or key that may not do this (403).
    Forbidden,
    /// No such account, escrow, item, TID or route (404).
    NotFound,
    /// The path exists, the method does not (405).
    MethodNotAllowed,
    /// Contradicts the recorded state (409).
    Conflict,
    /// The body is too large (413).
    TooLarge,
    /// The request did not arrive in time (408).
    Timeout,
    /// Well-formed, but the protocol's rules (time, evidence) refuse it (422).
    Unprocessable,
    /// Back-pressure, storage trouble or a peer unreachable: retry (503).
    Unavailable,
    /// A bug or corrupt storage (500): the message goes to the server's log
    /// only, never to the client.
    Internal,
}

/// A refusal or failure of one protocol step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DomainError {
    pub kind: ErrorKind,
    /// Stable, machine-readable (`unknown_account`, `expired`, ...).
    pub code: &'static str,
    pub message: String,
    /// For a log's conflict: the outcome already recorded for the TID.
    pub existing: Option<Box<EntryProof>>,
}

impl DomainError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        DomainError {
            kind,
            code,
            message: message.into(),
            existing: None,
        }
    }

    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::BadRequest, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::Unauthorized, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::Forbidden, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::NotFound, code, message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::MethodNotAllowed, "method_not_allowed", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::Conflict, code, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::TooLarge, "too_large", message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::Unprocessable, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::Unavailable, code, message)
    }

    /// A bug or corrupt storage: `detail` is logged, never sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        DomainError::new(ErrorKind::Internal, "internal", detail)
    }

    /// The same error carrying the outcome already recorded (a log's 409).
    pub fn with_existing(mut self, existing: Box<EntryProof>) -> Self {
        self.existing = Some(existing);
        self
    }

    /// The JSON body an HTTP shell sends. An internal error's detail is
    /// replaced: the client learns nothing about the inside.
    pub fn body(&self) -> ErrorBody {
        if self.kind == ErrorKind::Internal {
            return ErrorBody {
                error: "internal".to_owned(),
                message: "internal error".to_owned(),
                existing: None,
            };
        }
        ErrorBody {
            error: self.code.to_owned(),
            message: self.message.clone(),
            existing: self.existing.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The body of an internal error hides its detail; others say it all.
    #[test]
    fn internal_detail_never_reaches_the_body() {
        let e = DomainError::internal("disk /secret failed");
        assert_eq!(e.body().message, "internal error");
        assert_eq!(e.body().error, "internal");
        let e = DomainError::conflict("taken", "the TID is taken");
        assert_eq!(e.body().error, "taken");
        assert_eq!(e.body().message, "the TID is taken");
        assert_eq!(e.to_string(), "taken: the TID is taken");
    }
}
