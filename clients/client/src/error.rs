//! The one error type of every client, and the shared reading of answers:
//! a 2xx JSON body, or the server's JSON error body.

use acd_core::log_api::ErrorBody;
use acd_core::proof::ProofError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the server refused ({status}): {} — {}", body.error, body.message)]
    Refused { status: u16, body: Box<ErrorBody> },
    #[error("the server answered {status} without an error body")]
    Status { status: u16 },
    #[error("the server's answer does not verify: {0}")]
    Invalid(String),
}

impl From<ProofError> for ClientError {
    fn from(e: ProofError) -> Self {
        ClientError::Invalid(e.to_string())
    }
}

impl ClientError {
    /// The machine-readable error code of a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { body, .. } => Some(&body.error),
            _ => None,
        }
    }

    /// True when the request may succeed if repeated: no connection, a
    /// timeout, a broken exchange, or a server (or a proxy before it) that
    /// answered 429, 502, 503 or 504.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Http(e) => e.is_connect() || e.is_timeout() || e.is_request(),
            ClientError::Refused { status, .. } | ClientError::Status { status } => {
                matches!(status, 429 | 502 | 503 | 504)
            }
            ClientError::Invalid(_) => false,
        }
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } | ClientError::Status { status } => Some(*status),
            _ => None,
        }
    }
}

/// Reads a 2xx answer as `T`, anything else as a refusal.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
) -> Result<T, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp.json().await?);
    }
    match resp.json::<ErrorBody>().await {
        Ok(body) => Err(ClientError::Refused {
            status: status.as_u16(),
            body: Box::new(body),
        }),
        Err(_) => Err(ClientError::Status {
            status: status.as_u16(),
        }),
    }
}
