//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>) with tile height 8:
//! tile and entry-bundle paths, which tile holds which Merkle node, and the
//! byte layout of hash tiles and entry bundles.
//!
//! A hash tile at level `L` holds up to 256 consecutive node hashes of tree
//! height `8 * L`; an entry bundle holds up to 256 consecutive entries, each a
//! big-endian `u16` length and then its bytes.

use crate::merkle::{HASH_SIZE, Hash, root_from_leaf_hashes};

/// Tree height covered by one tile.
pub const TILE_HEIGHT: u8 = 8;

/// Number of hashes (or entries) in a full tile (or bundle).
pub const TILE_WIDTH: u64 = 256;

/// Highest tile level a path may name (the spec allows 0 to 63).
const MAX_LEVEL: u8 = 63;

/// Largest entry an entry bundle can hold: its length is a `u16`.
const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// Why tile data or a tile path was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The path is not the canonical tlog-tiles encoding of any tile.
    #[error("malformed tile path {path:?}: {reason}")]
    BadPath {
        /// The rejected path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Tile bytes are not 1 to 256 whole hashes.
    #[error("a hash tile of {len} bytes is not 1 to 256 whole 32-byte hashes")]
    BadTileLength {
        /// Length of the tile data in bytes.
        len: usize,
    },
    /// The tile does not hold the hashes that the requested node needs.
    #[error("the tile has {available} hashes, but the node needs hashes up to position {needed}")]
    MissingHashes {
        /// Number of hashes the node needs from the start of the tile.
        needed: usize,
        /// Number of hashes in the tile.
        available: usize,
    },
    /// An entry bundle ends in the middle of a length or an entry.
    #[error("entry bundle truncated: the entry at byte {offset} runs past the end")]
    BundleTruncated {
        /// Offset of the length prefix of the incomplete entry.
        offset: usize,
    },
    /// An entry is too long for its length to fit in a `u16`.
    #[error("an entry of {len} bytes is longer than the 65535 an entry bundle allows")]
    EntryTooLong {
        /// Length of the entry in bytes.
        len: usize,
    },
}

/// A hash tile: level L holds the Merkle nodes at tree height 8*L; `width`
/// 1..=256 hashes (256 = full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    /// Tile level: the tile holds nodes of tree height `8 * level`.
    pub level: u8,
    /// Position of the tile within its level.
    pub index: u64,
    /// Number of hashes, 1 to 256; 256 is a full tile.
    pub width: u16,
}

/// What a tlog-tiles path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TilePath {
    /// A hash tile, `tile/<L>/<N>[.p/<W>]`.
    Hashes(TileId),
    /// An entry bundle, `tile/entries/<N>[.p/<W>]`; `width` 1 to 256.
    Entries {
        /// Position of the bundle: it holds entries from `index * 256`.
        index: u64,
        /// Number of entries, 1 to 256; 256 is a full bundle.
        width: u16,
    },
}

fn bad_path(path: &str, reason: &'static str) -> TileError {
    TileError::BadPath {
        path: path.to_owned(),
        reason,
    }
}

/// Whether `s` is a non-empty run of ASCII digits with no leading zero (other
/// than "0" itself): the spec's "decimal ASCII integer with no additional
/// leading zeroes".
fn is_plain_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// Parses one 3-digit group of an index.
fn parse_group(group: &str) -> Option<u64> {
    if group.len() == 3 && group.bytes().all(|b| b.is_ascii_digit()) {
        group.parse().ok()
    } else {
        None
    }
}

