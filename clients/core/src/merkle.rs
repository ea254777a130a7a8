//! Merkle tree hashing and proofs of RFC 6962 / RFC 9162 section 2.1, with
//! SHA-256.
//!
//! Proof *generation* works over any source of complete-subtree hashes (a tile
//! store, a database, an in-memory tree), so that the log can prove inclusion
//! and consistency in a tree of any size while reading O(log n) hashes.
//! Proof *verification* follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and
//! accepts and rejects exactly what transparency-dev/merkle accepts and
//! rejects, so that this crate and Go clients agree on every proof.
//!
//! Tree positions are `(level, index)`: the complete subtree at height
//! `level` over leaves `[index << level, (index + 1) << level)`.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// Size in bytes of a [`Hash`](type@Hash).
pub const HASH_SIZE: usize = 32;

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Leaf hash: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// Interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root (MTH) of a list of leaf hashes, any length (empty -> [`empty_root`]).
///
/// Linear time, and memory logarithmic in the number of leaves.
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    // The stack holds complete subtrees of strictly decreasing height: the
    // RFC 6962 decomposition of the leaves seen so far. Folding it from the
    // right gives the MTH, because RFC 6962 splits at the largest power of two.
    let mut stack: Vec<(u32, Hash)> = Vec::with_capacity(64);
    for leaf in leaves {
        let mut height = 0u32;
        let mut hash = *leaf;
        while let Some((top_height, top_hash)) = stack.last() {
            if *top_height != height {
                break;
            }
            hash = node_hash(top_hash, &hash);
            height += 1;
            stack.pop();
        }
        stack.push((height, hash));
    }
    let mut rest = stack.iter().rev().map(|(_, h)| h);
    match rest.next() {
        None => empty_root(),
        Some(last) => rest.fold(*last, |acc, left| node_hash(left, &acc)),
    }
}

/// Errors of proof *generation*: either the request is out of range, or the
/// hash source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProveError<E> {
    /// The leaf index (inclusion) is not below the tree size, or the old size
    /// (consistency) is above the new size.
    #[error("leaf index or old tree size {requested} is out of range for tree size {size}")]
    OutOfRange {
        /// The leaf index, or the old tree size.
        requested: u64,
        /// The size of the tree the proof is for.
        size: u64,
    },
    /// The source of subtree hashes failed.
    #[error("subtree hash source failed: {0}")]
    Source(E),
}

