//! The HTTP shell every acd server (log, bank, merchant, auditor) shares
//! and none of them is about. The servers' engines decide protocol steps
//! and return [`acd_core::error::DomainError`]; this crate turns them into
//! HTTP:
//!
//! - [`error`]: the one [`ApiError`], mapped to a status in one place and
//!   answered as the JSON error body.
//! - [`extract`]: [`ApiJson`], [`ApiPath`], [`ApiQuery`]: extractors whose
//!   rejections are that same JSON error.
//! - [`auth`]: the bearer-token [`Admin`] extractor (constant-time compare).
//! - [`serve`]: serving a router on a bound listener until shutdown
//!   ([`server`]: timeouts and a connection cap from [`HttpLimits`]);
//!   [`shutdown_signal`] for SIGTERM and Ctrl-C.
//! - [`body_limit`]: per-route body limits, a declared length over the
//!   limit refused before the body is read.
//! - [`http_client`]: the one outgoing HTTP client builder (connect and
//!   request timeouts), shared with the wallet through `acd-client`.
//! - [`metrics`]: the `/metrics` page and per-route HTTP metrics.
//! - [`secret`]: key and token files written once, atomically, mode 0600.
//! - [`storage`]: opening the embedded database ([`open_sled`]); a
//!   damaged one is an error naming its path, never a panic.
//! - [`backoff`]: the retry schedule after a storage failure.
//! - [`ops`]: version and commit, `--log-format`, `/healthz` and `/readyz`.
//! - [`database_owner`]: which keys a shared PostgreSQL database belongs to.

pub mod auth;
pub mod backoff;
pub mod backup;
pub mod body_limit;
pub mod database_owner;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod ops;
pub mod secret;
pub mod server;
pub mod storage;

pub use acd_client::{http_client, http_client_builder, http_client_with};
pub use auth::{Admin, AdminToken, AdminTokenSource};
pub use body_limit::BodyLimit;
pub use error::ApiError;
pub use extract::{ApiJson, ApiPath, ApiQuery, JsonOrBytes};
pub use limits::{HttpFlags, HttpLimits};
pub use server::serve_with;
pub use storage::open_sled;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `router` on `listener` under the default [`HttpLimits`] until
/// `shutdown` resolves, then waits for the requests in flight to be
/// answered ([`serve_with`] takes the limits).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, HttpLimits::default(), shutdown).await
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), in colour only
/// on a terminal. A second call (several servers in one process, as in
/// tests and the demo) keeps the first set-up.
pub fn init_tracing() {
    ops::init_tracing_as(ops::LogFormat::Text);
}

/// Resolves on Ctrl-C or SIGTERM, so that a server finishes what it has
/// accepted and exits 0 when an operator or a supervisor stops it. The
/// handlers are installed when this is called, not when the future is
/// first polled: a SIGTERM during a long start (a monitor's first catch-up)
/// is a clean stop too, never the default action's death (exit 143).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = int.recv() => {},
                    _ = term.recv() => {},
                }
            }
            (term, int) => {
                if let Err(e) = term.as_ref().and(int.as_ref()) {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM and SIGINT");
                }
                std::future::pending::<()>().await;
            }
        }
        tracing::info!("shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_core::error::DomainError;
    use axum::body::Body;
    use axum::http::{HeaderValue, Request, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use tower::ServiceExt;

    async fn body(r: Response) -> serde_json::Value {
        let bytes = r
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn errors_are_json_and_503_says_when_to_retry() {
        let r = ApiError(DomainError::conflict("conflict", "taken")).into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(
            body(r).await,
            serde_json::json!({"error": "conflict", "message": "taken"})
        );

        let r = ApiError(DomainError::unavailable("busy", "busy")).into_response();
        assert_eq!(
            r.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("1"))
        );

        let r = ApiError(DomainError::internal("disk at /secret/path failed")).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = body(r).await.to_string();
        assert!(!text.contains("secret"), "{text}");
    }

    struct State {
        token: Option<AdminToken>,
    }

    impl AdminTokenSource for State {
        fn admin_token(&self) -> Option<&AdminToken> {
            self.token.as_ref()
        }
    }

    #[derive(serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        n: u8,
    }

    fn app(token: Option<&str>) -> Router {
        Router::new()
            .route(
                "/thing",
                post(|ApiJson(t): ApiJson<Thing>| async move { ApiJson(t) }),
            )
            .route(
                "/n/{n}",
                get(|ApiPath(n): ApiPath<u8>| async move { n.to_string() }),
            )
            .route(
                "/q",
                get(|ApiQuery(t): ApiQuery<Thing>| async move { t.n.to_string() }),
            )
            .route("/admin", get(|_: Admin| async { "yes" }))
            .fallback(error::no_route)
            .method_not_allowed_fallback(error::wrong_method)
            .layer(axum::extract::DefaultBodyLimit::max(64))
            .with_state(Arc::new(State {
                token: token.map(AdminToken::new),
            }))
    }

    async fn call(app: &Router, req: Request<Body>) -> (u16, serde_json::Value) {
        let r = app
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = r.status().as_u16();
        let bytes = r
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    fn req(method: &str, uri: &str, body: &'static str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    // Every rejection of the shared extractors is the JSON error shape with
    // its own code; good input goes through.
    #[tokio::test]
    async fn extractors_answer_json_errors() {
        let app = app(None);
        let (s, v) = call(&app, req("POST", "/thing", r#"{"n":7}"#)).await;
        assert_eq!((s, v), (200, serde_json::json!({"n": 7})));
        for (method, uri, body, status, code) in [
            ("POST", "/thing", "{", 400, "bad_json"),
            ("POST", "/thing", r#"{"n":7,"x":1}"#, 400, "bad_json"),
            (
                "POST",
                "/thing",
                r#"{"n":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
                413,
                "too_large",
            ),
            ("GET", "/n/300", "", 400, "bad_path"),
            ("GET", "/n/%ff", "", 400, "bad_path"),
            ("GET", "/q?n=x", "", 400, "bad_query"),
            ("GET", "/nowhere", "", 404, "no_route"),
            ("DELETE", "/thing", "", 405, "method_not_allowed"),
        ] {
            let (s, v) = call(&app, req(method, uri, body)).await;
            assert_eq!(s, status, "{method} {uri}: {v}");
            assert_eq!(v["error"], code, "{method} {uri}: {v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        }
    }

    // The admin extractor lets only the exact token through, and a server
    // without a token refuses everyone.
    #[tokio::test]
    async fn admin_needs_the_exact_bearer_token() {
        let app = app(Some("s3cret"));
        let with = |h: Option<&'static str>| {
            let mut r = Request::get("/admin");
            if let Some(h) = h {
                r = r.header(header::AUTHORIZATION, h);
            }
            r.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(call(&app, with(Some("Bearer s3cret"))).await.0, 200);
        for h in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("s3cret"),
            Some("Bearer "),
        ] {
            let (s, v) = call(&app, with(h)).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (401, Some("unauthorized")),
                "{h:?}"
            );
        }
        let closed = self::app(None);
        assert_eq!(call(&closed, with(Some("Bearer s3cret"))).await.0, 401);
    }

    // `serve` answers on the bound listener and returns once shutdown
    // resolves.
    #[tokio::test]
    async fn serve_runs_until_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app(None), async {
            let _ = stopped.await;
        }));
        let answer = http_client()
            .get(format!("http://{addr}/n/5"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer.text().await.unwrap_or_default(), "5");
        let _ = stop.send(());
        let done = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
        assert!(matches!(done, Ok(Ok(Ok(())))));
    }
}
