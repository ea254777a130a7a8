//! The read path that `acd-log serve --tiles` publishes, read back through
//! servers with no acd code in them: nginx serving the `file://`
//! directory, and an S3-compatible server (moto, see
//! scripts/services/s3.sh) serving the `s3://` bucket over plain HTTP. The
//! mirror is verified by the monitor, by the independent C2SP
//! implementation of the interop tests (signature, roots, consistency and
//! inclusion from the tiles), and byte for byte against what the log
//! serves itself; while the log grows, no checkpoint on the target is ever
//! ahead of its tiles; no file is half written.
//!
//! nginx and the S3 server come from scripts/test.sh (ACD_TEST_NGINX,
//! ACD_TEST_S3_*); without them these tests fail when CI is set and skip
//! otherwise.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use acd_core::tile::TilePath;
use acd_log_server::publish::changed_paths;
use acd_tests::{LogProcess, Nginx, binary, loadgen_log, monitor_once, outside};
use serde_json::Value;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{
    Checkpoint, Tile, TileHashReader, TileReader, check_record, check_tree, prove_record,
    prove_tree, record_hash, tree_hash,
};

const ORIGIN: &str = "static.test/log";
const SIZE_A: u64 = 600;
const SIZE_B: u64 = 1300;

async fn fetch(url: &str) -> Option<reqwest::Response> {
    let resp = reqwest::get(url).await.unwrap();
    resp.status().is_success().then_some(resp)
}

async fn bytes_at(url: &str) -> Option<Vec<u8>> {
    Some(fetch(url).await?.bytes().await.unwrap().to_vec())
}