/// Bit length of `x`: the number of bits needed to write it (0 for 0).
fn bit_len(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// Whether complete subtree `(level, index)` lies entirely inside `[0, size)`.
fn is_complete(level: u32, index: u64, size: u64) -> bool {
    index
        .checked_add(1)
        .and_then(|end| {
            if level >= u64::BITS {
                None
            } else {
                end.checked_mul(1u64 << level)
            }
        })
        .is_some_and(|end| end <= size)
}

/// MTH of leaves `[start, end)` where `start < end` and `start` is a multiple
/// of the smallest power of two >= `end - start` (a node of the RFC 6962 tree
/// of size `end`, possibly on its right border).
///
/// Such a range splits, from the left, into complete subtrees of strictly
/// decreasing size given by the binary digits of `end - start`, and RFC 6962
/// hashes it by folding those from the right.
fn range_hash<E>(
    start: u64,
    end: u64,
    subtree: &mut impl FnMut(u8, u64) -> Result<Hash, E>,
) -> Result<Hash, E> {
    let len = end.saturating_sub(start);
    let mut parts: Vec<Hash> = Vec::with_capacity(len.count_ones() as usize);
    let mut pos = start;
    for level in (0..u64::BITS).rev() {
        let piece = 1u64 << level;
        if len & piece != 0 {
            parts.push(subtree(level as u8, pos >> level)?);
            pos = pos.saturating_add(piece);
        }
    }
    let mut rest = parts.iter().rev();
    Ok(match rest.next() {
        None => empty_root(),
        Some(last) => rest.fold(*last, |acc, left| node_hash(left, &acc)),
    })
}

/// Root of the tree of `size` leaves; `subtree(level, index)` returns the hash
/// of the COMPLETE subtree at height `level` covering leaves
/// `[index << level, (index + 1) << level)`.
///
/// Calls `subtree` at most 64 times (once per set bit of `size`), and only for
/// complete subtrees that lie inside `[0, size)`.
pub fn tree_root<E>(
    size: u64,
    mut subtree: impl FnMut(u8, u64) -> Result<Hash, E>,
) -> Result<Hash, E> {
    range_hash(0, size, &mut subtree)
}

/// Appends to `out` the hashes that prove complete node `(level, index)` into
/// the tree of `size` leaves, from the bottom up. Requires
/// `is_complete(level, index, size)`.
fn node_path<E>(
    level: u32,
    index: u64,
    size: u64,
    subtree: &mut impl FnMut(u8, u64) -> Result<Hash, ProveError<E>>,
    out: &mut Vec<Hash>,
) -> Result<(), ProveError<E>> {
    let last = size.saturating_sub(1) >> level;
    // Below `inner` relative levels the path to the node and the path to the
    // last leaf differ; above it they are the same right-border path, where
    // only left siblings exist.
    let inner = bit_len(index ^ last);
    for i in 0..inner {
        let height = level + i;
        let sibling = (index >> i) ^ 1;
        if is_complete(height, sibling, size) {
            out.push(subtree(height as u8, sibling)?);
        } else {
            // Only the right sibling just below the fork can be cut off by the
            // tree's right border; RFC 6962 then hashes what is left of it.
            let start = sibling << height;
            out.push(range_hash(start, size, subtree)?);
        }
    }
    for i in inner..(u64::BITS - level) {
        let at = index >> i;
        if at & 1 == 1 {
            out.push(subtree((level + i) as u8, at ^ 1)?);
        }
    }
    Ok(())
}

/// RFC 9162 2.1.3.1 inclusion proof (PATH) for leaf `index` in a tree of
/// `size`, with at most 128 `subtree` calls, all for complete subtrees inside
/// `[0, size)`.
pub fn inclusion_proof<E>(
    index: u64,
    size: u64,
    mut subtree: impl FnMut(u8, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, ProveError<E>> {
    if index >= size {
        return Err(ProveError::OutOfRange {
            requested: index,
            size,
        });
    }
    let mut source = |level: u8, i: u64| subtree(level, i).map_err(ProveError::Source);
    let mut out = Vec::with_capacity(64);
    node_path(0, index, size, &mut source, &mut out)?;
    Ok(out)
}

/// RFC 9162 2.1.4.1 consistency proof (`PROOF(m, D[n])`) between sizes
/// `0 <= size1 <= size2`; empty when `size1 == size2` or `size1 == 0`.
/// At most 129 `subtree` calls, all for complete subtrees inside `[0, size2)`.
pub fn consistency_proof<E>(
    size1: u64,
    size2: u64,
    mut subtree: impl FnMut(u8, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, ProveError<E>> {
    if size1 > size2 {
        return Err(ProveError::OutOfRange {
            requested: size1,
            size: size2,
        });
    }
    if size1 == 0 || size1 == size2 {
        return Ok(Vec::new());
    }
    let mut source = |level: u8, i: u64| subtree(level, i).map_err(ProveError::Source);
    // The old tree ends with the complete subtree (level, index): its last
    // power-of-two piece. Proving that node into the new tree proves the old
    // tree, since the rest of the old tree is made of left siblings on the path.
    let level = size1.trailing_zeros();
    let index = (size1 - 1) >> level;
    let mut out = Vec::with_capacity(65);
    if index != 0 {
        // When the old tree is a single complete subtree the verifier already
        // has that node as its old root, so RFC 9162 leaves it out.
        out.push(source(level as u8, index)?);
    }
    node_path(level, index, size2, &mut source, &mut out)?;
    Ok(out)
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for the claimed sizes.
    #[error("proof has {got} hashes, want {want}")]
    WrongProofLength {
        /// Number of hashes in the proof.
        got: usize,
        /// Number of hashes a proof for these sizes has.
        want: usize,
    },
    /// The old size is larger than the new size.
    #[error("old tree size {size1} is larger than new tree size {size2}")]
    SizesOutOfOrder {
        /// The old tree size.
        size1: u64,
        /// The new tree size.
        size2: u64,
    },
    /// Consistency from the empty tree carries no information, and
    /// transparency-dev/merkle refuses it; a caller whose old size is 0 has
    /// nothing to check.
    #[error("a consistency proof from the empty tree is meaningless")]
    FromEmptyTree,
    /// The proof does not lead to the expected (new) root.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// The consistency proof does not lead to the old root.
    #[error("consistency proof does not lead to the old root")]
    OldRootMismatch,
}

/// Lengths of the two parts of an inclusion proof for `index` in a tree of
/// `size` (`index < size`): the levels where the paths to `index` and to the
/// last leaf differ, and the left siblings on the shared right-border path.
fn decompose_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = bit_len(index ^ (size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// Chains `seed`, the node at position `index` on its level, up through
/// `proof`, siblings ordered from the bottom up.
fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        let bit = index.checked_shr(i as u32).unwrap_or(0) & 1;
        if bit == 0 {
            node_hash(&acc, h)
        } else {
            node_hash(h, &acc)
        }
    })
}

/// Like [`chain_inner`], but only through left siblings: the result is the
/// same subtree as it was when the node at `index` was the last one.
fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        let bit = index.checked_shr(i as u32).unwrap_or(0) & 1;
        if bit == 1 { node_hash(h, &acc) } else { acc }
    })
}

/// Chains up the right border, where every proof hash is a left sibling.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof.iter().fold(seed, |acc, h| node_hash(h, &acc))
}

