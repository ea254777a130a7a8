//! What every acd server (log, bank, merchant, auditor) shares and none of
//! them is about: the JSON error response, graceful shutdown on SIGTERM or
//! Ctrl-C, logging set-up, secret files (keys, tokens) written once,
//! atomically, readable by their owner only, and opening sled.

pub mod metrics;
pub mod secret;

use acd_core::log_api::{EntryProof, ErrorBody};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The one shape of every error answer: `{"error": code, "message": ...}`
/// (plus the entry already logged, for a log's conflict). A 503 carries
/// `Retry-After: 1`, since every 503 of ours is back-pressure or a storage
/// hiccup worth retrying.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: String,
    existing: Option<Box<EntryProof>>,
) -> Response {
    let body = ErrorBody {
        error: code.to_owned(),
        message,
        existing,
    };
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The answer to a bug or a broken disk: the detail goes to the server's
/// log only, the client learns nothing about the inside.
pub fn internal_error(detail: &str) -> Response {
    tracing::error!(%detail, "internal error");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error".to_owned(),
        None,
    )
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), in colour only
/// on a terminal. A second call (several servers in one process, as in
/// tests and the demo) keeps the first set-up.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM, so that a server finishes what it has
/// accepted and exits 0 when an operator or a supervisor stops it.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}

/// Opens the sled database `config` describes. A database this process
/// just closed can stay locked for a moment while sled's I/O threads finish
/// (an in-process restart, as tests and the demo do); that is waited for,
/// up to 2 s. A lock another process holds is reported.
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response) -> serde_json::Value {
        let bytes = r
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    // A database reopened right after it was closed opens; while another
    // handle holds it, opening fails with the lock error after the wait.
    #[test]
    fn sled_reopens_and_reports_a_held_lock() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = sled::Config::new().path(dir.path());
        for _ in 0..3 {
            drop(open_sled(&config).unwrap_or_else(|e| panic!("{e}")));
        }
        let held = open_sled(&config).unwrap_or_else(|e| panic!("{e}"));
        let started = std::time::Instant::now();
        let err = open_sled(&config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("could not acquire lock"), "{err}");
        assert!(started.elapsed() >= std::time::Duration::from_secs(2));
        drop(held);
        drop(open_sled(&config).unwrap_or_else(|e| panic!("{e}")));
    }

    #[tokio::test]
    async fn errors_are_json_and_503_says_when_to_retry() {
        let r = error_response(StatusCode::CONFLICT, "conflict", "taken".into(), None);
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(
            body(r).await,
            serde_json::json!({"error": "conflict", "message": "taken"})
        );

        let r = error_response(StatusCode::SERVICE_UNAVAILABLE, "busy", "busy".into(), None);
        assert_eq!(
            r.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("1"))
        );

        let r = internal_error("disk at /secret/path failed");
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = body(r).await.to_string();
        assert!(!text.contains("secret"), "{text}");
    }
}
