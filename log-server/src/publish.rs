//! Publishing the C2SP tlog-tiles read path (<https://c2sp.org/tlog-tiles>)
//! to a directory or an S3-compatible bucket (`--tiles URL`), so that any
//! static web server, bucket or CDN serves `checkpoint`, `tile/<L>/<N>` and
//! `tile/entries/<N>` byte for byte as the log itself does.
//!
//! The publisher follows the sequencer's published checkpoints (a watch
//! channel: it never blocks an append, and a publisher that falls behind
//! simply skips to the newest checkpoint, reading what it lacks from the
//! log's storage, so its backlog is bounded by nothing but the disk). For
//! every new checkpoint it writes, in this order:
//!
//! 1. the new full tiles and entry bundles, `Cache-Control: public,
//!    max-age=31536000, immutable` (their contents never change);
//! 2. the partial ones (`.p/<W>`) of the new tree, with a short cache: a
//!    reader of the new checkpoint needs them, and the monitor reads them;
//! 3. the checkpoint, `no-cache`, last.
//!
//! So a reader never sees a checkpoint whose tiles are missing. A failed
//! write is retried on the [`acd_serve::backoff`] schedule from the same
//! size; on start-up the publisher reads the target's own checkpoint and
//! republishes everything after it, up to the log's current checkpoint.
//! Older partial tiles are left in place: each is still a correct answer
//! for its width, and a reader holding an older checkpoint may want it.

mod file;
mod s3;

use std::sync::Arc;

use acd_core::checkpoint::SignedCheckpoint;
use acd_core::note::NoteVerifier;
use acd_core::tile::{self, TILE_HEIGHT, TILE_WIDTH, TileId, TilePath};
use acd_serve::backoff::Backoff;
use thiserror::Error;
use tokio::sync::watch;

pub use file::FileTarget;
pub use s3::S3Target;

use crate::engine::read::tile_bytes;
use crate::sequencer::Published;
use crate::storage::Storage;
use crate::witnessing::Cosigned;

/// Why publishing failed (it is retried) or cannot start.
#[derive(Debug, Error)]
pub enum PublishError {
    #[error("invalid --tiles URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("writing {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("reading {path} from the target: {reason}")]
    Read { path: String, reason: String },
    #[error("the S3 target: {0}")]
    S3(String),
    #[error("reading the log's storage: {0}")]
    Storage(String),
}

/// Where the read path is published, as given to `--tiles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TilesUrl {
    /// `file:///DIR`: an absolute directory.
    File(std::path::PathBuf),
    /// `s3://BUCKET[/PREFIX]`.
    S3 { bucket: String, prefix: String },
}

impl TilesUrl {
    /// Parses and checks a `--tiles` URL; touches nothing.
    pub fn parse(url: &str) -> Result<TilesUrl, PublishError> {
        let bad = |reason: &str| PublishError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad("a file URL needs an absolute path, file:///DIR"));
            }
            let dir = std::path::PathBuf::from(path);
            if dir
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(bad("the directory may not contain `..`"));
            }
            return Ok(TilesUrl::File(dir));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if !valid_bucket {
                return Err(bad(
                    "the bucket name must be 3 to 63 lowercase letters, digits, `-` or `.`",
                ));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|part| part == "." || part == "..") {
                return Err(bad("the prefix may not contain `.` or `..` segments"));
            }
            return Ok(TilesUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        Err(bad("the scheme must be file:// or s3://"))
    }
}

/// How a published file may be cached, which fixes its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A full tile or bundle: written once, never changes.
    Immutable,
    /// A partial tile or bundle: superseded by wider ones.
    Partial,
    /// The checkpoint: replaced on every publication.
    Checkpoint,
}

impl Kind {
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Checkpoint => "text/plain; charset=utf-8",
            Kind::Immutable | Kind::Partial => "application/octet-stream",
        }
    }

    pub fn cache_control(self) -> &'static str {
        match self {
            Kind::Immutable => "public, max-age=31536000, immutable",
            Kind::Partial => "public, max-age=60",
            Kind::Checkpoint => "no-cache",
        }
    }
}

/// A place the read path is published to.
pub enum Target {
    File(FileTarget),
    S3(S3Target),
}

impl Target {
    /// Opens the target: creates the directory, or configures the S3 client
    /// from the standard `AWS_*` variables (no request is made).
    pub fn open(url: &TilesUrl) -> Result<Target, PublishError> {
        match url {
            TilesUrl::File(dir) => FileTarget::open(dir).map(Target::File),
            TilesUrl::S3 { bucket, prefix } => S3Target::open(bucket, prefix).map(Target::S3),
        }
    }

