//! Interoperability: what `acd-log` publishes is verified by an independent
//! implementation of C2SP signed notes, checkpoints and tiles (Cloudflare's
//! `signed_note` and `tlog_tiles`, ports of Go's sumdb packages), fed only
//! by the log's HTTP read path.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use acd::log_client::LogClient;
use acd_core::note::NoteVerifier;
use acd_tests::{LogProcess, commit, fresh_tid, key, now_ms};
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{
    Checkpoint, Hash, Tile, TileHashReader, TileReader, check_record, check_tree, prove_record,
    prove_tree, record_hash, tree_hash,
};

const ORIGIN: &str = "interop.test/log";

/// Tiles fetched over HTTP, served to `tlog_tiles` by their C2SP path.
struct FetchedTiles(HashMap<String, Vec<u8>>);

/// The C2SP path of a tile: tlog_tiles writes Go's `tile/<H>/<L>/<N>`, and
/// C2SP drops the height.
fn c2sp_path(t: &Tile) -> String {
    let go = t.path();
    let rest = go.strip_prefix("tile/8/").unwrap();
    format!("tile/{rest}")
}

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

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

/// Opens a checkpoint note with the independent implementation.
fn open_independently(note_text: &str, vkey: &str) -> Checkpoint {
    let verifier = StandardVerifier::new(vkey).unwrap();
    let note = Note::from_bytes(note_text.as_bytes()).unwrap();
    let (verified, _) = note
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .unwrap();
    assert_eq!(verified.len(), 1);
    Checkpoint::from_bytes(note.text()).unwrap()
}

