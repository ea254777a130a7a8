//! The HTTP surfaces. The witness: `POST /add-checkpoint` as C2SP
//! tlog-witness specifies it (status codes, and the `text/x.tlog.size` body
//! of a 409 on a size mismatch), `GET /vkey`, `GET /gossip/v1/checkpoints`
//! ([`crate::gossip`]), `GET /metrics` ([`crate::metrics`]) and, when a
//! token is configured, `POST /admin/clear?origin=ORIGIN` (bearer token;
//! unfreezes an origin). The monitor, when asked to listen: the gossip and
//! metrics routes. Refusals carry a JSON body `{"error", "message"}`; a
//! frozen origin is a 403 with `"error": "frozen"`.

use std::future::Future;
use std::sync::Arc;

use acd_core::checkpoint::Checkpoint;
use acd_core::note::Note;
use acd_core::witness::{AddCheckpoint, SIZE_CONTENT_TYPE};
use axum::Router;
use axum::extract::rejection::{QueryRejection, StringRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::gossip::{self, GossipCheckpoints};
use crate::monitor::Monitor;
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
            WitnessError::Frozen { origin, .. } => {
                return (
                    StatusCode::FORBIDDEN,
                    axum::Json(json!({
                        "error": "frozen",
                        "origin": origin,
                        "message": self.to_string(),
                    })),
                )
                    .into_response();
            }
            WitnessError::Storage(detail) => {
                tracing::error!(%detail, "witness storage failed");
                return acd_serve::error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "witness storage failed".to_owned(),
                    None,
                );
            }
        };
        acd_serve::error_response(status, code, self.to_string(), None)
    }
}

async fn add_checkpoint(
    State(witness): State<Arc<Witness>>,
    body: Result<String, StringRejection>,
) -> Result<Response, WitnessError> {
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Ok(acd_serve::error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                r.body_text(),
                None,
            ));
        }
        Err(r) => return Err(WitnessError::Malformed(r.body_text())),
    };
    // Persisting (an fsync) blocks; keep it off the async workers.
    let w = witness.clone();
    let (result, body) = tokio::task::spawn_blocking(move || (w.add_checkpoint(&body), body))
        .await
        .map_err(|e| WitnessError::Storage(e.to_string()))?;
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
    let mut r = result?.into_response();
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
) -> Result<axum::Json<GossipCheckpoints>, WitnessError> {
    Ok(axum::Json(GossipCheckpoints::new(witness.held()?)))
}

async fn witness_metrics(State(witness): State<Arc<Witness>>) -> Response {
    witness.metrics().render(Some(witness.frozen().count()))
}

#[derive(Deserialize)]
struct ClearQuery {
    origin: String,
}

/// Compares without stopping at the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn admin_clear(
    State(witness): State<Arc<Witness>>,
    headers: HeaderMap,
    query: Result<Query<ClearQuery>, QueryRejection>,
) -> Result<Response, WitnessError> {
    let Some(token) = witness.admin_token() else {
        return Ok(no_route());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same_secret(given.as_bytes(), token.as_bytes()) {
        return Ok((
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"error": "unauthorized", "message": "a valid admin token is required"}),
            ),
        )
            .into_response());
    }
    let Query(q) = query.map_err(|r| WitnessError::Malformed(r.body_text()))?;
    let cleared = witness.frozen().clear(&q.origin)?;
    tracing::warn!(origin = %q.origin, cleared, "operator cleared a frozen origin");
    Ok(axum::Json(json!({"origin": q.origin, "cleared": cleared})).into_response())
}

fn no_route() -> Response {
    acd_serve::error_response(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such endpoint".to_owned(),
        None,
    )
}

fn no_method() -> Response {
    acd_serve::error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method".to_owned(),
        None,
    )
}

/// The witness's routes.
pub fn router(witness: Arc<Witness>) -> Router {
    let routes = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/vkey", get(vkey))
        .route(gossip::PATH, get(witness_gossip))
        .route("/metrics", get(witness_metrics))
        .route("/admin/clear", post(admin_clear))
        .fallback(|| async { no_route() })
        .method_not_allowed_fallback(|| async { no_method() })
        .layer(DefaultBodyLimit::max(64 * 1024));
    witness.metrics().http.layer(routes).with_state(witness)
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

async fn monitor_gossip(State(monitor): State<Arc<Monitor>>) -> Response {
    match monitor.held() {
        Ok(held) => axum::Json(GossipCheckpoints::new(held)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "monitor storage failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": "unavailable", "message": "monitor storage failed"})),
            )
                .into_response()
        }
    }
}