/// Root implied by an inclusion proof (RFC 9162 2.1.3.2 without the final
/// comparison): useful for clients that look the root up afterwards.
pub fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose_inclusion(index, size);
    let want = inner + border;
    if proof.len() != want {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    let (inner_part, border_part) = proof.split_at(inner);
    let hash = chain_inner(*leaf_hash, inner_part, index);
    Ok(chain_border_right(hash, border_part))
}

/// RFC 9162 2.1.3.2 verification of an inclusion proof.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion_proof(leaf_hash, index, size, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// RFC 9162 2.1.4.2 verification of a consistency proof, with the edge cases
/// of transparency-dev/merkle `VerifyConsistency`: `size1 > size2` and
/// `size1 == 0` are errors (even `0 == size2`); `size1 == size2` needs an
/// empty proof and equal roots.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }

    // The proof is, in effect, the inclusion proof of the old tree's last
    // complete subtree (at height `shift`) in the new tree, preceded by that
    // subtree's hash unless the old tree is exactly that subtree.
    let (inner, border) = decompose_inclusion(size1 - 1, size2);
    let shift = size1.trailing_zeros();
    // size1 - 1 ends in `shift` one bits and size2 - 1 is larger, so they
    // differ above them: inner > shift.
    let inner = inner.saturating_sub(shift as usize);
    let old_is_one_subtree = size1 == 1u64 << shift;
    let start = usize::from(!old_is_one_subtree);
    let want = start + inner + border;
    if proof.len() != want {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    let (head, rest) = proof.split_at(start);
    let seed = head.first().copied().unwrap_or(*root1);
    let (inner_part, border_part) = rest.split_at(inner);
    let mask = (size1 - 1) >> shift;

    let hash1 = chain_border_right(chain_inner_right(seed, inner_part, mask), border_part);
    if hash1 != *root1 {
        return Err(ProofError::OldRootMismatch);
    }
    let hash2 = chain_border_right(chain_inner(seed, inner_part, mask), border_part);
    if hash2 != *root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// An in-memory tree of leaf hashes: for tests, clients and small batches.
/// Not for the log's store.
///
/// Its proofs follow the recursive definitions of RFC 9162 literally, so they
/// serve as an independent reference for the generic functions above.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    leaves: Vec<Hash>,
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    let bits = usize::BITS - (n - 1).leading_zeros();
    1usize << (bits - 1)
}

/// RFC 9162 2.1.3.1 `PATH(m, D[n])`, for `m < d.len()`.
fn rfc_path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    if d.len() <= 1 {
        return;
    }
    let k = split_point(d.len());
    let (left, right) = d.split_at(k);
    if m < k {
        rfc_path(m, left, out);
        out.push(root_from_leaf_hashes(right));
    } else {
        rfc_path(m - k, right, out);
        out.push(root_from_leaf_hashes(left));
    }
}

