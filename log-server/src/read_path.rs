//! The C2SP tlog-tiles read path (https://c2sp.org/tlog-tiles): the signed
//! checkpoint, hash tiles and entry bundles, byte for byte as the spec lays
//! them out, so that any static file server or CDN could serve them.
//!
//! Only what a published checkpoint covers is served: a tile or bundle past
//! the published size is 404, so nothing not yet durable ever leaves the
//! log. The contents at a path never change, hence the immutable caching.

use acd_core::tile::{self, TilePath};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::api::AppState;
use crate::error::ApiError;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn body(bytes: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// `GET /checkpoint`: the latest checkpoint that went through a witness
/// round, with the cosignatures collected (the latest published one when no
/// witness is configured).
pub async fn checkpoint(State(state): State<AppState>) -> Response {
    let note = match &state.cosigned {
        Some(cosigned) => cosigned.borrow().note.clone(),
        None => state.sequencer.published().checkpoint.clone(),
    };
    body(note.into_bytes(), "text/plain; charset=utf-8", "no-cache")
}

/// `GET /vkey`: the log's verifier key in signed-note vkey form.
pub async fn vkey(State(state): State<AppState>) -> Response {
    body(
        format!("{}\n", state.verifier.vkey()).into_bytes(),
        "text/plain; charset=utf-8",
        "public, max-age=3600",
    )
}

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`.
pub async fn tile(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(path) = path?;
    // The route already consumed the `tile/` prefix: re-adding it means a
    // second `tile/` (as in /tile/tile/0/000) is not accepted as an alias.
    let parsed = tile::parse_tile_path(&format!("tile/{path}"))
        .map_err(|e| ApiError::not_found("bad_tile_path", e.to_string()))?;
    let size = state.sequencer.published().size;
    match parsed {
        TilePath::Hashes(id) => {
            let wanted = u64::from(id.width);
            let available = tile::tile_width(id.level, id.index, size);
            if wanted > available {
                return Err(ApiError::not_found(
                    "no_such_tile",
                    format!("tile {path} is not published"),
                ));
            }
            let bytes = state.storage.tile(id.level, id.index)?.ok_or_else(|| {
                ApiError::Internal(format!("published tile {path} missing from storage"))
            })?;
            let len = (wanted as usize) * 32;
            let slice = bytes
                .get(..len)
                .ok_or_else(|| ApiError::Internal(format!("stored tile {path} is short")))?;
            Ok(body(slice.to_vec(), "application/octet-stream", IMMUTABLE))
        }
        TilePath::Entries { index, width } => {
            let wanted = u64::from(width);
            if wanted > tile::tile_width(0, index, size) {
                return Err(ApiError::not_found(
                    "no_such_bundle",
                    format!("entry bundle {path} is not published"),
                ));
            }
            let bytes = state.storage.bundle(index)?.ok_or_else(|| {
                ApiError::Internal(format!("published bundle {path} missing from storage"))
            })?;
            let entries = tile::decode_bundle(&bytes)
                .map_err(|e| ApiError::Internal(format!("stored bundle {path}: {e}")))?;
            let kept = entries
                .get(..wanted as usize)
                .ok_or_else(|| ApiError::Internal(format!("stored bundle {path} is short")))?;
            let out = tile::encode_bundle(kept)
                .map_err(|e| ApiError::Internal(format!("bundle {path}: {e}")))?;
            Ok(body(out, "application/octet-stream", IMMUTABLE))
        }
    }
}
