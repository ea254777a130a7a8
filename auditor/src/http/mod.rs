//! The HTTP surfaces. The witness: `POST /add-checkpoint` as C2SP
//! tlog-witness specifies it (status codes, and the `text/x.tlog.size` body
//! of a 409 on a size mismatch), `GET /vkey`, `GET /gossip/v1/checkpoints`
//! ([`crate::gossip`]), `GET /metrics` ([`crate::metrics`]) and, when a
//! token is configured, `POST /admin/clear?origin=ORIGIN` (bearer token,
//! through [`acd_serve::Admin`]; unfreezes an origin). The monitor, when
//! asked to listen: the gossip and metrics routes ([`monitor`]). Refusals
//! are [`acd_serve::ApiError`]s with a JSON body `{"error", "message"}`,
//! except where the spec or the witness says more: the 409 size body, and
//! a frozen origin's 403 `{"error": "frozen", "origin", "message"}`.

pub mod monitor;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use acd_core::checkpoint::Checkpoint;
use acd_core::error::DomainError;
use acd_core::note::Note;
use acd_core::witness::{AddCheckpoint, SIZE_CONTENT_TYPE};
use acd_serve::{Admin, ApiError, ApiJson};
use axum::Router;
use axum::extract::rejection::{QueryRejection, StringRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::gossip::{self, GossipCheckpoints};
use crate::witness::{Witness, WitnessError};

/// A witness's refusal as HTTP: the spec's size body for a size mismatch,
/// the frozen origin's own JSON, and the shared [`ApiError`] for the rest.
#[derive(Debug)]
pub struct Refusal(pub WitnessError);

impl From<WitnessError> for Refusal {
    fn from(e: WitnessError) -> Self {
        Refusal(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match &self.0 {
            WitnessError::SizeMismatch { latest, .. } => {
                let mut r = (StatusCode::CONFLICT, format!("{latest}\n")).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(SIZE_CONTENT_TYPE),
                );
                r
            }
            WitnessError::Frozen { origin, .. } => (
                StatusCode::FORBIDDEN,
                axum::Json(json!({
                    "error": "frozen",
                    "origin": origin,
                    "message": self.0.to_string(),
                })),
            )
                .into_response(),
            _ => ApiError::from(self.0).into_response(),
        }
    }
}

/// `POST /add-checkpoint`: the witness's one protocol step.
async fn add_checkpoint(
    State(witness): State<Arc<Witness>>,
    body: Result<String, StringRejection>,
) -> Result<Response, Response> {
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError(DomainError::too_large(r.body_text())).into_response());
        }
        Err(r) => return Err(Refusal(WitnessError::Malformed(r.body_text())).into_response()),
    };
    // Persisting (an fsync) blocks; keep it off the async workers.
    let w = witness.clone();
    let (result, body) = tokio::task::spawn_blocking(move || (w.add_checkpoint(&body), body))
        .await
        .map_err(|e| Refusal(WitnessError::Storage(e.to_string())).into_response())?;
    if let Err(WitnessError::Inconsistent { .. }) = &result
        && let Ok(request) = AddCheckpoint::parse(&body)
        && let Some(origin) = request.checkpoint.lines().next()
        && let Ok(note) = Note::parse(&request.checkpoint)
        && let Ok(c) = Checkpoint::parse(&note.text)
        && witness.should_confirm(origin, &c)
    {
        tokio::spawn(gossip::confirm(
            witness,
            origin.to_owned(),
            request.checkpoint.clone(),
        ));
    }
    let mut r = result
        .map_err(|e| Refusal(e).into_response())?
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

async fn vkey(State(witness): State<Arc<Witness>>) -> String {
    format!("{}\n", witness.cosigner().verifier().vkey())
}

async fn witness_gossip(
    State(witness): State<Arc<Witness>>,
) -> Result<ApiJson<GossipCheckpoints>, Refusal> {
    Ok(ApiJson(GossipCheckpoints::new(witness.held()?)))
}

async fn witness_metrics(State(witness): State<Arc<Witness>>) -> Response {
    witness.metrics().render(Some(witness.frozen().count()))
}

#[derive(Deserialize)]
struct ClearQuery {
    origin: String,
}

/// `POST /admin/clear?origin=ORIGIN`: unfreezes an origin. Without a
/// configured token the route does not exist (404), as before the token
/// is checked; the query's refusal is the witness's `malformed`.
async fn admin_clear(
    State(witness): State<Arc<Witness>>,
    admin: Result<Admin, ApiError>,
    query: Result<Query<ClearQuery>, QueryRejection>,
) -> Result<Response, Response> {
    if !witness.has_admin_token() {
        return Err(acd_serve::error::no_route().await.into_response());
    }
    admin.map_err(IntoResponse::into_response)?;
    let Query(q) =
        query.map_err(|r| Refusal(WitnessError::Malformed(r.body_text())).into_response())?;
    let cleared = witness
        .frozen()
        .clear(&q.origin)
        .map_err(|e| Refusal(e.into()).into_response())?;
    tracing::warn!(origin = %q.origin, cleared, "operator cleared a frozen origin");
    Ok(axum::Json(json!({"origin": q.origin, "cleared": cleared})).into_response())
}

/// The witness's routes.
pub fn router(witness: Arc<Witness>) -> Router {
    let routes = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/vkey", get(vkey))
        .route(gossip::PATH, get(witness_gossip))
        .route("/metrics", get(witness_metrics))
        .route("/admin/clear", post(admin_clear))
        .fallback(acd_serve::error::no_route)
        .method_not_allowed_fallback(acd_serve::error::wrong_method)
        .layer(acd_serve::BodyLimit::max(64 * 1024));
    let db = witness.clone();
    let ready = acd_serve::ops::readiness(
        move || {
            let db = db.clone();
            acd_serve::ops::blocking_check("storage", move || db.storage_ready())
        },
        Vec::new(),
    );
    witness
        .metrics()
        .http
        .layer(routes)
        .with_state(witness)
        .merge(acd_serve::ops::health_routes(ready))
}

/// Serves the witness until `shutdown` resolves; with `peers`, pulls their
/// gossip every `gossip_every` meanwhile.
pub async fn run(
    listener: TcpListener,
    witness: Arc<Witness>,
    peers: Vec<String>,
    gossip_every: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = acd_serve::HttpLimits::default();
    run_with(listener, witness, peers, gossip_every, http, shutdown).await
}

/// [`run`] under the HTTP limits `http`.
pub async fn run_with(
    listener: TcpListener,
    witness: Arc<Witness>,
    peers: Vec<String>,
    gossip_every: Duration,
    http: acd_serve::HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let gossip = (!peers.is_empty())
        .then(|| tokio::spawn(gossip::run_witness(witness.clone(), peers, gossip_every)));
    let served = acd_serve::serve_with(listener, router(witness), http, shutdown).await;
    if let Some(task) = gossip {
        task.abort();
    }
    served
}

#[cfg(test)]
mod tests;