/// Parses the `<N>` part of a path, already split at `/`.
fn parse_index(path: &str, groups: &[&str]) -> Result<u64, TileError> {
    let Some((last, upper)) = groups.split_last() else {
        return Err(bad_path(path, "missing tile index"));
    };
    let mut index: u64 = 0;
    for (i, group) in upper.iter().enumerate() {
        let Some(digits) = group.strip_prefix('x') else {
            return Err(bad_path(
                path,
                "index groups before the last must start with 'x'",
            ));
        };
        let value =
            parse_group(digits).ok_or_else(|| bad_path(path, "index groups are 3 digits"))?;
        // A leading zero group would give one index two paths.
        if i == 0 && value == 0 {
            return Err(bad_path(path, "index has a leading zero group"));
        }
        index = index
            .checked_mul(1000)
            .and_then(|n| n.checked_add(value))
            .ok_or_else(|| bad_path(path, "index does not fit in 64 bits"))?;
    }
    let value = parse_group(last)
        .ok_or_else(|| bad_path(path, "the last index group is 3 digits without 'x'"))?;
    index
        .checked_mul(1000)
        .and_then(|n| n.checked_add(value))
        .ok_or_else(|| bad_path(path, "index does not fit in 64 bits"))
}

/// Parses `<N>[.p/<W>]`, returning the index and the width (256 when full).
fn parse_index_and_width(path: &str, rest: &str) -> Result<(u64, u16), TileError> {
    let mut segments: Vec<&str> = rest.split('/').collect();
    let mut width = TILE_WIDTH as u16;
    if segments.len() >= 2 {
        let before_last = segments.len() - 2;
        if let Some(group) = segments[before_last].strip_suffix(".p") {
            let w = segments[before_last + 1];
            if !is_plain_decimal(w) {
                return Err(bad_path(
                    path,
                    "partial width must be decimal without leading zeros",
                ));
            }
            width = match w.parse::<u16>() {
                Ok(w @ 1..=255) => w,
                _ => return Err(bad_path(path, "partial width must be 1 to 255")),
            };
            segments[before_last] = group;
            segments.truncate(before_last + 1);
        }
    }
    Ok((parse_index(path, &segments)?, width))
}

/// Parse the part of a path after "tile/", e.g. "0/x001/234.p/5", "1/000",
/// "entries/x001/234". Strict: exactly the canonical encoding of the spec
/// (3-digit groups, "x" prefix on all but the last group, no leading zero
/// group, ".p/W" only with 1 <= W <= 255, level 0..=63 as decimal without
/// leading zeros); anything else is an error.
///
/// The whole path that [`TilePath::to_path`] writes, with its "tile/" prefix,
/// is accepted too, so that the two round-trip. Nothing else is: no leading
/// slash, no trailing slash, no URL prefix.
pub fn parse_tile_path(path: &str) -> Result<TilePath, TileError> {
    let rest = path.strip_prefix("tile/").unwrap_or(path);
    let Some((kind, rest)) = rest.split_once('/') else {
        return Err(bad_path(
            path,
            "expected <level>/<index> or entries/<index>",
        ));
    };
    if kind == "entries" {
        let (index, width) = parse_index_and_width(path, rest)?;
        return Ok(TilePath::Entries { index, width });
    }
    if !is_plain_decimal(kind) {
        return Err(bad_path(
            path,
            "level must be decimal without leading zeros",
        ));
    }
    let level = match kind.parse::<u8>() {
        Ok(level) if level <= MAX_LEVEL => level,
        _ => return Err(bad_path(path, "level must be 0 to 63")),
    };
    let (index, width) = parse_index_and_width(path, rest)?;
    Ok(TilePath::Hashes(TileId {
        level,
        index,
        width,
    }))
}

/// Appends ".p/W" when `width` is not that of a full tile.
fn width_suffix(width: u16) -> String {
    if u64::from(width) == TILE_WIDTH {
        String::new()
    } else {
        format!(".p/{width}")
    }
}

impl TilePath {
    /// Full path including the "tile/" prefix, e.g.
    /// "tile/entries/x001/234.p/5". A width of 0 or above 256, or a level
    /// above 63, writes a path that [`parse_tile_path`] rejects.
    pub fn to_path(&self) -> String {
        match self {
            TilePath::Hashes(id) => format!(
                "tile/{}/{}{}",
                id.level,
                encode_index(id.index),
                width_suffix(id.width)
            ),
            TilePath::Entries { index, width } => {
                format!(
                    "tile/entries/{}{}",
                    encode_index(*index),
                    width_suffix(*width)
                )
            }
        }
    }
}

