//! The 15-entry tessera log (testdata/tessera-log, Apache-2.0, from
//! transparency-dev/tessera) against the tile, bundle and Merkle code of
//! `acd_core`: every checkpoint size from 0 to 15, byte for byte.
#![allow(clippy::unwrap_used)]

use acd_core::merkle::{
    Hash, consistency_proof, empty_root, inclusion_proof, leaf_hash, root_from_leaf_hashes,
    tree_root, verify_consistency, verify_inclusion,
};
use acd_core::tile::{
    TileId, TilePath, decode_bundle, encode_bundle, parse_tile_path, subtree_hash_from_tile,
    tile_hashes, tile_width,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::convert::Infallible;
use std::path::{Path, PathBuf};

const ENTRIES: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];

fn log_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tessera-log")
}

fn read(relative: &str) -> Option<Vec<u8>> {
    std::fs::read(log_dir().join(relative)).ok()
}

/// Size and root of a checkpoint: its second and third lines.
fn checkpoint(relative: &str) -> Option<(u64, Hash)> {
    let text = String::from_utf8(read(relative)?).unwrap();
    let mut lines = text.lines();
    let _origin = lines.next().unwrap();
    let size = lines.next().unwrap().parse().unwrap();
    let root = STANDARD.decode(lines.next().unwrap()).unwrap();
    Some((size, root.try_into().unwrap()))
}

fn entry_bytes(n: usize) -> Vec<&'static [u8]> {
    ENTRIES[..n].iter().map(|e| e.as_bytes()).collect()
}

fn leaf_hashes(n: usize) -> Vec<Hash> {
    ENTRIES[..n]
        .iter()
        .map(|e| leaf_hash(e.as_bytes()))
        .collect()
}

/// A subtree source over the level-0 tile, the only tile this log has.
fn tile_source(tile: &[Hash]) -> impl FnMut(u8, u64) -> Result<Hash, Infallible> + '_ {
    |level, index| Ok(subtree_hash_from_tile(tile, level, index).unwrap())
}

// For every size N, the entry bundle, the level-0 tile and the checkpoint
// root are what this crate computes from the first N entries.
#[test]
fn every_size_matches_the_log() {
    let mut sizes_seen = 0;
    for n in 0..=ENTRIES.len() {
        let Some((size, root)) = checkpoint(&format!("checkpoint.{n}")) else {
            continue;
        };
        sizes_seen += 1;
        assert_eq!(size, n as u64);
        let leaves = leaf_hashes(n);
        assert_eq!(root_from_leaf_hashes(&leaves), root, "size {n}");
        if n == 0 {
            assert_eq!(root, empty_root());
            continue;
        }

        let bundle_path = TilePath::Entries {
            index: 0,
            width: n as u16,
        }
        .to_path();
        let bundle = read(&bundle_path).unwrap();
        assert_eq!(
            encode_bundle(&entry_bytes(n)).unwrap(),
            bundle,
            "{bundle_path}"
        );
        assert_eq!(
            decode_bundle(&bundle).unwrap(),
            entry_bytes(n),
            "{bundle_path}"
        );

        let id = TileId {
            level: 0,
            index: 0,
            width: tile_width(0, 0, size) as u16,
        };
        let tile_path = TilePath::Hashes(id).to_path();
        assert_eq!(tile_path, format!("tile/0/000.p/{n}"));
        let tile = tile_hashes(&read(&tile_path).unwrap()).unwrap();
        assert_eq!(tile, leaves, "{tile_path}");
        assert_eq!(
            tree_root(size, tile_source(&tile)).unwrap(),
            root,
            "size {n}"
        );
    }
    assert_eq!(sizes_seen, 16, "expected checkpoints 0 to 15");

    let (size, root) = checkpoint("checkpoint").unwrap();
    assert_eq!(size, ENTRIES.len() as u64);
    assert_eq!(root, root_from_leaf_hashes(&leaf_hashes(ENTRIES.len())));
}

// Every file under tile/ is named by a canonical path that parses to a
// partial tile or bundle of the width its contents have.
#[test]
fn tile_file_names_are_canonical_paths() {
    let mut count = 0;
    for kind in ["0", "entries"] {
        let dir = log_dir().join("tile").join(kind).join("000.p");
        for file in std::fs::read_dir(dir).unwrap() {
            let file = file.unwrap();
            let name = file.file_name().into_string().unwrap();
            let path = format!("tile/{kind}/000.p/{name}");
            let parsed = parse_tile_path(&path).unwrap();
            assert_eq!(parsed.to_path(), path);
            let bytes = std::fs::read(file.path()).unwrap();
            let width = match parsed {
                TilePath::Hashes(id) => {
                    assert_eq!((id.level, id.index), (0, 0));
                    assert_eq!(tile_hashes(&bytes).unwrap().len(), usize::from(id.width));
                    id.width
                }
                TilePath::Entries { index, width } => {
                    assert_eq!(index, 0);
                    assert_eq!(decode_bundle(&bytes).unwrap().len(), usize::from(width));
                    width
                }
            };
            assert_eq!(name, width.to_string());
            count += 1;
        }
    }
    assert_eq!(count, 30);
}

// Proofs built from the log's tile verify against its checkpoints.
#[test]
fn proofs_from_tiles_verify_against_checkpoints() {
    let tile = tile_hashes(&read("tile/0/000.p/15").unwrap()).unwrap();
    let roots: Vec<Hash> = (0..=ENTRIES.len())
        .map(|n| checkpoint(&format!("checkpoint.{n}")).unwrap().1)
        .collect();
    for size in 1..=ENTRIES.len() as u64 {
        for index in 0..size {
            let proof = inclusion_proof(index, size, tile_source(&tile)).unwrap();
            let leaf = leaf_hash(ENTRIES[index as usize].as_bytes());
            verify_inclusion(&leaf, index, size, &proof, &roots[size as usize]).unwrap();
        }
        for size1 in 1..=size {
            let proof = consistency_proof(size1, size, tile_source(&tile)).unwrap();
            verify_consistency(
                size1,
                size,
                &proof,
                &roots[size1 as usize],
                &roots[size as usize],
            )
            .unwrap();
        }
    }
}