    /// Writes `bytes` at `path` (relative, e.g. `tile/0/000`), whole or not
    /// at all.
    pub async fn put(&self, path: &str, bytes: Vec<u8>, kind: Kind) -> Result<(), PublishError> {
        match self {
            Target::File(f) => {
                let f = f.clone();
                let owned = path.to_owned();
                tokio::task::spawn_blocking(move || f.put(&owned, &bytes))
                    .await
                    .map_err(|e| PublishError::Write {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?
            }
            Target::S3(s) => s.put(path, bytes, kind).await,
        }
    }

    /// The bytes at `path`, if there are any.
    pub async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, PublishError> {
        match self {
            Target::File(f) => {
                let f = f.clone();
                let owned = path.to_owned();
                tokio::task::spawn_blocking(move || f.get(&owned))
                    .await
                    .map_err(|e| PublishError::Read {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?
            }
            Target::S3(s) => s.get(path).await,
        }
    }
}

/// The tile and bundle paths whose contents differ between the tree of
/// `old` entries and that of `new`, at their width in `new`: what must be
/// published for readers of `new`'s checkpoint, given `old`'s.
pub fn changed_paths(old: u64, new: u64) -> Vec<TilePath> {
    let mut out = Vec::new();
    if new <= old {
        return out;
    }
    let first = old / TILE_WIDTH;
    for index in first..new.div_ceil(TILE_WIDTH) {
        let width = tile::tile_width(0, index, new) as u16;
        out.push(TilePath::Entries { index, width });
    }
    for level in 0..=63u8 {
        let shift = u32::from(level) * u32::from(TILE_HEIGHT);
        let (old_nodes, new_nodes) = (old >> shift, new >> shift);
        // Higher levels change only if this one gains a node.
        if new_nodes == old_nodes {
            break;
        }
        for index in old_nodes / TILE_WIDTH..new_nodes.div_ceil(TILE_WIDTH) {
            let width = tile::tile_width(level, index, new) as u16;
            out.push(TilePath::Hashes(TileId {
                level,
                index,
                width,
            }));
        }
    }
    out
}

fn is_full(p: &TilePath) -> bool {
    let width = match p {
        TilePath::Hashes(id) => id.width,
        TilePath::Entries { width, .. } => *width,
    };
    u64::from(width) == TILE_WIDTH
}

/// What the publisher follows.
pub struct Sources {
    pub storage: Arc<dyn Storage>,
    pub verifier: NoteVerifier,
    /// The sequencer's published checkpoints; closed when it stops.
    pub published: watch::Receiver<Arc<Published>>,
    /// With witnesses: the cosigned checkpoint, which is the one published.
    pub cosigned: Option<watch::Receiver<Arc<Cosigned>>>,
}

impl Sources {
    /// The checkpoint to publish now: (size, note), as `/checkpoint` serves.
    fn current(&self) -> (u64, String) {
        match &self.cosigned {
            Some(c) => {
                let c = c.borrow();
                (c.size, c.note.clone())
            }
            None => {
                let p = self.published.borrow();
                (p.size, p.checkpoint.clone())
            }
        }
    }
}

/// Writes every file the tree of `new` adds to that of `done` (full ones,
/// then partial ones), then `note`, the checkpoint of size `new`.
pub async fn publish_once(
    target: &Target,
    storage: &Arc<dyn Storage>,
    done: u64,
    new: u64,
    note: &str,
) -> Result<(), PublishError> {
    let paths = changed_paths(done, new);
    let (full, partial): (Vec<_>, Vec<_>) = paths.into_iter().partition(is_full);
    for (kind, list) in [(Kind::Immutable, full), (Kind::Partial, partial)] {
        for p in list {
            let storage = storage.clone();
            let bytes = tokio::task::spawn_blocking(move || tile_bytes(&*storage, p, new))
                .await
                .map_err(|e| PublishError::Storage(e.to_string()))?
                .map_err(|e| PublishError::Storage(e.to_string()))?;
            target.put(&p.to_path(), bytes, kind).await?;
        }
    }
    target
        .put("checkpoint", note.as_bytes().to_vec(), Kind::Checkpoint)
        .await
}

/// The size of the target's checkpoint, if it holds one of this log's
/// that is no larger than `size`: everything up to it was published before
/// it. Anything else (none, unreadable, another key, larger) means start
/// from zero.
async fn target_size(target: &Target, verifier: &NoteVerifier, size: u64) -> u64 {
    match target.get("checkpoint").await {
        Ok(Some(bytes)) => {
            let opened = String::from_utf8(bytes)
                .ok()
                .and_then(|text| SignedCheckpoint::open(&text, verifier).ok());
            match opened {
                Some(c) if c.checkpoint.size <= size => c.checkpoint.size,
                _ => {
                    tracing::warn!("the target's checkpoint is not this log's; republishing all");
                    0
                }
            }
        }
        Ok(None) => 0,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the target's checkpoint; republishing all");
            0
        }
    }
}

/// Starts the publisher task: catches up from the target's checkpoint, then
/// publishes each new checkpoint, until the sequencer stops (the last
/// checkpoint is published before the task ends).
pub fn start(target: Target, mut sources: Sources) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (size, _) = sources.current();
        let mut done = target_size(&target, &sources.verifier, size).await;
        let mut last_note = String::new();
        let mut backoff = Backoff::default();
        let mut open = true;
        loop {
            let (size, note) = sources.current();
            if size >= done && note != last_note {
                let from = done.min(size);
                match publish_once(&target, &sources.storage, from, size, &note).await {
                    Ok(()) => {
                        tracing::debug!(size, "read path published");
                        done = size;
                        last_note = note;
                        backoff.reset();
                    }
                    Err(e) => {
                        backoff.failed();
                        let wait = backoff.wait();
                        tracing::warn!(error = %e, retry_in = ?wait, "publishing the read path failed");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
            }
            if !open {
                break;
            }
            open = wait_for_change(&mut sources).await;
        }
        tracing::info!(size = done, "read path publisher stopped");
    })
}

/// Waits for a new checkpoint; false once the sequencer has stopped.
async fn wait_for_change(sources: &mut Sources) -> bool {
    if let Some(c) = &mut sources.cosigned {
        tokio::select! {
            r = sources.published.changed() => return r.is_ok(),
            r = c.changed() => if r.is_ok() {
                return true;
            },
        }
    }
    sources.published.changed().await.is_ok()
}

#[cfg(test)]
mod tests;