/// "x001/x234/067" style encoding of an index: 3-digit groups, all but the
/// last prefixed with "x".
pub fn encode_index(n: u64) -> String {
    // u64::MAX has 20 digits: at most 7 groups.
    let mut groups = Vec::with_capacity(7);
    let mut rest = n;
    loop {
        groups.push(rest % 1000);
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    let mut out = String::with_capacity(groups.len() * 5);
    for (i, group) in groups.iter().rev().enumerate() {
        if i > 0 {
            out.push('/');
        }
        if i + 1 < groups.len() {
            out.push('x');
        }
        out.push_str(&format!("{group:03}"));
    }
    out
}

/// Number of hashes tile (level, index) holds for a tree of `tree_size`
/// leaves (0 if none, 256 if full).
pub fn tile_width(level: u8, index: u64, tree_size: u64) -> u64 {
    // Tile level L holds the complete nodes of height 8L.
    let nodes = tree_size
        .checked_shr(u32::from(level) * u32::from(TILE_HEIGHT))
        .unwrap_or(0);
    match index.checked_mul(TILE_WIDTH) {
        Some(first) => nodes.saturating_sub(first).min(TILE_WIDTH),
        None => 0,
    }
}

/// Where a complete subtree's hash lives: node (level, index) at tree height
/// `level` -> (tile level, tile index, first position in that tile,
/// count = 2^(level % 8)). Hashing those `count` stored hashes up
/// (level % 8) times gives the node.
pub fn node_location(level: u8, index: u64) -> (u8, u64, usize, usize) {
    let tile_level = level / TILE_HEIGHT;
    let up = u32::from(level % TILE_HEIGHT);
    // The node's descendants at height 8 * tile_level start at index << up;
    // splitting that into tile index and position without the shift keeps
    // any u64 index from overflowing.
    let per_tile = u32::from(TILE_HEIGHT) - up;
    let tile_index = index >> per_tile;
    let first = ((index & ((1u64 << per_tile) - 1)) << up) as usize;
    (tile_level, tile_index, first, 1usize << up)
}

/// Hash of complete subtree (level, index) computed from the contents of the
/// tile that holds it (`tile_hashes` = the tile's hashes, possibly partial).
/// Error if the needed hashes are not in the slice.
pub fn subtree_hash_from_tile(
    tile_hashes: &[Hash],
    level: u8,
    index: u64,
) -> Result<Hash, TileError> {
    let (_, _, first, count) = node_location(level, index);
    let needed = first + count;
    match tile_hashes.get(first..needed) {
        // A power-of-two run of hashes is a complete subtree, and its MTH is
        // the node hash.
        Some(hashes) => Ok(root_from_leaf_hashes(hashes)),
        None => Err(TileError::MissingHashes {
            needed,
            available: tile_hashes.len(),
        }),
    }
}

/// Splits tile bytes (concatenated 32-byte hashes) into hashes: 1 to 256 of
/// them, as served tiles are never empty.
pub fn tile_hashes(bytes: &[u8]) -> Result<Vec<Hash>, TileError> {
    let chunks = bytes.chunks_exact(HASH_SIZE);
    let count = chunks.len();
    if count == 0 || !chunks.remainder().is_empty() || count as u64 > TILE_WIDTH {
        return Err(TileError::BadTileLength { len: bytes.len() });
    }
    Ok(chunks
        .map(|chunk| {
            let mut hash = [0u8; HASH_SIZE];
            hash.copy_from_slice(chunk);
            hash
        })
        .collect())
}

/// Joins hashes into tile bytes.
pub fn tile_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// Entry bundle bytes: each entry as a 2-byte big-endian length then its
/// bytes. Error if an entry is longer than 65535 bytes.
pub fn encode_bundle(entries: &[&[u8]]) -> Result<Vec<u8>, TileError> {
    let mut bundle = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
    for entry in entries {
        append_to_bundle(&mut bundle, entry)?;
    }
    Ok(bundle)
}

/// Appends one entry to an entry bundle; leaves `bundle` unchanged on error.
pub fn append_to_bundle(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), TileError> {
    if entry.len() > MAX_ENTRY_LEN {
        return Err(TileError::EntryTooLong { len: entry.len() });
    }
    let len = entry.len() as u16;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// Splits an entry bundle into its entries. Strict: an incomplete length or
/// entry at the end is an error. The format is self-delimiting entry by
/// entry, so a bundle cut at an entry boundary still decodes: callers compare
/// the number of entries with the width the bundle's path names.
pub fn decode_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut entries = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let truncated = TileError::BundleTruncated { offset };
        let Some(&[hi, lo]) = bytes.get(offset..offset + 2) else {
            return Err(truncated);
        };
        let start = offset + 2;
        let end = start + usize::from(u16::from_be_bytes([hi, lo]));
        let Some(entry) = bytes.get(start..end) else {
            return Err(truncated);
        };
        entries.push(entry);
        offset = end;
    }
    Ok(entries)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::merkle::{MemoryTree, leaf_hash};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn hashes(level: u8, index: u64, width: u16) -> TilePath {
        TilePath::Hashes(TileId {
            level,
            index,
            width,
        })
    }

    // Index encoding follows the spec's and Go sumdb's examples.
    #[test]
    fn index_encoding_examples() {
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(1), "001");
        assert_eq!(encode_index(999), "999");
        assert_eq!(encode_index(1000), "x001/000");
        assert_eq!(encode_index(1234), "x001/234");
        assert_eq!(encode_index(1_234_067), "x001/x234/067");
        assert_eq!(encode_index(123_456_789), "x123/x456/789");
        assert_eq!(encode_index(u64::MAX), "x018/x446/x744/x073/x709/x551/615");
    }

    // Canonical paths parse to what they name and are written back unchanged.
    #[test]
    fn canonical_paths_parse_and_round_trip() {
        let cases = [
            ("0/x001/234.p/5", hashes(0, 1234, 5)),
            ("1/000", hashes(1, 0, 256)),
            ("0/x001/x234/067", hashes(0, 1_234_067, 256)),
            ("2/x001/x234/067.p/8", hashes(2, 1_234_067, 8)),
            ("63/000.p/255", hashes(63, 0, 255)),
            ("0/000.p/1", hashes(0, 0, 1)),
            (
                "7/x018/x446/x744/x073/x709/x551/615",
                hashes(7, u64::MAX, 256),
            ),
            (
                "entries/x001/234",
                TilePath::Entries {
                    index: 1234,
                    width: 256,
                },
            ),
            (
                "entries/000.p/15",
                TilePath::Entries {
                    index: 0,
                    width: 15,
                },
            ),
            (
                "entries/x123/x456/789.p/100",
                TilePath::Entries {
                    index: 123_456_789,
                    width: 100,
                },
            ),
        ];
        for (path, want) in cases {
            assert_eq!(parse_tile_path(path), Ok(want), "{path}");
            let full = format!("tile/{path}");
            assert_eq!(want.to_path(), full);
            assert_eq!(parse_tile_path(&full), Ok(want), "{full}");
        }
    }

    // Every non-canonical or malformed path is rejected.
    #[test]
    fn non_canonical_paths_are_rejected() {
        let bad = [
            "",
            "/",
            "tile/",
            "tile",
            "0",
            "0/",
            "/0/000",
            "tile//0/000",
            "tile/tile/0/000",
            "x/0/000",
            "https://example.com/tile/0/000",
            "tile/0/1",
            "0/1",
            "0/01",
            "0/0001",
            "0/x000/001",
            "0/x000/x001/234",
            "0/x1/234",
            "0/x0001/234",
            "0/001/234",
            "0/x001/x234",
            "0/x001/234/",
            "0/000/",
            "0/x001//234",
            "0/-01",
            "0/+01",
            "0/ 01",
            "0/00a",
            "0/X001/234",
            "00/000",
            "01/000",
            "-1/000",
            "+1/000",
            "64/000",
            "255/000",
            "256/000",
            "99999999999999999999/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/007",
            "0/000.p/07",
            "0/000.p/",
            "0/000.p",
            "0/000.p/+5",
            "0/000.p/-5",
            "0/000.p/5/",
            "0/000.p/5.p/5",
            "0/000.P/5",
            "0/000.q/5",
            "0/000p/5",
            "0/.p/5",
            "0/x001.p/5",
            "0/x001.p/234",
            "0/x019/x000/x000/x000/x000/x000/000",
            "0/x018/x446/x744/x073/x709/x551/616",
            "0/x001/x000/x000/x000/x000/x000/x000/000",
            "entries",
            "entries/",
            "entries/1",
            "entries/x000/001",
            "entries/000.p/0",
            "entries/000.p/256",
            "Entries/000",
            "data/000",
            "0/x٠٠1/234",
        ];
        for path in bad {
            assert!(
                matches!(parse_tile_path(path), Err(TileError::BadPath { .. })),
                "accepted {path:?}: {:?}",
                parse_tile_path(path)
            );
        }
    }

    // Tile widths follow the spec's examples for trees of 70,000 and 256.
    #[test]
    fn tile_widths_follow_the_spec_examples() {
        assert_eq!(tile_width(0, 0, 70_000), 256);
        assert_eq!(tile_width(0, 272, 70_000), 256);
        assert_eq!(tile_width(0, 273, 70_000), 112);
        assert_eq!(tile_width(0, 274, 70_000), 0);
        assert_eq!(tile_width(1, 0, 70_000), 256);
        assert_eq!(tile_width(1, 1, 70_000), 17);
        assert_eq!(tile_width(1, 2, 70_000), 0);
        assert_eq!(tile_width(2, 0, 70_000), 1);
        assert_eq!(tile_width(3, 0, 70_000), 0);
        assert_eq!(tile_width(0, 0, 256), 256);
        assert_eq!(tile_width(0, 1, 256), 0);
        assert_eq!(tile_width(1, 0, 256), 1);
        assert_eq!(tile_width(0, 0, 0), 0);
        assert_eq!(tile_width(7, 0, u64::MAX), 255);
        assert_eq!(tile_width(8, 0, u64::MAX), 0);
        assert_eq!(tile_width(255, u64::MAX, u64::MAX), 0);
        assert_eq!(tile_width(0, u64::MAX, u64::MAX), 0);
    }

    // Nodes map to the tile, position and count that hold them.
    #[test]
    fn node_locations() {
        assert_eq!(node_location(0, 0), (0, 0, 0, 1));
        assert_eq!(node_location(0, 300), (0, 1, 44, 1));
        assert_eq!(node_location(3, 40), (0, 1, 64, 8));
        assert_eq!(node_location(7, 3), (0, 1, 128, 128));
        assert_eq!(node_location(8, 5), (1, 0, 5, 1));
        assert_eq!(node_location(8, 256), (1, 1, 0, 1));
        assert_eq!(node_location(9, 200), (1, 1, 144, 2));
        assert_eq!(node_location(16, 1), (2, 0, 1, 1));
        assert_eq!(node_location(63, 1), (7, 0, 128, 128));
        assert_eq!(node_location(7, u64::MAX), (0, u64::MAX >> 1, 128, 128));
        assert_eq!(node_location(255, u64::MAX), (31, u64::MAX >> 1, 128, 128));
    }

    // Tile bytes split into hashes only when they are 1 to 256 whole hashes.
    #[test]
    fn tile_bytes_split_and_join() {
        let hs: Vec<Hash> = (0..256u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let bytes = tile_bytes(&hs);
        assert_eq!(bytes.len(), 8192);
        assert_eq!(tile_hashes(&bytes).unwrap(), hs);
        assert_eq!(tile_hashes(&bytes[..32]).unwrap(), hs[..1].to_vec());
        for len in [0, 1, 31, 33, 8191, 8193, 8224] {
            let data = vec![0u8; len];
            assert_eq!(tile_hashes(&data), Err(TileError::BadTileLength { len }));
        }
    }

    // Entries longer than a u16 length allows are refused, and the bundle is
    // left as it was.
    #[test]
    fn oversized_entries_are_refused() {
        let big = vec![7u8; 65_536];
        let max = vec![7u8; 65_535];
        assert_eq!(
            encode_bundle(&[b"ok", &big]),
            Err(TileError::EntryTooLong { len: 65_536 })
        );
        let mut bundle = encode_bundle(&[b"ok"]).unwrap();
        assert_eq!(
            append_to_bundle(&mut bundle, &big),
            Err(TileError::EntryTooLong { len: 65_536 })
        );
        assert_eq!(bundle, b"\x00\x02ok");
        append_to_bundle(&mut bundle, &max).unwrap();
        assert_eq!(decode_bundle(&bundle).unwrap(), vec![&b"ok"[..], &max[..]]);
        assert_eq!(decode_bundle(&[]).unwrap(), Vec::<&[u8]>::new());
        assert_eq!(
            decode_bundle(&[0]),
            Err(TileError::BundleTruncated { offset: 0 })
        );
        assert_eq!(
            decode_bundle(b"\x00\x02ok\x00\x03ab"),
            Err(TileError::BundleTruncated { offset: 4 })
        );
    }

    /// Leaves of the tree the tile property tests share: enough for a full
    /// level-1 tile and a partial level-2 tile.
    const TREE_SIZE: u64 = 1 << 17;

    struct Shared {
        tree: MemoryTree,
        /// Node hashes at heights 0, 8 and 16: what tiles of levels 0, 1, 2 hold.
        by_tile_level: [Vec<Hash>; 3],
    }

    fn shared() -> &'static Shared {
        static SHARED: OnceLock<Shared> = OnceLock::new();
        SHARED.get_or_init(|| {
            let mut tree = MemoryTree::new();
            for i in 0..TREE_SIZE {
                tree.push(leaf_hash(&i.to_le_bytes()));
            }
            let level0 = tree.leaves().to_vec();
            let level1: Vec<Hash> = (0..TREE_SIZE >> 8)
                .map(|i| tree.subtree_hash(8, i))
                .collect();
            let level2: Vec<Hash> = level1.chunks(256).map(root_from_leaf_hashes).collect();
            Shared {
                tree,
                by_tile_level: [level0, level1, level2],
            }
        })
    }

    /// The hashes of tile (level, index) for a tree of `size` leaves.
    fn tile_for(level: u8, index: u64, size: u64) -> Vec<Hash> {
        let width = tile_width(level, index, size);
        let first = (index * TILE_WIDTH) as usize;
        shared().by_tile_level[usize::from(level)][first..first + width as usize].to_vec()
    }

    // Height-16 nodes built from level-1 tiles equal those built from leaves.
    #[test]
    fn higher_tiles_hold_nodes_of_full_tiles_below() {
        let s = shared();
        for (i, node) in s.by_tile_level[2].iter().enumerate() {
            assert_eq!(*node, s.tree.subtree_hash(16, i as u64));
        }
    }

    fn any_tile_path() -> impl Strategy<Value = TilePath> {
        prop_oneof![
            (0..=MAX_LEVEL, any::<u64>(), 1..=256u16).prop_map(|(l, i, w)| hashes(l, i, w)),
            (0..1_000_000u64, 1..=256u16).prop_map(|(i, w)| hashes(0, i, w)),
            (any::<u64>(), 1..=256u16)
                .prop_map(|(index, width)| TilePath::Entries { index, width }),
            (0..5000u64, 1..=256u16).prop_map(|(index, width)| TilePath::Entries { index, width }),
        ]
    }

    /// A tree size, and a complete node of it at a height the shared tiles
    /// cover.
    fn size_and_node() -> impl Strategy<Value = (u64, u8, u64)> {
        (1..=TREE_SIZE)
            .prop_flat_map(|size| (Just(size), 0..=(63 - size.leading_zeros()) as u8))
            .prop_flat_map(|(size, level)| (Just(size), Just(level), 0..(size >> level)))
    }

    proptest! {
        // Every valid tile path survives to_path and parse_tile_path.
        #[test]
        fn tile_paths_round_trip(path in any_tile_path()) {
            let text = path.to_path();
            prop_assert_eq!(parse_tile_path(&text), Ok(path));
            prop_assert_eq!(parse_tile_path(&text["tile/".len()..]), Ok(path));
        }

        // Mutating one byte of a canonical path never yields another valid
        // path that writes back differently.
        #[test]
        fn mutated_paths_parse_only_canonically(
            path in any_tile_path(),
            at in any::<usize>(),
            byte in prop::sample::select(b"0123456789x./p-+ a".to_vec()),
        ) {
            let mut text = path.to_path().into_bytes();
            let i = at % text.len();
            text[i] = byte;
            let parsed = String::from_utf8(text)
                .ok()
                .and_then(|text| parse_tile_path(&text).ok().map(|p| (p, text)));
            if let Some((parsed, text)) = parsed {
                prop_assert_eq!(parsed.to_path(), text);
            }
        }

        // Bundles decode to the entries they were built from, and cuts inside
        // an entry or an extra byte are refused.
        #[test]
        fn bundles_round_trip_and_reject_damage(
            entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
            cut in any::<usize>(),
            extra in any::<u8>(),
        ) {
            let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
            let bundle = encode_bundle(&refs).unwrap();
            prop_assert_eq!(decode_bundle(&bundle).unwrap(), refs.clone());

            let mut appended = Vec::new();
            for entry in &refs {
                append_to_bundle(&mut appended, entry).unwrap();
            }
            prop_assert_eq!(&appended, &bundle);

            let boundaries: Vec<usize> = refs
                .iter()
                .scan(0, |end, e| { *end += 2 + e.len(); Some(*end) })
                .collect();
            if !bundle.is_empty() {
                let cut = cut % bundle.len();
                match boundaries.iter().position(|&b| b == cut) {
                    // A cut at an entry boundary is a shorter, valid bundle.
                    Some(i) => prop_assert_eq!(decode_bundle(&bundle[..cut]).unwrap(), refs[..=i].to_vec()),
                    None if cut == 0 => prop_assert!(decode_bundle(&bundle[..0]).unwrap().is_empty()),
                    None => prop_assert!(decode_bundle(&bundle[..cut]).is_err()),
                }
            }
            let mut extended = bundle.clone();
            extended.push(extra);
            prop_assert!(decode_bundle(&extended).is_err());
            // A length that promises more bytes than follow is refused.
            extended.push(0xff);
            extended.push(extra);
            prop_assert!(decode_bundle(&extended).is_err());
        }

        // Complete subtrees computed from the tile that holds them equal the
        // subtrees of the in-memory tree, and a tile without the needed hashes
        // is an error.
        #[test]
        fn subtree_from_tile_matches_memory_tree((size, level, index) in size_and_node()) {
            let (tile_level, tile_index, first, count) = node_location(level, index);
            let tile = tile_for(tile_level, tile_index, size);
            prop_assert!(first + count <= tile.len());
            let want = shared().tree.subtree_hash(level, index);
            prop_assert_eq!(subtree_hash_from_tile(&tile, level, index), Ok(want));
            let short = &tile[..first + count - 1];
            prop_assert_eq!(
                subtree_hash_from_tile(short, level, index),
                Err(TileError::MissingHashes { needed: first + count, available: short.len() })
            );
        }
    }
}
