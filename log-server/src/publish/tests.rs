#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use acd_core::tile::{self, TileId, TilePath};
use proptest::prelude::*;

use super::*;

fn paths(old: u64, new: u64) -> Vec<String> {
    changed_paths(old, new)
        .iter()
        .map(TilePath::to_path)
        .collect()
}

// The URL forms `--tiles` takes, and clear refusals of everything else.
#[test]
fn tiles_urls() {
    assert_eq!(
        TilesUrl::parse("file:///srv/log").unwrap(),
        TilesUrl::File("/srv/log".into())
    );
    assert_eq!(
        TilesUrl::parse("s3://acd-log/public/tiles/").unwrap(),
        TilesUrl::S3 {
            bucket: "acd-log".into(),
            prefix: "public/tiles".into()
        }
    );
    assert_eq!(
        TilesUrl::parse("s3://acd-log").unwrap(),
        TilesUrl::S3 {
            bucket: "acd-log".into(),
            prefix: String::new()
        }
    );
    for bad in [
        "/srv/log",
        "file://srv/log",
        "file:///srv/../etc",
        "http://example.com/log",
        "s3://",
        "s3://Upper/x",
        "s3://ok-bucket/a/../b",
        "",
    ] {
        let e = TilesUrl::parse(bad).unwrap_err().to_string();
        assert!(e.contains("invalid --tiles URL"), "{bad}: {e}");
    }
}

// The files a new checkpoint adds, in the C2SP layout: partial tiles at their new width, a tile that fills up as a full one, a new level's first partial tile.
#[test]
fn changed_paths_examples() {
    assert_eq!(paths(0, 0), Vec::<String>::new());
    assert_eq!(paths(5, 5), Vec::<String>::new());
    assert_eq!(paths(0, 1), ["tile/entries/000.p/1", "tile/0/000.p/1"]);
    assert_eq!(
        paths(255, 256),
        ["tile/entries/000", "tile/0/000", "tile/1/000.p/1"]
    );
    assert_eq!(
        paths(256, 300),
        ["tile/entries/001.p/44", "tile/0/001.p/44"]
    );
    assert_eq!(
        paths(200, 600),
        [
            "tile/entries/000",
            "tile/entries/001",
            "tile/entries/002.p/88",
            "tile/0/000",
            "tile/0/001",
            "tile/0/002.p/88",
            "tile/1/000.p/2",
        ]
    );
    assert_eq!(
        paths(65535, 65536),
        [
            "tile/entries/255",
            "tile/0/255",
            "tile/1/000",
            "tile/2/000.p/1"
        ]
    );
}

proptest! {
    // Exactly the tiles and bundles whose width differs between the two trees, each at its width in the newer one.
    #[test]
    fn changed_paths_are_the_tiles_that_differ(old in 0u64..200_000, add in 0u64..70_000) {
        let new = old + add;
        let mut expected = BTreeSet::new();
        for level in 0..4u8 {
            for index in 0..=(new >> (8 * u32::from(level))) / 256 {
                let (w_old, w_new) = (
                    tile::tile_width(level, index, old),
                    tile::tile_width(level, index, new),
                );
                if w_new != w_old {
                    expected.insert(TilePath::Hashes(TileId { level, index, width: w_new as u16 }).to_path());
                    if level == 0 {
                        expected.insert(TilePath::Entries { index, width: w_new as u16 }.to_path());
                    }
                }
            }
        }
        let got: BTreeSet<String> = paths(old, new).into_iter().collect();
        prop_assert_eq!(got.len(), paths(old, new).len());
        prop_assert_eq!(got, expected);
    }
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}

// A file is written as a temporary file in its own directory, fsynced, renamed into place and the directory fsynced; new directories are fsynced into their parents; the result is world-readable and no temporary file remains.
#[test]
fn file_target_durability_steps() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pub");
    let t = FileTarget::open(&root).unwrap();
    t.steps.lock().unwrap().clear();
    t.put("tile/0/x001/002", b"first").unwrap();
    assert_eq!(
        *t.steps.lock().unwrap(),
        [
            "mkdir tile",
            "fsync-dir ",
            "mkdir tile/0",
            "fsync-dir tile",
            "mkdir tile/0/x001",
            "fsync-dir tile/0",
            "create <tmp>",
            "fsync <tmp>",
            "rename tile/0/x001/002",
            "fsync-dir tile/0/x001",
        ]
    );
    let file = root.join("tile/0/x001/002");
    assert_eq!(std::fs::read(&file).unwrap(), b"first");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);

    t.steps.lock().unwrap().clear();
    t.put("tile/0/x001/002", b"second").unwrap();
    assert_eq!(
        *t.steps.lock().unwrap(),
        [
            "create <tmp>",
            "fsync <tmp>",
            "rename tile/0/x001/002",
            "fsync-dir tile/0/x001",
        ]
    );
    assert_eq!(t.get("tile/0/x001/002").unwrap().unwrap(), b"second");
    assert_eq!(t.get("checkpoint").unwrap(), None);
    assert_eq!(
        files_under(&root),
        [file.display().to_string()],
        "only the published file"
    );
}