async fn append(client: &LogClient, n: usize) -> Vec<acd_core::entry::Tid> {
    let merchant = key(1);
    let exp = now_ms() + 600_000;
    let mut tids = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..n {
        let tid = fresh_tid();
        tids.push(tid);
        let req = commit(ORIGIN, &merchant, tid, exp, [i as u8; 32]);
        let client = client.clone();
        tasks.push(tokio::spawn(async move { client.commit(&req).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    tids
}

// A log filled with commits is verified by the independent implementation: checkpoint signatures, every tile, every entry's leaf hash, the root, consistency between two checkpoints and inclusion proofs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_implementation_verifies_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let served_vkey = get(&format!("{}/vkey", log.url))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(served_vkey.trim(), log.vkey);
    let client = LogClient::new(&log.url, NoteVerifier::from_vkey(&log.vkey).unwrap());

    let mut tids = append(&client, 600).await;
    let text_a = get(&format!("{}/checkpoint", log.url))
        .await
        .text()
        .await
        .unwrap();
    tids.extend(append(&client, 700).await);
    let resp = get(&format!("{}/checkpoint", log.url)).await;
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let text_b = resp.text().await.unwrap();

    let a = open_independently(&text_a, &log.vkey);
    let b = open_independently(&text_b, &log.vkey);
    assert_eq!(a.origin(), ORIGIN);
    assert_eq!(a.size(), 600);
    assert_eq!(b.size(), 1300);

    // Every tile of B, as the independent implementation lays them out.
    let mut tiles = HashMap::new();
    for t in Tile::new_tiles(8, 0, b.size()) {
        let path = c2sp_path(&t);
        let resp = get(&format!("{}/{path}", log.url)).await;
        assert_eq!(resp.status(), 200, "{path}");
        let cache = resp.headers()["cache-control"].to_str().unwrap().to_owned();
        assert!(cache.contains("immutable"), "{path}: {cache}");
        let bytes = resp.bytes().await.unwrap().to_vec();
        assert_eq!(bytes.len(), t.width() as usize * 32, "{path}");
        tiles.insert(path, bytes);
    }
    // A's partial tiles too, for the consistency check.
    for t in Tile::new_tiles(8, 0, a.size()) {
        let path = c2sp_path(&t);
        let bytes = get(&format!("{}/{path}", log.url))
            .await
            .bytes()
            .await
            .unwrap();
        tiles.insert(path, bytes.to_vec());
    }
    let fetched = FetchedTiles(tiles);

    // Every entry bundle: each entry's leaf hash is its hash in the level-0 tile.
    let mut index = 0u64;
    for n in 0..b.size().div_ceil(256) {
        let width = (b.size() - n * 256).min(256);
        // Go's data tiles are C2SP's entry bundles.
        let data = Tile::new(8, 0, n, width as u32, true).path();
        let path = data.replace("tile/8/data/", "tile/entries/");
        let bundle = get(&format!("{}/{path}", log.url))
            .await
            .bytes()
            .await
            .unwrap();
        let level0 = Tile::new(8, 0, n, width as u32, false);
        let tile = &fetched.0[&c2sp_path(&level0)];
        let mut rest = &bundle[..];
        for i in 0..width {
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let entry = &rest[2..2 + len];
            rest = &rest[2 + len..];
            let h = record_hash(entry);
            assert_eq!(
                h.0[..],
                tile[i as usize * 32..(i as usize + 1) * 32],
                "entry {index}"
            );
            index += 1;
        }
        assert!(rest.is_empty(), "bundle {n} has trailing bytes");
    }
    assert_eq!(index, b.size());

    // The root, recomputed from the tiles, is the checkpoint's.
    let reader_b = TileHashReader::new(b.size(), *b.hash(), &fetched);
    assert_eq!(tree_hash(b.size(), &reader_b).unwrap(), *b.hash());
    let reader_a = TileHashReader::new(a.size(), *a.hash(), &fetched);
    assert_eq!(tree_hash(a.size(), &reader_a).unwrap(), *a.hash());

    // Consistency A -> B, from tiles, and the server's proof checked independently.
    let proof = prove_tree(b.size(), a.size(), &reader_b).unwrap();
    check_tree(&proof, b.size(), *b.hash(), a.size(), *a.hash()).unwrap();
    let served: serde_json::Value = get(&format!(
        "{}/api/v1/consistency?from={}&to={}",
        log.url,
        a.size(),
        b.size()
    ))
    .await
    .json()
    .await
    .unwrap();
    let served_proof: Vec<Hash> = served["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h.as_str().unwrap(), &mut out).unwrap();
            Hash(out)
        })
        .collect();
    check_tree(&served_proof, b.size(), *b.hash(), a.size(), *a.hash()).unwrap();

    // Inclusion: the server's proofs (by index and by TID) check independently, and equal proofs from tiles.
    for i in [0u64, 1, 255, 256, 599, 600, 1024, 1299] {
        let p: serde_json::Value = get(&format!("{}/api/v1/inclusion?index={i}", log.url))
            .await
            .json()
            .await
            .unwrap();
        let leaf = hex::decode(p["entry"].as_str().unwrap()).unwrap();
        let served: Vec<Hash> = p["inclusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(h.as_str().unwrap(), &mut out).unwrap();
                Hash(out)
            })
            .collect();
        let from_tiles = prove_record(b.size(), i, &reader_b).unwrap();
        assert_eq!(served, from_tiles, "index {i}");
        check_record(&served, b.size(), *b.hash(), i, record_hash(&leaf)).unwrap();
    }
    for tid in tids.iter().step_by(97) {
        let p: serde_json::Value = get(&format!("{}/tx/{tid}", log.url))
            .await
            .json()
            .await
            .unwrap();
        let i = p["index"].as_u64().unwrap();
        let leaf = hex::decode(p["entry"].as_str().unwrap()).unwrap();
        let cp = open_independently(p["checkpoint"].as_str().unwrap(), &log.vkey);
        let proof: Vec<Hash> = p["inclusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(h.as_str().unwrap(), &mut out).unwrap();
                Hash(out)
            })
            .collect();
        check_record(&proof, cp.size(), *cp.hash(), i, record_hash(&leaf)).unwrap();
    }

    // Nothing past the published size is served.
    let beyond = Tile::new(8, 0, b.size() / 256, (b.size() % 256) as u32 + 1, false);
    let resp = get(&format!("{}/{}", log.url, c2sp_path(&beyond))).await;
    assert_eq!(resp.status(), 404);
    let resp = get(&format!(
        "{}/tile/entries/{:03}",
        log.url,
        b.size() / 256 + 1
    ))
    .await;
    assert_eq!(resp.status(), 404);
}
