//! The HTTP side of the C2SP tlog-tiles read path ([`crate::engine::read`]):
//! plain bytes with the spec's content types. The contents at a tile path
//! never change, hence the immutable caching.

use acd_serve::{ApiError, ApiPath};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn body(bytes: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// `GET /checkpoint`.
pub async fn checkpoint(State(state): State<AppState>) -> Response {
    let note = state.engine.checkpoint();
    body(note.into_bytes(), "text/plain; charset=utf-8", "no-cache")
}

/// `GET /vkey`: the log's verifier key in signed-note vkey form.
pub async fn vkey(State(state): State<AppState>) -> Response {
    body(
        format!("{}\n", state.engine.verifier.vkey()).into_bytes(),
        "text/plain; charset=utf-8",
        "public, max-age=3600",
    )
}

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`.
pub async fn tile(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<String>,
) -> Result<Response, ApiError> {
    let bytes = state.engine.tile(&path)?;
    Ok(body(bytes, "application/octet-stream", IMMUTABLE))
}