async fn monitor_metrics(State(monitor): State<Arc<Monitor>>) -> Response {
    monitor.metrics().render(None)
}

/// The monitor's routes: gossip and metrics.
pub fn monitor_router(monitor: Arc<Monitor>) -> Router {
    let routes = Router::new()
        .route(gossip::PATH, get(monitor_gossip))
        .route("/metrics", get(monitor_metrics))
        .fallback(|| async { no_route() })
        .method_not_allowed_fallback(|| async { no_method() });
    monitor.metrics().http.layer(routes).with_state(monitor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metrics;
    use acd_core::checkpoint::{Checkpoint, SignedCheckpoint};
    use acd_core::cosignature::Cosigner;
    use acd_core::merkle::MemoryTree;
    use acd_core::note::NoteSigner;
    use acd_core::witness::AddCheckpoint;
    use axum::body::Body;
    use axum::http::Request;
    use ed25519_dalek::SigningKey;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    const ORIGIN: &str = "log.test/s";
    const TOKEN: &str = "0123456789abcdef0123";

    fn log_key() -> NoteSigner {
        NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[1; 32])).unwrap()
    }

    fn note(n: u64, salt: u8) -> String {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.push(acd_core::merkle::leaf_hash(&[salt, i as u8]));
        }
        let c = Checkpoint {
            origin: ORIGIN.into(),
            size: n,
            root: t.root(),
            extensions: vec![],
        };
        SignedCheckpoint::sign(c, &log_key()).unwrap().to_text()
    }

    async fn call(app: &Router, req: Request<Body>) -> (StatusCode, String) {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn add(note: String) -> Request<Body> {
        let body = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: note,
        }
        .to_body();
        Request::post("/add-checkpoint")
            .body(Body::from(body))
            .unwrap()
    }

    // The witness serves what it cosigned at /gossip/v1/checkpoints and its counters at /metrics; a frozen origin is refused with 403 "frozen" until a request with the admin token clears it.
    #[tokio::test]
    async fn gossip_metrics_frozen_and_admin_clear() {
        let dir = tempfile::tempdir().unwrap();
        let cosigner = Cosigner::new("witness.test/s", SigningKey::from_bytes(&[2; 32])).unwrap();
        let witness = Arc::new(
            Witness::open(dir.path(), cosigner, vec![log_key().verifier()])
                .unwrap()
                .with_admin_token(TOKEN.into()),
        );
        let app = router(witness.clone());
        assert_eq!(call(&app, add(note(4, 0))).await.0, StatusCode::OK);

        let (status, body) = call(
            &app,
            Request::get(gossip::PATH).body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let held: GossipCheckpoints = serde_json::from_str(&body).unwrap();
        assert_eq!(held.checkpoints[0].origin, ORIGIN);
        assert_eq!(held.checkpoints[0].checkpoint, note(4, 0));

        let crate::witness::PeerCheck::SplitView(ev) = witness.check_peer(&note(4, 1)).unwrap()
        else {
            panic!("not a split view");
        };
        witness.freeze(&ev).unwrap();
        let (status, body) = call(&app, add(note(5, 0))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "frozen");

        let (_, page) = call(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
        assert_eq!(
            metrics::read(&page, "acd_auditor_split_views_total"),
            Some(1.0)
        );
        assert_eq!(
            metrics::read(&page, "acd_auditor_frozen_origins"),
            Some(1.0)
        );
        assert_eq!(
            metrics::read(&page, "acd_auditor_cosignatures_total"),
            Some(1.0)
        );

        let clear = |token: &str| {
            Request::post(format!("/admin/clear?origin={ORIGIN}"))
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(call(&app, clear("wrong")).await.0, StatusCode::UNAUTHORIZED);
        let (status, body) = call(
            &app,
            Request::get("/add-checkpoint").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "method_not_allowed", "{body}");
        let no_origin = Request::post("/admin/clear")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(&app, no_origin).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "malformed", "{body}");
        assert!(witness.frozen().is_frozen(ORIGIN).unwrap());
        let (status, body) = call(&app, clear(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let body = AddCheckpoint {
            old_size: 4,
            proof: vec![],
            checkpoint: note(4, 0),
        }
        .to_body();
        let req = Request::post("/add-checkpoint")
            .body(Body::from(body))
            .unwrap();
        assert_eq!(call(&app, req).await.0, StatusCode::OK);
    }

    // Without a configured token the admin endpoint does not exist.
    #[tokio::test]
    async fn admin_clear_is_off_without_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let cosigner = Cosigner::new("witness.test/s", SigningKey::from_bytes(&[2; 32])).unwrap();
        let witness = Arc::new(Witness::open(dir.path(), cosigner, vec![]).unwrap());
        let req = Request::post("/admin/clear?origin=x")
            .header(header::AUTHORIZATION, "Bearer ")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&router(witness), req).await.0, StatusCode::NOT_FOUND);
    }

    // Hostile senders: a valid add-checkpoint request (old size, a real
    // consistency proof, a signed checkpoint) with its text damaged at one
    // place. The witness never answers 500, refuses with a JSON error (or the
    // spec's 409 size body), never cosigns a checkpoint the log did not sign,
    // and freezes nothing: a sender's garbage is no evidence.
    #[test]
    fn damaged_requests_are_refused_cleanly() {
        use proptest::prelude::*;
        use proptest::sample::Index;
        use proptest::test_runner::{Config, TestCaseError, TestRunner};

        #[derive(Debug, Clone)]
        enum Damage {
            Replace(Index, String),
            Delete(Index),
            Duplicate(Index),
            ChangeChar(Index, Index),
            Truncate(Index),
        }
        let damage = prop_oneof![
            (any::<Index>(), "\\PC{0,60}").prop_map(|(i, s)| Damage::Replace(i, s)),
            any::<Index>().prop_map(Damage::Delete),
            any::<Index>().prop_map(Damage::Duplicate),
            (any::<Index>(), any::<Index>()).prop_map(|(i, c)| Damage::ChangeChar(i, c)),
            any::<Index>().prop_map(Damage::Truncate),
        ];
        let apply = |body: &str, d: &Damage| -> Vec<u8> {
            let mut lines: Vec<String> = body.split('\n').map(str::to_owned).collect();
            let n = lines.len();
            match d {
                Damage::Replace(i, s) => lines[i.index(n)] = s.clone(),
                Damage::Delete(i) => {
                    lines.remove(i.index(n));
                }
                Damage::Duplicate(i) => {
                    let l = lines[i.index(n)].clone();
                    lines.insert(i.index(n), l);
                }
                Damage::ChangeChar(i, c) => {
                    let line = &mut lines[i.index(n)];
                    let mut chars: Vec<char> = line.chars().collect();
                    if !chars.is_empty() {
                        let at = c.index(chars.len());
                        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
                        *line = chars.into_iter().collect();
                    }
                }
                Damage::Truncate(i) => return body.as_bytes()[..i.index(body.len())].to_vec(),
            }
            lines.join("\n").into_bytes()
        };

        let dir = tempfile::tempdir().unwrap();
        let cosigner = Cosigner::new("witness.test/s", SigningKey::from_bytes(&[2; 32])).unwrap();
        let witness =
            Arc::new(Witness::open(dir.path(), cosigner, vec![log_key().verifier()]).unwrap());
        let app = router(witness.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(call(&app, add(note(4, 0)))).0, StatusCode::OK);
        let mut tree = acd_core::merkle::MemoryTree::new();
        for i in 0..8u64 {
            tree.push(acd_core::merkle::leaf_hash(&[0, i as u8]));
        }
        let template = AddCheckpoint {
            old_size: 4,
            proof: tree.consistency_proof(4, 8).unwrap(),
            checkpoint: note(8, 0),
        }
        .to_body();
        let genuine = [note(4, 0), note(8, 0)];
        // Cut inside the em dash of the signature line: not UTF-8 any more.
        let dash = template.find('\u{2014}').unwrap();
        let cut = template.as_bytes()[..dash + 1].to_vec();
        let (status, text) = rt.block_on(call(
            &app,
            Request::post("/add-checkpoint")
                .body(Body::from(cut))
                .unwrap(),
        ));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"], "malformed", "{text}");
        let config = Config {
            cases: 500,
            failure_persistence: None,
            ..Config::default()
        };
        TestRunner::new(config)
            .run(&damage, |d| {
                let body = apply(&template, &d);
                let req = Request::post("/add-checkpoint")
                    .body(Body::from(body))
                    .unwrap();
                let (status, text) = rt.block_on(call(&app, req));
                prop_assert!(status != StatusCode::INTERNAL_SERVER_ERROR, "{d:?}: {text}");
                if status == StatusCode::CONFLICT && text.trim().parse::<u64>().is_ok() {
                    return Ok(());
                }
                if !status.is_success() {
                    prop_assert!(status.is_client_error(), "{status} after {d:?}: {text}");
                    let v: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                    prop_assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()));
                }
                let latest = witness.latest(ORIGIN).unwrap().unwrap();
                prop_assert!(genuine.contains(&latest.note), "cosigned {}", latest.note);
                prop_assert!(!witness.frozen().is_frozen(ORIGIN).unwrap());
                Ok(())
            })
            .unwrap();
    }
}
