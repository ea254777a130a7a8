//! The one error type of every client, and the shared reading of answers:
//! a 2xx JSON body, or the server's JSON error body.

use acd_core::log_api::ErrorBody;
use acd_core::proof::ProofError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("{}", describe(.0))]
    Http(#[from] reqwest::Error),
    #[error("the server refused ({status}): {} — {}", body.error, body.message)]
    Refused { status: u16, body: Box<ErrorBody> },
    #[error("the server answered {status} without an error body")]
    Status { status: u16 },
    #[error("the server's answer does not verify: {0}")]
    Invalid(String),
    /// No connection to a server asked for what only a `kind` of acd
    /// server answers: the message names the kind, as the user thinks of it.
    #[error("cannot connect to {base} ({}): is the {kind} running at {base}?", innermost(.source))]
    Unreachable {
        kind: &'static str,
        base: String,
        source: reqwest::Error,
    },
}

/// What happened at the bottom of an error's chain (refused, reset, not
/// found), or the error itself.
fn innermost(e: &reqwest::Error) -> String {
    let mut cause = std::error::Error::source(e);
    let mut last = None;
    while let Some(c) = cause {
        last = Some(c.to_string());
        cause = c.source();
    }
    last.unwrap_or_else(|| e.to_string())
}

/// An HTTP failure as a person can act on it: the URL that is not one, the
/// server that is not running, the one that did not answer.
fn describe(e: &reqwest::Error) -> String {
    let url = e
        .url()
        .map(|u| {
            let mut u = u.clone();
            // Never a password in a message.
            let _ = u.set_password(None);
            u.to_string()
        })
        .unwrap_or_else(|| "the URL".to_owned());
    let why = innermost(e);
    if e.is_builder() {
        format!("{url} is not a URL to send a request to ({why}); give it as http://HOST:PORT")
    } else if e.is_connect() {
        let server = e
            .url()
            .map(|u| format!("{}://{}", u.scheme(), u.authority()))
            .unwrap_or(url);
        format!("cannot connect to {server} ({why}): is the server running there?")
    } else if e.is_timeout() {
        format!("{url} did not answer in time")
    } else if e.is_decode() {
        format!("the answer from {url} is not what an acd server sends ({why})")
    } else {
        format!("the request to {url} failed: {why}")
    }
}

impl From<ProofError> for ClientError {
    fn from(e: ProofError) -> Self {
        ClientError::Invalid(e.to_string())
    }
}

impl ClientError {
    /// The error of asking `base` for what only a `kind` of acd server
    /// (bank, merchant) answers: an answer that is no acd answer at all, or
    /// "no such endpoint", says that `base` is some other server.
    pub fn not_a(self, kind: &'static str, base: &str) -> ClientError {
        if let ClientError::Http(e) = &self
            && e.is_connect()
            && let ClientError::Http(source) = self
        {
            return ClientError::Unreachable {
                kind,
                base: base.to_owned(),
                source,
            };
        }
        let foreign = match &self {
            ClientError::Refused { status: 404, body } => body.error == "no_route",
            ClientError::Status { status } => matches!(status, 404 | 405),
            ClientError::Http(e) => e.is_decode(),
            _ => false,
        };
        if foreign {
            ClientError::Invalid(format!("{base} is not an acd {kind} ({self})"))
        } else {
            self
        }
    }

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
            ClientError::Unreachable { .. } => true,
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

/// Reads a 2xx answer as text (the C2SP read path's plain bytes); any other
/// status is [`ClientError::Status`].
pub async fn read_text(resp: reqwest::Response) -> Result<String, ClientError> {
    let status = resp.status();
    if !status.is_success() {
        return Err(ClientError::Status {
            status: status.as_u16(),
        });
    }
    Ok(resp.text().await?)
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
