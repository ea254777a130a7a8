//! What operators run the servers with, the same for all of them: the
//! version and commit ([`VERSION`], `--version`, the `build_info` metric),
//! the log format ([`LogFlags`], `--log-format text|json`), and the health
//! endpoints ([`health_routes`]): `GET /healthz` answers while the process
//! serves; `GET /readyz` answers 200 only while its storage answers and the
//! peers it is configured with can be reached, else 503 `not_ready`, each
//! check named in the body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

/// The commit the binary was built from (`git rev-parse --short=12`), or
/// `unknown`.
pub const COMMIT: &str = env!("ACD_COMMIT");

/// `--version` of every binary: the package version and the commit.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ACD_COMMIT"),
    ")"
);

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// The `--log-format` flag, global to a binary's subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct LogFlags {
    /// How log lines are written on stderr: text, or one JSON object per
    /// line. Which lines: `RUST_LOG` (default `info`; request lines are the
    /// target `acd_serve::request`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Logs to stderr in `format`, filtered by `RUST_LOG` (default `info`), in
/// colour only on a terminal. A second call (several servers in one
/// process, as in tests and the demo) keeps the first set-up.
pub fn init_tracing_as(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// One readiness check's result.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `storage`, or a peer such as `log <url>`.
    pub name: String,
    pub ok: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    pub fn ok(name: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: None,
        }
    }

    pub fn failed(name: impl Into<String>, detail: impl std::fmt::Display) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: Some(detail.to_string()),
        }
    }

    /// The check named `name` from a result.
    pub fn from_result<E: std::fmt::Display>(name: impl Into<String>, r: Result<(), E>) -> Check {
        match r {
            Ok(()) => Check::ok(name),
            Err(e) => Check::failed(name, e),
        }
    }
}

/// The checks `/readyz` runs, each time it is asked.
pub type Readiness =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Vec<Check>> + Send>> + Send + Sync>;

/// How long a peer may take to answer a readiness probe.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the peer `name` answers `GET url` with any HTTP status within
/// [`PEER_TIMEOUT`]: it is up and reachable (what it says is its own
/// business).
pub async fn peer(http: &reqwest::Client, name: String, url: &str) -> Check {
    match tokio::time::timeout(PEER_TIMEOUT, http.get(url).send()).await {
        Ok(Ok(_)) => Check::ok(name),
        Ok(Err(e)) => Check::failed(name, format!("cannot reach {url}: {e}")),
        Err(_) => Check::failed(name, format!("{url} did not answer within 2 s")),
    }
}

/// The check `name` of a blocking storage read `f`, run off the
/// runtime's threads.
pub async fn blocking_check<E: std::fmt::Display>(
    name: &str,
    f: impl FnOnce() -> Result<(), E> + Send + 'static,
) -> Check {
    match tokio::task::spawn_blocking(move || f().map_err(|e| e.to_string())).await {
        Ok(r) => Check::from_result(name, r),
        Err(e) => Check::failed(name, format!("the check failed: {e}")),
    }
}

/// Readiness from a storage check and peers (`name`, `url`) probed with
/// [`peer`], in that order.
pub fn readiness<F, Fut>(storage: F, peers: Vec<(String, String)>) -> Readiness
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Check> + Send + 'static,
{
    let http = crate::http_client_with(PEER_TIMEOUT);
    let peers = Arc::new(peers);
    Arc::new(move || {
        let (http, peers, storage) = (http.clone(), peers.clone(), storage());
        Box::pin(async move {
            let mut checks = vec![storage.await];
            for (name, url) in peers.iter() {
                checks.push(peer(&http, name.clone(), url).await);
            }
            checks
        })
    })
}

#[derive(Serialize)]
struct Ready {
    ready: bool,
    checks: Vec<Check>,
}

#[derive(Serialize)]
struct NotReady {
    error: &'static str,
    message: String,
    checks: Vec<Check>,
}

async fn readyz(ready: Readiness) -> Response {
    let checks = ready().await;
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    if failed.is_empty() {
        axum::Json(Ready {
            ready: true,
            checks,
        })
        .into_response()
    } else {
        let message = format!("not ready: {}", failed.join(", "));
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(NotReady {
                error: "not_ready",
                message,
                checks,
            }),
        )
            .into_response()
    }
}

/// `GET /healthz` and `GET /readyz`, to merge into a server's router.
pub fn health_routes<S: Clone + Send + Sync + 'static>(ready: Readiness) -> Router<S> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"alive": true})) }),
        )
        .route("/readyz", get(move || readyz(ready.clone())))
}

/// The arguments and subcommands of `command` (and of its subcommands)
/// that have no help text, as `path: --name`: every binary's tests assert
/// there are none, so `--help` explains every argument.
pub fn undocumented(command: &clap::Command) -> Vec<String> {
    let mut missing = Vec::new();
    walk(command, command.get_name(), &mut missing);
    missing
}

fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") || arg.is_hide_set() {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            missing.push(format!("{path}: {id}"));
        }
    }
    for sub in command.get_subcommands() {
        let sub_path = format!("{path} {}", sub.get_name());
        if sub.get_name() != "help" && sub.get_about().is_none() && sub.get_long_about().is_none() {
            missing.push(sub_path.clone());
        }
        walk(sub, &sub_path, missing);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;

    async fn get_json(app: &Router, uri: &str) -> (u16, serde_json::Value) {
        let r = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status().as_u16();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    // /healthz always answers; /readyz is 200 while every check passes and 503 not_ready naming the failed check, each time asked anew.
    #[tokio::test]
    async fn readyz_runs_the_checks_each_time() {
        let storage_ok = Arc::new(AtomicBool::new(true));
        let flag = storage_ok.clone();
        let ready: Readiness = Arc::new(move || {
            let ok = flag.load(Ordering::SeqCst);
            Box::pin(async move {
                vec![
                    Check::from_result("storage", if ok { Ok(()) } else { Err("disk gone") }),
                    Check::ok("log http://x"),
                ]
            })
        });
        let app: Router = health_routes(ready);
        assert_eq!(get_json(&app, "/healthz").await.0, 200);
        let (status, body) = get_json(&app, "/readyz").await;
        assert_eq!((status, body["ready"].as_bool()), (200, Some(true)));
        storage_ok.store(false, Ordering::SeqCst);
        let (status, body) = get_json(&app, "/readyz").await;
        assert_eq!(status, 503);
        assert_eq!(body["error"], "not_ready");
        assert_eq!(body["message"], "not ready: storage");
        assert_eq!(body["checks"][0]["detail"], "disk gone");
        assert_eq!(get_json(&app, "/healthz").await.0, 200);
    }

    // A peer that refuses connections is named with the URL it was looked for at.
    #[tokio::test]
    async fn an_unreachable_peer_fails_its_check() {
        let http = reqwest::Client::new();
        let c = peer(&http, "log".into(), "http://127.0.0.1:1/checkpoint").await;
        assert!(!c.ok);
        assert!(c.detail.unwrap().contains("127.0.0.1:1"));
    }

    #[test]
    fn the_version_names_the_commit() {
        assert!(VERSION.contains("(commit "), "{VERSION}");
        assert!(!COMMIT.is_empty());
    }
}
