//! Interoperability: what `acd-log` publishes is verified by an independent
//! implementation of C2SP signed notes, checkpoints and tiles (Cloudflare's
//! `signed_note` and `tlog_tiles`, ports of Go's sumdb packages) and by
//! plain SHA-256, fed only by the log's HTTP read path and JSON proofs.
//! The appends go through our own client; nothing else of ours is trusted.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};

use acd::log_client::LogClient;
use acd_core::entry::{LogEntry, Tid};
use acd_core::log_api::CommitRequest;
use acd_core::note::NoteVerifier;
use acd_tests::{LogProcess, commit, fresh_tid, key, now_ms};
use serde_json::Value;
use sha2::{Digest, Sha256};
use signed_note::{Note, NoteError, StandardVerifier, VerifierList};
use tlog_tiles::{
    Checkpoint, Hash, HashReader, Tile, TileHashReader, TileReader, check_record, check_tree,
    prove_record, prove_tree, record_hash, stored_hash_index, tree_hash,
};

const ORIGIN: &str = "interop.test/log";
const SIZE_A: u64 = 600;
const SIZE_B: u64 = 1300;

/// The C2SP path of a hash tile: `tlog_tiles` writes Go's
/// `tile/<H>/<L>/<N>`, and C2SP drops the height.
fn c2sp_path(t: &Tile) -> String {
    let go = t.path();
    let rest = go.strip_prefix("tile/8/").unwrap();
    format!("tile/{rest}")
}

/// The C2SP path of entry bundle `n` of width `w`: Go's data tiles are
/// C2SP's entry bundles.
fn bundle_path(n: u64, w: u64) -> String {
    let go = Tile::new(8, 0, n, w as u32, true).path();
    go.replace("tile/8/data/", "tile/entries/")
}

/// Tiles fetched over HTTP, by C2SP path.
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

/// Hashes read straight from the fetched tiles of a tree of `size`, with no
/// authentication: a root computed through it is recomputed, not assumed.
struct RawTiles<'a> {
    size: u64,
    tiles: &'a FetchedTiles,
}

impl HashReader for RawTiles<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&x| {
                let t = Tile::from_index(8, x)
                    .parent(0, self.size)
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)?;
                let data = self
                    .tiles
                    .0
                    .get(&c2sp_path(&t))
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)?;
                t.hash_at_index(data, x)
            })
            .collect()
    }
}

/// SHA-256(0x00 || entry), the RFC 6962 leaf hash.
fn sha256_leaf(entry: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// RFC 6962 MTH of leaf hashes, straight from the definition with SHA-256.
fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            // The largest power of two below n.
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            let mut h = Sha256::new();
            h.update([0x01]);
            h.update(mth(&leaves[..k]));
            h.update(mth(&leaves[k..]));
            h.finalize().into()
        }
    }
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

async fn get_json(url: &str) -> Value {
    let resp = get(url).await;
    assert_eq!(resp.status(), 200, "{url}");
    resp.json().await.unwrap()
}

fn hash(v: &Value) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(v.as_str().unwrap(), &mut out).unwrap();
    Hash(out)
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(hash).collect()
}

fn verifiers(vkey: &str) -> VerifierList {
    VerifierList::new(vec![Box::new(StandardVerifier::new(vkey).unwrap())])
}

/// Opens a checkpoint note with the independent implementation.
fn open_independently(note_text: &str, vkey: &str) -> Checkpoint {
    let note = Note::from_bytes(note_text.as_bytes()).unwrap();
    let (verified, unverified) = note.verify(&verifiers(vkey)).unwrap();
    assert_eq!(verified.len(), 1);
    assert!(unverified.is_empty());
    Checkpoint::from_bytes(note.text()).unwrap()
}

