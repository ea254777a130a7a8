//! Bearer-token authorization of admin routes. The token is compared in
//! constant time (`subtle`) on SHA-256 digests, so neither its bytes nor
//! its length leak through timing.

use std::sync::Arc;

use acd_core::error::DomainError;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The digest of a server's admin token.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Keeps only the digest of `token` (surrounding whitespace ignored).
    pub fn new(token: &str) -> AdminToken {
        AdminToken {
            digest: Sha256::digest(token.trim().as_bytes()).into(),
        }
    }

    /// Does `given` equal the token? Constant time.
    pub fn matches(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        bool::from(given.ct_eq(&self.digest))
    }

    /// Checks an `Authorization: Bearer …` header value.
    pub fn authorize(&self, header: Option<&str>) -> Result<(), DomainError> {
        match header.and_then(|v| v.strip_prefix("Bearer ")) {
            Some(t) if self.matches(t) => Ok(()),
            _ => Err(DomainError::unauthorized(
                "unauthorized",
                "this route needs the server's admin token as a bearer token",
            )),
        }
    }
}

/// A server state that has an admin token (or none: then every admin
/// route is refused).
pub trait AdminTokenSource {
    fn admin_token(&self) -> Option<&AdminToken>;
}

/// Proof that the request carried the admin token: take it as a handler
/// argument and the handler runs only for the operator.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl<S> FromRequestParts<Arc<S>> for Admin
where
    S: AdminTokenSource + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<S>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match state.admin_token() {
            Some(token) => token.authorize(header).map(|()| Admin).map_err(ApiError),
            None => Err(ApiError(DomainError::unauthorized(
                "unauthorized",
                "this server has no admin token",
            ))),
        }
    }
}
