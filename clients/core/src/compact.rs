//! A compact range: the right edge of an RFC 6962 tree (one perfect-subtree
//! root per set bit of the size). A follower appends leaf hashes one by one
//! and gets the root of every prefix in O(log n) memory, so an audit of a
//! log is incremental: each new checkpoint costs only its new entries.

use crate::merkle::{self, Hash};

/// The right edge of a tree of `size` leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first.
    hashes: Vec<Hash>,
}

impl CompactRange {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from its parts, e.g. read back from storage.
    /// `None` if the number of hashes does not match the size.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(CompactRange { size, hashes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut h = leaf_hash;
        // Each trailing one bit of the old size is a subtree that merges.
        let mut size = self.size;
        while size & 1 == 1 {
            if let Some(left) = self.hashes.pop() {
                h = merkle::node_hash(&left, &h);
            }
            size >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The root of the tree so far (RFC 6962 MTH).
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        let Some(last) = iter.next() else {
            return merkle::empty_root();
        };
        iter.fold(*last, |right, left| merkle::node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MemoryTree;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        // For every prefix, the compact range's root equals the full tree's.
        #[test]
        fn roots_match_the_tree(n in 0u64..600) {
            let mut range = CompactRange::new();
            let mut tree = MemoryTree::new();
            prop_assert_eq!(range.root(), tree.root());
            for i in 0..n {
                let h = merkle::leaf_hash(&i.to_be_bytes());
                range.push(h);
                tree.push(h);
                prop_assert_eq!(range.root(), tree.root());
            }
            let again = CompactRange::from_parts(range.size(), range.hashes().to_vec());
            prop_assert_eq!(again, Some(range));
        }
    }
}