/// Appends `n` signed commits, 32 at a time; returns them in sending order.
async fn append(client: &LogClient, n: usize) -> Vec<CommitRequest> {
    let merchant = key(1);
    let exp = now_ms() + 600_000;
    let reqs: Vec<CommitRequest> = (0..n)
        .map(|_| {
            let mut k = [0u8; 32];
            rand::fill(&mut k);
            commit(ORIGIN, &merchant, fresh_tid(), exp, k)
        })
        .collect();
    for chunk in reqs.chunks(32) {
        let mut tasks = Vec::new();
        for req in chunk {
            let (client, req) = (client.clone(), req.clone());
            tasks.push(tokio::spawn(async move { client.commit(&req).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }
    reqs
}

// A log of 1300 commits is verified end to end by an independent implementation: both checkpoints' signatures, every tile and entry bundle of the larger tree, every leaf hash, both roots recomputed, consistency from the smaller tree (from tiles and from the server) and inclusion proofs by index, leaf hash, earlier size and TID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_implementation_verifies_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogProcess::start(dir.path(), ORIGIN, &[]);
    let url = log.url.clone();
    let vkey_resp = get(&format!("{url}/vkey")).await;
    assert_eq!(vkey_resp.status(), 200);
    let vkey = vkey_resp.text().await.unwrap().trim().to_owned();
    assert_eq!(vkey, log.vkey, "/vkey serves the key printed at startup");
    let client = LogClient::new(&url, NoteVerifier::from_vkey(&vkey).unwrap());

    let mut sent = append(&client, SIZE_A as usize).await;
    let text_a = get(&format!("{url}/checkpoint"))
        .await
        .text()
        .await
        .unwrap();
    sent.extend(append(&client, (SIZE_B - SIZE_A) as usize).await);
    let resp = get(&format!("{url}/checkpoint")).await;
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let text_b = resp.text().await.unwrap();

    // Checkpoints: signed by the served key, and by nothing else.
    let a = open_independently(&text_a, &vkey);
    let b = open_independently(&text_b, &vkey);
    assert_eq!((a.origin(), a.size()), (ORIGIN, SIZE_A));
    assert_eq!((b.origin(), b.size()), (ORIGIN, SIZE_B));
    let stranger = NoteVerifier::new(ORIGIN, key(9).verifying_key())
        .unwrap()
        .vkey();
    let note_b = Note::from_bytes(text_b.as_bytes()).unwrap();
    assert!(matches!(
        note_b.verify(&verifiers(&stranger)),
        Err(NoteError::UnverifiedNote)
    ));
    let tampered = text_b.replacen(&format!("\n{SIZE_B}\n"), &format!("\n{}\n", SIZE_B + 1), 1);
    let tampered = Note::from_bytes(tampered.as_bytes()).unwrap();
    assert!(matches!(
        tampered.verify(&verifiers(&vkey)),
        Err(NoteError::InvalidSignature { .. })
    ));

    // Every hash tile of B (every level, partial ones as .p/W), and A's
    // partial tiles, which stay served as prefixes of the grown tiles.
    let tiles_b = Tile::new_tiles(8, 0, SIZE_B);
    assert!(tiles_b.iter().any(|t| t.level() == 1), "two levels");
    let mut fetched = HashMap::new();
    for t in tiles_b.iter().chain(&Tile::new_tiles(8, 0, SIZE_A)) {
        let path = c2sp_path(t);
        let resp = get(&format!("{url}/{path}")).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/octet-stream",
            "{path}"
        );
        let cache = resp.headers()["cache-control"].to_str().unwrap().to_owned();
        assert!(cache.contains("immutable"), "{path}: {cache}");
        let bytes = resp.bytes().await.unwrap().to_vec();
        assert_eq!(bytes.len(), t.width() as usize * 32, "{path}");
        fetched.insert(path, bytes);
    }
    let fetched = FetchedTiles(fetched);

    // Each full tile hashes to its node in the tile one level up.
    for t in tiles_b.iter().filter(|t| t.width() == 256) {
        let parent = t.parent(1, SIZE_B).unwrap();
        let up = parent
            .hash_at_index(
                &fetched.0[&c2sp_path(&parent)],
                stored_hash_index((t.level() + 1) * 8, t.level_index()),
            )
            .unwrap();
        assert_eq!(
            up,
            Tile::subtree_hash(&fetched.0[&c2sp_path(t)]),
            "{}",
            c2sp_path(t)
        );
    }

    // Every entry bundle of B: each entry's SHA-256 leaf hash is its hash in
    // the level-0 tile.
    let mut entries: Vec<Vec<u8>> = Vec::new();
    for n in 0..SIZE_B.div_ceil(256) {
        let width = (SIZE_B - n * 256).min(256);
        let path = bundle_path(n, width);
        let resp = get(&format!("{url}/{path}")).await;
        assert_eq!(resp.status(), 200, "{path}");
        let cache = resp.headers()["cache-control"].to_str().unwrap().to_owned();
        assert!(cache.contains("immutable"), "{path}: {cache}");
        let bundle = resp.bytes().await.unwrap();
        let level0 = Tile::new(8, 0, n, width as u32, false);
        let tile = &fetched.0[&c2sp_path(&level0)];
        let mut rest = &bundle[..];
        for i in 0..width as usize {
            assert!(rest.len() >= 2, "{path}: truncated");
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let entry = &rest[2..2 + len];
            rest = &rest[2 + len..];
            let h = sha256_leaf(entry);
            assert_eq!(h, record_hash(entry).0);
            assert_eq!(h[..], tile[i * 32..(i + 1) * 32], "entry {}", entries.len());
            entries.push(entry.to_vec());
        }
        assert!(rest.is_empty(), "{path} has trailing bytes");
    }
    assert_eq!(entries.len() as u64, SIZE_B);

    // The entries are exactly the commits sent, each TID once; the JSON
    // entries API serves the same bytes.
    let by_tid: HashMap<Tid, &CommitRequest> = sent.iter().map(|r| (r.tid, r)).collect();
    let mut seen = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let Ok(LogEntry::Commit {
            tid,
            merchant,
            expiration_ms,
            key,
            signature,
            ..
        }) = LogEntry::decode(e)
        else {
            panic!("entry {i} is not a commit");
        };
        let req = by_tid[&tid];
        assert_eq!(
            (merchant, expiration_ms, key, signature),
            (req.merchant, req.expiration_ms, req.key, req.signature),
            "entry {i}"
        );
        assert!(seen.insert(tid), "entry {i}: TID logged twice");
    }
    assert_eq!(seen.len(), sent.len());
    for (start, end) in [(0, 1000), (1000, SIZE_B)] {
        let page = get_json(&format!("{url}/api/v1/entries?start={start}&end={end}")).await;
        let page = page["entries"].as_array().unwrap();
        assert_eq!(page.len() as u64, end - start);
        for (i, e) in (start..end).zip(page) {
            assert_eq!(e["index"], i);
            assert_eq!(e["entry"], hex::encode(&entries[i as usize]), "entry {i}");
        }
    }

    // Roots: from the leaves by the RFC's definition, from the tiles without
    // trusting them, and through tiles authenticated against the checkpoint.
    let leaves: Vec<[u8; 32]> = entries.iter().map(|e| sha256_leaf(e)).collect();
    assert_eq!(mth(&leaves), b.hash().0);
    assert_eq!(mth(&leaves[..SIZE_A as usize]), a.hash().0);
    let raw_b = RawTiles {
        size: SIZE_B,
        tiles: &fetched,
    };
    assert_eq!(tree_hash(SIZE_B, &raw_b).unwrap(), *b.hash());
    let raw_a = RawTiles {
        size: SIZE_A,
        tiles: &fetched,
    };
    assert_eq!(tree_hash(SIZE_A, &raw_a).unwrap(), *a.hash());
    let reader_b = TileHashReader::new(SIZE_B, *b.hash(), &fetched);
    assert_eq!(tree_hash(SIZE_B, &reader_b).unwrap(), *b.hash());
    let reader_a = TileHashReader::new(SIZE_A, *a.hash(), &fetched);
    assert_eq!(tree_hash(SIZE_A, &reader_a).unwrap(), *a.hash());

    // Consistency A -> B from tiles; the server's proof checks independently
    // and is the same proof.
    let from_tiles = prove_tree(SIZE_B, SIZE_A, &reader_b).unwrap();
    check_tree(&from_tiles, SIZE_B, *b.hash(), SIZE_A, *a.hash()).unwrap();
    let served = get_json(&format!(
        "{url}/api/v1/consistency?from={SIZE_A}&to={SIZE_B}"
    ))
    .await;
    let served = hashes(&served["proof"]);
    check_tree(&served, SIZE_B, *b.hash(), SIZE_A, *a.hash()).unwrap();
    assert_eq!(served, from_tiles);
    // The same from sizes on every kind of tile border, with no checkpoint
    // of their own: the old root comes from the leaves.
    for m in [
        1,
        2,
        255,
        256,
        257,
        511,
        512,
        1024,
        1025,
        SIZE_B - 1,
        SIZE_B,
    ] {
        let root_m = Hash(mth(&leaves[..m as usize]));
        let p = get_json(&format!("{url}/api/v1/consistency?from={m}&to={SIZE_B}")).await;
        let p = hashes(&p["proof"]);
        check_tree(&p, SIZE_B, *b.hash(), m, root_m).unwrap_or_else(|e| panic!("{m}: {e}"));
        assert_eq!(p, prove_tree(SIZE_B, m, &reader_b).unwrap(), "from {m}");
    }

    // Inclusion by index under B; under A with size=A; by leaf hash.
    for i in [0u64, 1, 255, 256, 599, 600, 1023, 1024, 1279, 1280, 1299] {
        let p = get_json(&format!("{url}/api/v1/inclusion?index={i}")).await;
        assert_eq!(p["index"], i);
        assert_eq!(p["tree_size"], SIZE_B);
        let entry = hex::decode(p["entry"].as_str().unwrap()).unwrap();
        assert_eq!(entry, entries[i as usize]);
        assert_eq!(hash(&p["leaf_hash"]).0, sha256_leaf(&entry));
        let served = hashes(&p["inclusion"]);
        assert_eq!(served, prove_record(SIZE_B, i, &reader_b).unwrap(), "{i}");
        check_record(&served, SIZE_B, *b.hash(), i, record_hash(&entry)).unwrap();
        let cp = open_independently(p["checkpoint"].as_str().unwrap(), &vkey);
        assert_eq!(cp.hash(), b.hash());

        if i < SIZE_A {
            let leaf = hex::encode(sha256_leaf(&entry));
            for q in [format!("index={i}"), format!("leaf_hash={leaf}")] {
                let p = get_json(&format!("{url}/api/v1/inclusion?{q}&size={SIZE_A}")).await;
                assert_eq!(p["index"], i, "{q}");
                assert_eq!(p["tree_size"], SIZE_A, "{q}");
                assert_eq!(p["checkpoint"], text_a.as_str(), "{q}");
                let proof = hashes(&p["inclusion"]);
                assert_eq!(proof, prove_record(SIZE_A, i, &reader_a).unwrap());
                check_record(&proof, SIZE_A, *a.hash(), i, record_hash(&entry)).unwrap();
            }
        }
    }

    // Q1/Q2 by TID: the served proof checks under its own signed checkpoint.
    for req in sent.iter().step_by(97) {
        let p = get_json(&format!("{url}/tx/{}", req.tid)).await;
        let i = p["index"].as_u64().unwrap();
        let entry = hex::decode(p["entry"].as_str().unwrap()).unwrap();
        assert_eq!(entry, entries[i as usize]);
        assert_eq!(p["tid"], req.tid.to_string());
        assert_eq!(p["outcome"], "commit");
        let cp = open_independently(p["checkpoint"].as_str().unwrap(), &vkey);
        assert_eq!(p["tree_size"], cp.size());
        let proof = hashes(&p["inclusion"]);
        check_record(&proof, cp.size(), *cp.hash(), i, record_hash(&entry)).unwrap();
    }

    // Nothing past the published size is served, and the refusal is JSON.
    let last = SIZE_B / 256;
    let partial = SIZE_B % 256;
    for path in [
        c2sp_path(&Tile::new(8, 0, last, partial as u32 + 1, false)),
        c2sp_path(&Tile::new(8, 0, last, 256, false)),
        c2sp_path(&Tile::new(8, 0, last + 1, 1, false)),
        c2sp_path(&Tile::new(8, 1, 0, 256, false)),
        c2sp_path(&Tile::new(8, 1, 0, (SIZE_B / 256) as u32 + 1, false)),
        c2sp_path(&Tile::new(8, 2, 0, 1, false)),
        bundle_path(last, partial + 1),
        bundle_path(last, 256),
        bundle_path(last + 1, 1),
    ] {
        let resp = get(&format!("{url}/{path}")).await;
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(!body["error"].as_str().unwrap().is_empty(), "{path}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{path}");
    }
}