/// Waits until the mirror at `read_url` serves the log's checkpoint.
async fn wait_mirrored(log_url: &str, read_url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = bytes_at(&format!("{log_url}/checkpoint")).await.unwrap();
        if bytes_at(&format!("{read_url}/checkpoint")).await.as_ref() == Some(&live) {
            return String::from_utf8(live).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the mirror did not catch up with the log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn open_independently(note_text: &str, vkey: &str) -> Checkpoint {
    let verifiers = VerifierList::new(vec![Box::new(StandardVerifier::new(vkey).unwrap())]);
    let note = Note::from_bytes(note_text.as_bytes()).unwrap();
    let (verified, _) = note.verify(&verifiers).unwrap();
    assert_eq!(verified.len(), 1);
    Checkpoint::from_bytes(note.text()).unwrap()
}

/// C2SP path of a tile of Go's layout (height 8 dropped).
fn c2sp_path(t: &Tile) -> String {
    format!("tile/{}", t.path().strip_prefix("tile/8/").unwrap())
}

struct FetchedTiles(HashMap<String, Vec<u8>>);

impl TileReader for FetchedTiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                self.0
                    .get(&c2sp_path(t))
                    .cloned()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Verifies the mirror at `read_url` holding checkpoints `text_a` then
/// `text_b` (sizes A and B) independently, and byte for byte against the
/// log at `log_url`.
async fn verify_mirror(log_url: &str, vkey: &str, read_url: &str, text_a: &str, text_b: &str) {
    let a = open_independently(text_a, vkey);
    let b = open_independently(text_b, vkey);
    assert_eq!((a.size(), b.size()), (SIZE_A, SIZE_B));

    // Headers as published: the checkpoint uncached, tiles immutable.
    let cp = fetch(&format!("{read_url}/checkpoint")).await.unwrap();
    assert_eq!(header(&cp, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(header(&cp, "cache-control"), "no-cache");
    let full = fetch(&format!("{read_url}/tile/0/000")).await.unwrap();
    assert_eq!(header(&full, "content-type"), "application/octet-stream");
    assert_eq!(
        header(&full, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let partial = fetch(&format!("{read_url}/tile/0/005.p/20")).await.unwrap();
    assert_eq!(header(&partial, "cache-control"), "public, max-age=60");

    // Every hash tile of A and B from the mirror, identical to the log's.
    let mut fetched = HashMap::new();
    for t in Tile::new_tiles(8, 0, SIZE_B)
        .iter()
        .chain(&Tile::new_tiles(8, 0, SIZE_A))
    {
        let path = c2sp_path(t);
        let mirrored = bytes_at(&format!("{read_url}/{path}")).await;
        let live = bytes_at(&format!("{log_url}/{path}")).await;
        assert!(mirrored.is_some(), "{path} is not on the mirror");
        assert_eq!(mirrored, live, "{path}");
        fetched.insert(path, mirrored.unwrap());
    }
    let fetched = FetchedTiles(fetched);

    // Every entry bundle of B: identical, and its entries hash to the tiles.
    let mut entries = Vec::new();
    for n in 0..SIZE_B.div_ceil(256) {
        let width = (SIZE_B - n * 256).min(256) as u16;
        let path = TilePath::Entries { index: n, width }.to_path();
        let mirrored = bytes_at(&format!("{read_url}/{path}")).await.unwrap();
        assert_eq!(
            Some(&mirrored),
            bytes_at(&format!("{log_url}/{path}")).await.as_ref(),
            "{path}"
        );
        for e in acd_core::tile::decode_bundle(&mirrored).unwrap() {
            entries.push(e.to_vec());
        }
    }
    assert_eq!(entries.len() as u64, SIZE_B);

    let reader_b = TileHashReader::new(SIZE_B, *b.hash(), &fetched);
    assert_eq!(tree_hash(SIZE_B, &reader_b).unwrap(), *b.hash());
    let reader_a = TileHashReader::new(SIZE_A, *a.hash(), &fetched);
    assert_eq!(tree_hash(SIZE_A, &reader_a).unwrap(), *a.hash());
    let consistency = prove_tree(SIZE_B, SIZE_A, &reader_b).unwrap();
    check_tree(&consistency, SIZE_B, *b.hash(), SIZE_A, *a.hash()).unwrap();
    for i in [0u64, 1, 255, 256, 599, 600, 1023, 1024, 1299] {
        let proof = prove_record(SIZE_B, i, &reader_b).unwrap();
        check_record(
            &proof,
            SIZE_B,
            *b.hash(),
            i,
            record_hash(&entries[i as usize]),
        )
        .unwrap_or_else(|e| panic!("entry {i}: {e}"));
    }
}

fn monitor_json(out: &str) -> Value {
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

/// How a test reads the target: the directory itself, or over HTTP.
#[derive(Clone)]
enum Reader {
    Dir(PathBuf),
    Http(String),
}

impl Reader {
    async fn get(&self, path: &str) -> Option<Vec<u8>> {
        match self {
            Reader::Dir(dir) => std::fs::read(dir.join(path)).ok(),
            Reader::Http(url) => bytes_at(&format!("{url}/{path}")).await,
        }
    }
}

/// Until `stop`: reads the target's checkpoint again and again and checks
/// that every tile and bundle of its tree is there. Returns the distinct
/// sizes seen.
async fn watch_coverage(reader: Reader, stop: Arc<AtomicBool>) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    while !stop.load(Ordering::Relaxed) {
        if let Some(cp) = reader.get("checkpoint").await {
            let text = String::from_utf8(cp).unwrap();
            let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
            for p in changed_paths(0, size) {
                let path = p.to_path();
                assert!(
                    reader.get(&path).await.is_some(),
                    "the checkpoint of size {size} is published before {path}"
                );
            }
            seen.insert(size);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    seen
}

/// Grows the log by `n` entries while watching the target's coverage.
async fn grow_watched(log_url: &str, n: u64, reader: Reader) -> BTreeSet<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_coverage(reader, stop.clone()));
    let url = log_url.to_owned();
    tokio::task::spawn_blocking(move || loadgen_log(&url, n, 32))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    watcher.await.unwrap()
}

/// Every file under `dir`, relative.
fn files_under(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir.join(rel)).unwrap() {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            files_under(dir, &r, out);
        } else {
            out.push(r);
        }
    }
}

// A log filled by loadgen, then restarted with --tiles file://DIR, catches the directory up from its storage; nginx serving DIR is then followed by the monitor and verified independently (signature, roots, consistency, inclusion from the tiles); while the log grows the checkpoint in DIR is never ahead of its tiles; every file in DIR is at a C2SP path, byte-identical to what the log serves there, and none is a leftover temporary file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_mirror_served_by_nginx() {
    let Some(nginx_bin) = outside("ACD_TEST_NGINX") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let root = dir.path().join("pub");
    let tiles = format!("file://{}", root.display());

    // Entries the log holds before it publishes anything.
    let log = LogProcess::start_log_with(&data, ORIGIN, &[]);
    loadgen_log(&log.url, SIZE_A, 32);
    log.kill();
    let log = LogProcess::start_log_with(&data, ORIGIN, &["--tiles", &tiles]);
    let nginx = Nginx::start(&nginx_bin, &root);
    let text_a = wait_mirrored(&log.url, &nginx.url).await;
    assert_eq!(open_independently(&text_a, &log.vkey).size(), SIZE_A);

    let mon = tempfile::tempdir().unwrap();
    let (ok, out) = monitor_once(mon.path(), &log.vkey, &nginx.url);
    assert!(ok, "{out}");
    assert_eq!(monitor_json(&out)["verified_size"], SIZE_A);

    let seen = grow_watched(&log.url, SIZE_B - SIZE_A, Reader::Dir(root.clone())).await;
    let text_b = wait_mirrored(&log.url, &nginx.url).await;
    assert!(seen.len() >= 3, "checkpoints seen while growing: {seen:?}");
    println!(
        "{} checkpoints seen on the target while growing",
        seen.len()
    );

    verify_mirror(&log.url, &log.vkey, &nginx.url, &text_a, &text_b).await;
    let (ok, out) = monitor_once(mon.path(), &log.vkey, &nginx.url);
    assert!(ok, "{out}");
    assert_eq!(monitor_json(&out)["verified_size"], SIZE_B);
    assert_eq!(monitor_json(&out)["new_entries"], SIZE_B - SIZE_A);

    let mut files = Vec::new();
    files_under(&root, Path::new(""), &mut files);
    for rel in &files {
        let path = rel.to_str().unwrap();
        assert!(
            path == "checkpoint" || acd_core::tile::parse_tile_path(path).is_ok(),
            "{path} is not a C2SP path (a leftover temporary file?)"
        );
        let on_disk = std::fs::read(root.join(rel)).unwrap();
        assert_eq!(
            bytes_at(&format!("{}/{path}", log.url)).await,
            Some(on_disk.clone()),
            "{path}"
        );
        assert_eq!(
            bytes_at(&format!("{}/{path}", nginx.url)).await,
            Some(on_disk),
            "{path} through nginx"
        );
    }
    println!("{} files in the directory", files.len());
}

// The same against a real S3-compatible server: a log with --tiles s3://BUCKET/PREFIX (settings from AWS_* variables) is read back through the server's plain HTTP URL by the monitor and the independent verification, byte-identical to the log, with the cache headers stored per object; its checkpoint is never ahead of its tiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_mirror() {
    let Some(endpoint) = outside("ACD_TEST_S3_ENDPOINT") else {
        return;
    };
    let bucket = std::env::var("ACD_TEST_S3_BUCKET").unwrap();
    let access = std::env::var("ACD_TEST_S3_ACCESS_KEY").unwrap();
    let secret = std::env::var("ACD_TEST_S3_SECRET_KEY").unwrap();
    let region = std::env::var("ACD_TEST_S3_REGION").unwrap();
    let mut tag = [0u8; 8];
    rand::fill(&mut tag);
    let prefix = format!("logs/{}", hex::encode(tag));
    let tiles = format!("s3://{bucket}/{prefix}");
    let read_url = format!("{endpoint}/{bucket}/{prefix}");
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", access.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ("AWS_DEFAULT_REGION", region.as_str()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let log = LogProcess::start_log_env(dir.path(), ORIGIN, &["--tiles", &tiles], &env);
    let seen_a = grow_watched(&log.url, SIZE_A, Reader::Http(read_url.clone())).await;
    let text_a = wait_mirrored(&log.url, &read_url).await;
    let mon = tempfile::tempdir().unwrap();
    let (ok, out) = monitor_once(mon.path(), &log.vkey, &read_url);
    assert!(ok, "{out}");
    assert_eq!(monitor_json(&out)["verified_size"], SIZE_A);

    let seen_b = grow_watched(&log.url, SIZE_B - SIZE_A, Reader::Http(read_url.clone())).await;
    let text_b = wait_mirrored(&log.url, &read_url).await;
    assert!(
        seen_a.len() + seen_b.len() >= 3,
        "checkpoints seen: {seen_a:?} {seen_b:?}"
    );
    verify_mirror(&log.url, &log.vkey, &read_url, &text_a, &text_b).await;
    let (ok, out) = monitor_once(mon.path(), &log.vkey, &read_url);
    assert!(ok, "{out}");
    assert_eq!(monitor_json(&out)["verified_size"], SIZE_B);
}

// A --tiles URL of another scheme is refused at start, naming the problem, before the data directory is created.
#[test]
fn bad_tiles_url_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(binary("acd-log"))
        .args(["serve", "--listen", "127.0.0.1:0", "--origin", ORIGIN])
        .arg("--data")
        .arg(&data)
        .args(["--tiles", "ftp://example.com/tiles"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("file:// or s3://"), "{err}");
    assert!(!data.exists(), "the data directory was created");
}
