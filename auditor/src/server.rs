//! The witness's HTTP surface: `POST /add-checkpoint` as C2SP tlog-witness
//! specifies it (status codes, and the `text/x.tlog.size` body of a 409 on
//! a size mismatch), plus `GET /vkey`. Other refusals carry a JSON body
//! naming the problem.

use std::future::Future;
use std::sync::Arc;

use acd_core::witness::SIZE_CONTENT_TYPE;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;

use crate::witness::{Witness, WitnessError};

impl IntoResponse for WitnessError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            WitnessError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
            WitnessError::UnknownOrigin(_) => (StatusCode::NOT_FOUND, "unknown_origin"),
            WitnessError::Unsigned(_) => (StatusCode::FORBIDDEN, "unsigned"),
            WitnessError::OldTooLarge { .. } => (StatusCode::BAD_REQUEST, "old_too_large"),
            WitnessError::SizeMismatch { latest, .. } => {
                let mut r = (StatusCode::CONFLICT, format!("{latest}\n")).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(SIZE_CONTENT_TYPE),
                );
                return r;
            }
            WitnessError::RootMismatch { .. } => (StatusCode::CONFLICT, "root_mismatch"),
            WitnessError::Inconsistent { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "inconsistent"),
            WitnessError::Storage(detail) => {
                tracing::error!(%detail, "witness storage failed");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(
                        json!({"error": "unavailable", "message": "witness storage failed"}),
                    ),
                )
                    .into_response();
            }
        };
        (
            status,
            axum::Json(json!({"error": code, "message": self.to_string()})),
        )
            .into_response()
    }
}

async fn add_checkpoint(
    State(witness): State<Arc<Witness>>,
    body: String,
) -> Result<Response, WitnessError> {
    // Persisting (an fsync) blocks; keep it off the async workers.
    let lines = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body))
        .await
        .map_err(|e| WitnessError::Storage(e.to_string()))??;
    let mut r = lines.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

async fn vkey(State(witness): State<Arc<Witness>>) -> String {
    format!("{}\n", witness.cosigner().verifier().vkey())
}

/// The witness's routes.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/vkey", get(vkey))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "no_route", "message": "no such endpoint"})),
            )
        })
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(witness)
}

/// Serves the witness until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    witness: Arc<Witness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(witness))
        .with_graceful_shutdown(shutdown)
        .await
}