// Publication paths map to files under the root only.
#[test]
fn file_target_paths() {
    let dir = tempfile::tempdir().unwrap();
    let t = FileTarget::open(dir.path()).unwrap();
    assert_eq!(
        t.file_for("tile/entries/x001/002.p/7").unwrap(),
        dir.path().join("tile/entries/x001/002.p/7")
    );
    assert_eq!(
        t.file_for("checkpoint").unwrap(),
        dir.path().join("checkpoint")
    );
    for bad in [
        "",
        "../x",
        "/etc/passwd",
        "tile/../../x",
        "tile/.acd-tmp1",
        "./checkpoint",
    ] {
        assert!(t.file_for(bad).is_err(), "{bad}");
        assert!(t.put(bad, b"x").is_err(), "{bad}");
    }
}

// Temporary files a crash left behind are removed when the target opens; published files stay.
#[test]
fn file_target_removes_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tile/0")).unwrap();
    std::fs::write(dir.path().join("tile/0/.acd-tmpXYZ"), b"half").unwrap();
    std::fs::write(dir.path().join("tile/0/000"), b"kept").unwrap();
    FileTarget::open(dir.path()).unwrap();
    assert_eq!(
        files_under(dir.path()),
        [dir.path().join("tile/0/000").display().to_string()]
    );
}

// Full tiles are cached for a year as immutable, partial ones briefly, the checkpoint not at all.
#[test]
fn cache_headers() {
    assert_eq!(
        Kind::Immutable.cache_control(),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(Kind::Partial.cache_control(), "public, max-age=60");
    assert_eq!(Kind::Checkpoint.cache_control(), "no-cache");
    assert_eq!(Kind::Checkpoint.content_type(), "text/plain; charset=utf-8");
    assert_eq!(Kind::Immutable.content_type(), "application/octet-stream");
}

fn signed_commit(merchant: &ed25519_dalek::SigningKey, i: u16) -> acd_core::log_api::CommitRequest {
    let mut tid = [0u8; 16];
    tid[..2].copy_from_slice(&i.to_be_bytes());
    let kc = acd_core::entry::KeyCommit {
        log_origin: "log.test/publish".into(),
        tid: acd_core::entry::Tid(tid),
        merchant: merchant.verifying_key().to_bytes(),
        expiration_ms: 2_000_000,
        key: [9; 32],
    };
    acd_core::log_api::CommitRequest {
        tid: kc.tid,
        merchant: kc.merchant,
        expiration_ms: kc.expiration_ms,
        key: kc.key,
        signature: kc.sign(merchant),
    }
}

fn target_size(root: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(root.join("checkpoint")).ok()?;
    text.lines().nth(1)?.parse().ok()
}

// While the target refuses writes, appends still succeed and the target's checkpoint stays behind (never ahead of its tiles); once the target works again the publisher retries by itself and catches up, every file identical to what the log serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_never_blocks_appends_and_catches_up() {
    use crate::Log;
    use crate::clock::ManualClock;
    use crate::config::LogConfig;
    use crate::storage::MemoryStorage;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pub");
    std::fs::create_dir(&root).unwrap();
    // A file where the tile directory must go: every tile write fails.
    std::fs::write(root.join("tile"), b"in the way").unwrap();
    let mut config = LogConfig::new("/nonexistent".into(), "log.test/publish".into());
    config.tiles = Some(format!("file://{}", root.display()));
    let signer = acd_core::note::NoteSigner::new(
        "log.test/publish",
        ed25519_dalek::SigningKey::from_bytes(&[4; 32]),
    )
    .unwrap();
    let log = Log::with_storage(
        &config,
        Arc::new(MemoryStorage::new()),
        signer,
        Arc::new(ManualClock::new(1_000_000)),
    )
    .unwrap();
    let engine = log.state().clone();
    let merchant = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    for i in 0..300u16 {
        engine.commit(signed_commit(&merchant, i)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        target_size(&root).unwrap_or(0) == 0,
        "a checkpoint was published without its tiles"
    );

    std::fs::remove_file(root.join("tile")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while target_size(&root) != Some(300) {
        assert!(
            std::time::Instant::now() < deadline,
            "the target did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read_to_string(root.join("checkpoint")).unwrap(),
        engine.checkpoint()
    );
    for p in changed_paths(0, 300) {
        let path = p.to_path();
        let on_disk = std::fs::read(root.join(&path)).unwrap();
        let served = engine.tile(path.strip_prefix("tile/").unwrap()).unwrap();
        assert_eq!(on_disk, served, "{path}");
    }
}