/// RFC 9162 2.1.4.1 `SUBPROOF(m, D[n], b)`, for `1 <= m <= d.len()`.
fn rfc_subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    if m == d.len() {
        if !complete {
            out.push(root_from_leaf_hashes(d));
        }
        return;
    }
    let k = split_point(d.len());
    let (left, right) = d.split_at(k);
    if m <= k {
        rfc_subproof(m, left, complete, out);
        out.push(root_from_leaf_hashes(right));
    } else {
        rfc_subproof(m - k, right, false, out);
        out.push(root_from_leaf_hashes(left));
    }
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash (see [`leaf_hash`]).
    pub fn push(&mut self, leaf_hash: Hash) {
        self.leaves.push(leaf_hash);
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The leaf hashes, in order.
    pub fn leaves(&self) -> &[Hash] {
        &self.leaves
    }

    /// Leaves `[start, end)` clipped to the tree, as a slice.
    fn clipped(&self, start: u64, end: u64) -> &[Hash] {
        let len = self.leaves.len();
        let start = usize::try_from(start).unwrap_or(len).min(len);
        let end = usize::try_from(end).unwrap_or(len).clamp(start, len);
        self.leaves.get(start..end).unwrap_or(&[])
    }

    /// Hash of the subtree at height `level` over leaves
    /// `[index << level, (index + 1) << level)`, in O(2^level).
    ///
    /// For a complete subtree this is its node hash. Past the last leaf the
    /// range is cut off, which gives the RFC 6962 node of the current tree at
    /// that position (or [`empty_root`] if no leaf is left), never a panic.
    pub fn subtree_hash(&self, level: u8, index: u64) -> Hash {
        let level = u32::from(level);
        let start = if level >= u64::BITS {
            if index == 0 { 0 } else { u64::MAX }
        } else if index > u64::MAX >> level {
            u64::MAX
        } else {
            index << level
        };
        let end = if level >= u64::BITS {
            u64::MAX
        } else {
            start.saturating_add(1u64 << level)
        };
        root_from_leaf_hashes(self.clipped(start, end))
    }

    /// Root of the whole tree.
    pub fn root(&self) -> Hash {
        root_from_leaf_hashes(&self.leaves)
    }

    /// Root of the tree made of the first `size` leaves; a `size` beyond
    /// [`len`](Self::len) is taken as `len`.
    pub fn root_at(&self, size: u64) -> Hash {
        root_from_leaf_hashes(self.clipped(0, size))
    }

    /// RFC 9162 inclusion proof for leaf `index` in the tree of the first
    /// `size` leaves.
    pub fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, ProveError<std::convert::Infallible>> {
        if size > self.len() {
            return Err(ProveError::OutOfRange {
                requested: size,
                size: self.len(),
            });
        }
        if index >= size {
            return Err(ProveError::OutOfRange {
                requested: index,
                size,
            });
        }
        let mut out = Vec::new();
        rfc_path(index as usize, self.clipped(0, size), &mut out);
        Ok(out)
    }

    /// RFC 9162 consistency proof between the trees of the first `size1` and
    /// the first `size2` leaves; empty when `size1 == size2` or `size1 == 0`.
    pub fn consistency_proof(
        &self,
        size1: u64,
        size2: u64,
    ) -> Result<Vec<Hash>, ProveError<std::convert::Infallible>> {
        if size2 > self.len() {
            return Err(ProveError::OutOfRange {
                requested: size2,
                size: self.len(),
            });
        }
        if size1 > size2 {
            return Err(ProveError::OutOfRange {
                requested: size1,
                size: size2,
            });
        }
        let mut out = Vec::new();
        if size1 != 0 && size1 != size2 {
            rfc_subproof(size1 as usize, self.clipped(0, size2), true, &mut out);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::convert::Infallible;
    use std::sync::OnceLock;

    /// Largest tree the property tests use; they share one tree of this size.
    const MAX_SIZE: u64 = 2000;

    fn shared_tree() -> &'static MemoryTree {
        static TREE: OnceLock<MemoryTree> = OnceLock::new();
        TREE.get_or_init(|| {
            let mut tree = MemoryTree::new();
            for i in 0..MAX_SIZE {
                tree.push(leaf_hash(format!("entry {i}").as_bytes()));
            }
            tree
        })
    }

    /// A subtree source over the shared tree that fails the test if asked for
    /// anything but a complete subtree of the tree of `size` leaves.
    fn checked_source(size: u64) -> impl FnMut(u8, u64) -> Result<Hash, Infallible> {
        move |level, index| {
            assert!(
                is_complete(u32::from(level), index, size),
                "asked for ({level}, {index}) in a tree of {size}"
            );
            Ok(shared_tree().subtree_hash(level, index))
        }
    }

    fn flip_bit(proof: &[Hash], which: usize, bit: usize) -> Vec<Hash> {
        let mut p = proof.to_vec();
        let i = which % p.len();
        p[i][bit / 8 % HASH_SIZE] ^= 1 << (bit % 8);
        p
    }

    // The hashing primitives produce the RFC 6962 values for known inputs.
    #[test]
    fn hashing_primitives_match_known_values() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(root_from_leaf_hashes(&[]), empty_root());
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        assert_eq!(root_from_leaf_hashes(&[a]), a);
        assert_eq!(root_from_leaf_hashes(&[a, b]), node_hash(&a, &b));
    }

    // The generic functions and MemoryTree handle empty and one-leaf trees.
    #[test]
    fn small_trees_and_empty_edges() {
        let never = |_: u8, _: u64| -> Result<Hash, Infallible> { panic!("no subtree needed") };
        assert_eq!(tree_root(0, never).unwrap(), empty_root());
        assert_eq!(consistency_proof(0, 0, never).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(0, 5, never).unwrap(), Vec::<Hash>::new());
        assert_eq!(consistency_proof(5, 5, never).unwrap(), Vec::<Hash>::new());
        assert!(matches!(
            inclusion_proof(0, 0, never),
            Err(ProveError::OutOfRange {
                requested: 0,
                size: 0
            })
        ));
        assert!(matches!(
            consistency_proof(6, 5, never),
            Err(ProveError::OutOfRange {
                requested: 6,
                size: 5
            })
        ));

        let mut tree = MemoryTree::new();
        assert!(tree.is_empty());
        assert_eq!(tree.root(), empty_root());
        let leaf = leaf_hash(b"only");
        tree.push(leaf);
        assert_eq!(tree.len(), 1);
        assert_eq!(tree.root(), leaf);
        assert_eq!(tree.inclusion_proof(0, 1).unwrap(), Vec::<Hash>::new());
        verify_inclusion(&leaf, 0, 1, &[], &leaf).unwrap();
        assert!(tree.inclusion_proof(0, 2).is_err());
        assert!(tree.consistency_proof(1, 2).is_err());
        assert_eq!(tree.root_at(7), leaf);
    }

    // A failing hash source surfaces as ProveError::Source.
    #[test]
    fn source_errors_are_passed_through() {
        let failing = |_: u8, _: u64| -> Result<Hash, String> { Err("disk on fire".into()) };
        assert_eq!(
            inclusion_proof(3, 10, failing),
            Err(ProveError::Source("disk on fire".to_string()))
        );
        assert_eq!(
            consistency_proof(3, 10, failing),
            Err(ProveError::Source("disk on fire".to_string()))
        );
        assert_eq!(tree_root(10, failing), Err("disk on fire".to_string()));
    }

    // MemoryTree::subtree_hash never panics on positions outside the tree.
    #[test]
    fn subtree_hash_outside_the_tree_does_not_panic() {
        let tree = shared_tree();
        assert_eq!(tree.subtree_hash(255, u64::MAX), empty_root());
        assert_eq!(tree.subtree_hash(63, u64::MAX), empty_root());
        assert_eq!(tree.subtree_hash(0, u64::MAX), empty_root());
        assert_eq!(tree.subtree_hash(64, 0), tree.root());
        assert_eq!(tree.subtree_hash(200, 0), tree.root());
        // A position cut by the right border gives that RFC 6962 node.
        assert_eq!(
            tree.subtree_hash(4, 124),
            root_from_leaf_hashes(&tree.leaves()[1984..2000])
        );
        assert_eq!(
            tree.subtree_hash(5, 62),
            root_from_leaf_hashes(&tree.leaves()[1984..2000])
        );
    }

    // Verification refuses out-of-range input without panicking.
    #[test]
    fn verification_rejects_extreme_sizes() {
        let h = leaf_hash(b"x");
        assert_eq!(
            verify_inclusion(&h, u64::MAX, u64::MAX, &[], &h),
            Err(ProofError::IndexOutOfRange {
                index: u64::MAX,
                size: u64::MAX
            })
        );
        assert!(matches!(
            verify_inclusion(&h, u64::MAX - 1, u64::MAX, &[], &h),
            Err(ProofError::WrongProofLength { got: 0, want: 63 })
        ));
        assert!(matches!(
            verify_inclusion(&h, 0, u64::MAX, &[], &h),
            Err(ProofError::WrongProofLength { got: 0, want: 64 })
        ));
        assert!(matches!(
            verify_consistency(u64::MAX - 1, u64::MAX, &[], &h, &h),
            Err(ProofError::WrongProofLength { .. })
        ));
        assert!(matches!(
            verify_consistency(1 << 63, u64::MAX, &[], &h, &h),
            Err(ProofError::WrongProofLength { .. })
        ));
        assert_eq!(
            verify_consistency(0, u64::MAX, &[], &h, &h),
            Err(ProofError::FromEmptyTree)
        );
        assert_eq!(
            verify_consistency(u64::MAX, 0, &[], &h, &h),
            Err(ProofError::SizesOutOfOrder {
                size1: u64::MAX,
                size2: 0
            })
        );
    }

    /// A source for a huge tree that is cheap to evaluate: leaf `i` is one of
    /// two values by the parity of `i`, so every node above level 0 depends on
    /// its level only and the tree is a genuine Merkle tree.
    struct ParityTree {
        level_hashes: Vec<Hash>,
    }

    impl ParityTree {
        fn new() -> Self {
            let even = leaf_hash(b"even");
            let odd = leaf_hash(b"odd");
            let mut level_hashes = vec![node_hash(&even, &odd)];
            for _ in 2..64 {
                let h = level_hashes[level_hashes.len() - 1];
                level_hashes.push(node_hash(&h, &h));
            }
            Self { level_hashes }
        }

        fn leaf(index: u64) -> Hash {
            if index & 1 == 0 {
                leaf_hash(b"even")
            } else {
                leaf_hash(b"odd")
            }
        }

        fn node(&self, level: u8, index: u64) -> Hash {
            if level == 0 {
                Self::leaf(index)
            } else {
                self.level_hashes[usize::from(level) - 1]
            }
        }
    }

    // For a tree near 10^9 leaves the generic functions ask only for complete
    // subtrees inside the tree, O(log n) times, and their proofs verify.
    #[test]
    fn generic_functions_use_few_complete_subtrees() {
        let tree = ParityTree::new();
        let size: u64 = 999_999_937;
        let log = u64::from(bit_len(size));
        let calls = Cell::new(0u64);
        let source = |bound: u64| {
            let tree = &tree;
            let calls = &calls;
            move |level: u8, index: u64| -> Result<Hash, Infallible> {
                assert!(
                    is_complete(u32::from(level), index, bound),
                    "asked for ({level}, {index}) in a tree of {bound}"
                );
                calls.set(calls.get() + 1);
                Ok(tree.node(level, index))
            }
        };

        let root = tree_root(size, source(size)).unwrap();
        assert!(calls.get() <= log, "tree_root made {} calls", calls.get());

        for index in [0, 1, 2, 255, 256, 123_456_789, size / 2, size - 2, size - 1] {
            calls.set(0);
            let proof = inclusion_proof(index, size, source(size)).unwrap();
            assert!(
                calls.get() <= 2 * log,
                "inclusion made {} calls",
                calls.get()
            );
            verify_inclusion(&ParityTree::leaf(index), index, size, &proof, &root).unwrap();
        }

        for size1 in [1, 2, 3, 1 << 20, 123_456_789, 536_870_912, size - 1] {
            calls.set(0);
            let proof = consistency_proof(size1, size, source(size)).unwrap();
            assert!(
                calls.get() <= 2 * log + 1,
                "consistency made {} calls",
                calls.get()
            );
            let root1 = tree_root(size1, source(size1)).unwrap();
            verify_consistency(size1, size, &proof, &root1, &root).unwrap();
        }

        // Sizes near the top of u64 work as well.
        for size in [u64::MAX, (1 << 63) + 1, 1 << 63] {
            let root = tree_root(size, source(size)).unwrap();
            calls.set(0);
            let proof = inclusion_proof(size - 1, size, source(size)).unwrap();
            assert!(calls.get() <= 128);
            verify_inclusion(&ParityTree::leaf(size - 1), size - 1, size, &proof, &root).unwrap();
            let size1 = size / 3;
            let proof = consistency_proof(size1, size, source(size)).unwrap();
            let root1 = tree_root(size1, source(size1)).unwrap();
            verify_consistency(size1, size, &proof, &root1, &root).unwrap();
        }
    }

    fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
        (1..=MAX_SIZE).prop_flat_map(|size| (Just(size), 0..size))
    }

    fn two_sizes() -> impl Strategy<Value = (u64, u64)> {
        (1..=MAX_SIZE).prop_flat_map(|size2| (1..=size2, Just(size2)))
    }

    proptest! {
        // tree_root over complete subtrees equals the MTH of the leaf list.
        #[test]
        fn tree_root_matches_leaf_list(size in 0..=MAX_SIZE) {
            let tree = shared_tree();
            let want = root_from_leaf_hashes(&tree.leaves()[..size as usize]);
            prop_assert_eq!(tree_root(size, checked_source(size)).unwrap(), want);
            prop_assert_eq!(tree.root_at(size), want);
        }

        // Generated inclusion proofs equal the RFC reference, verify, and every
        // tampered variant is rejected.
        #[test]
        fn inclusion_proofs_verify_and_tampering_fails(
            (size, index) in size_and_index(),
            which in any::<usize>(),
            bit in 0usize..256,
            other in any::<u64>(),
            other_size in 1..=MAX_SIZE,
        ) {
            let tree = shared_tree();
            let leaf = tree.leaves()[index as usize];
            let root = tree.root_at(size);
            let proof = inclusion_proof(index, size, checked_source(size)).unwrap();
            prop_assert_eq!(&proof, &tree.inclusion_proof(index, size).unwrap());
            prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
            prop_assert_eq!(root_from_inclusion_proof(&leaf, index, size, &proof), Ok(root));

            if !proof.is_empty() {
                let flipped = flip_bit(&proof, which, bit);
                prop_assert!(verify_inclusion(&leaf, index, size, &flipped, &root).is_err());
                let dropped = &proof[..proof.len() - 1];
                prop_assert!(verify_inclusion(&leaf, index, size, dropped, &root).is_err());
            }
            let mut added = proof.clone();
            added.push(root);
            prop_assert!(verify_inclusion(&leaf, index, size, &added, &root).is_err());

            let wrong_index = if size > 1 { (index + 1 + other % (size - 1)) % size } else { 1 };
            prop_assert_ne!(wrong_index, index);
            prop_assert!(verify_inclusion(&leaf, wrong_index, size, &proof, &root).is_err());

            if other_size != size {
                let other_root = tree.root_at(other_size);
                prop_assert!(
                    verify_inclusion(&leaf, index, other_size, &proof, &other_root).is_err()
                );
            }
            let wrong_root = flip_bit(&[root], 0, bit)[0];
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &wrong_root).is_err());
            let wrong_leaf = flip_bit(&[leaf], 0, bit)[0];
            prop_assert!(verify_inclusion(&wrong_leaf, index, size, &proof, &root).is_err());
        }

        // Generated consistency proofs equal the RFC reference, verify, and
        // every tampered variant is rejected.
        #[test]
        fn consistency_proofs_verify_and_tampering_fails(
            (size1, size2) in two_sizes(),
            which in any::<usize>(),
            bit in 0usize..256,
            other_size in 1..=MAX_SIZE,
        ) {
            let tree = shared_tree();
            let root1 = tree.root_at(size1);
            let root2 = tree.root_at(size2);
            let proof = consistency_proof(size1, size2, checked_source(size2)).unwrap();
            prop_assert_eq!(&proof, &tree.consistency_proof(size1, size2).unwrap());
            prop_assert_eq!(verify_consistency(size1, size2, &proof, &root1, &root2), Ok(()));

            if !proof.is_empty() {
                let flipped = flip_bit(&proof, which, bit);
                prop_assert!(verify_consistency(size1, size2, &flipped, &root1, &root2).is_err());
                let dropped = &proof[..proof.len() - 1];
                prop_assert!(verify_consistency(size1, size2, dropped, &root1, &root2).is_err());
            }
            let mut added = proof.clone();
            added.push(root1);
            prop_assert!(verify_consistency(size1, size2, &added, &root1, &root2).is_err());

            let wrong1 = flip_bit(&[root1], 0, bit)[0];
            prop_assert!(verify_consistency(size1, size2, &proof, &wrong1, &root2).is_err());
            let wrong2 = flip_bit(&[root2], 0, bit)[0];
            prop_assert!(verify_consistency(size1, size2, &proof, &root1, &wrong2).is_err());

            if other_size != size1 {
                let other_root = tree.root_at(other_size);
                prop_assert!(
                    verify_consistency(other_size, size2, &proof, &other_root, &root2).is_err()
                );
            }
            if other_size != size2 {
                let other_root = tree.root_at(other_size);
                prop_assert!(
                    verify_consistency(size1, other_size, &proof, &root1, &other_root).is_err()
                );
            }
        }
    }
}
