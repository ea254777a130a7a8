//! The log explorer (`explorer/web/`, checks in `explorer/src/lib.rs`): a
//! static page at `/` with its script, style and verifier under
//! `/explorer/`, compiled into the binary so every log serves it; and
//! `GET /api/v1/log`, the log's key and the witnesses it asks, which the
//! page offers as the keys to trust until the user pins their own.
//!
//! The page is the same set of files a mirror of the read path can serve:
//! it fetches only paths relative to itself.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;

const INDEX: &str = include_str!("../../../explorer/web/index.html");
const SCRIPT: &str = include_str!("../../../explorer/web/explorer.js");
const STYLE: &str = include_str!("../../../explorer/web/explorer.css");
/// Built by `scripts/build-explorer.sh`; `scripts/test.sh` checks it is the
/// build of the sources beside it.
const VERIFIER: &[u8] = include_bytes!("../../../explorer/web/acd_explorer.wasm");

/// The explorer's files as a static server serves them: the page at the
/// root of a mirror of the read path, its assets under `explorer/`.
pub const FILES: [(&str, &[u8]); 4] = [
    ("index.html", INDEX.as_bytes()),
    ("explorer/explorer.js", SCRIPT.as_bytes()),
    ("explorer/explorer.css", STYLE.as_bytes()),
    ("explorer/acd_explorer.wasm", VERIFIER),
];

/// Writes [`FILES`] into `dir` (`acd-log explorer --out DIR`), each
/// through a temporary file renamed into place, so that a static server
/// never serves half a file. Returns the paths written.
pub fn write_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    for (name, bytes) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("tmp-acd");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// The page runs only its own script and its own WebAssembly, and talks
/// only to this server.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    r
}

/// `GET /`.
pub async fn index() -> Response {
    asset(INDEX.as_bytes(), "text/html; charset=utf-8")
}

/// `GET /explorer/explorer.js`.
pub async fn script() -> Response {
    asset(SCRIPT.as_bytes(), "text/javascript; charset=utf-8")
}

/// `GET /explorer/explorer.css`.
pub async fn style() -> Response {
    asset(STYLE.as_bytes(), "text/css; charset=utf-8")
}

/// `GET /explorer/acd_explorer.wasm`.
pub async fn verifier() -> Response {
    asset(VERIFIER, "application/wasm")
}

/// `GET /api/v1/log`.
#[derive(Debug, Serialize)]
pub struct LogInfo {
    pub origin: String,
    /// The log's signed-note verifier key.
    pub vkey: String,
    /// Cosignature keys of the witnesses the log asks; it publishes a
    /// checkpoint as witnessed once all of them cosigned.
    pub witnesses: Vec<String>,
    pub threshold: usize,
}

pub async fn info(State(state): State<AppState>) -> Json<LogInfo> {
    let witnesses: Vec<String> = state.engine.witnesses.iter().cloned().collect();
    Json(LogInfo {
        origin: state.engine.origin.to_string(),
        vkey: state.engine.verifier.vkey(),
        threshold: witnesses.len(),
        witnesses,
    })
}
