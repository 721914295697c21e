//! Merkle root over transaction ids.
//!
//! Leaves and inner nodes are hashed with different one-byte prefixes (0x00 and 0x01), so a
//! node can never be passed off as a leaf. A level with an odd count carries its last node
//! up unchanged instead of pairing it with itself: duplicating it (as Bitcoin does) lets two
//! different transaction lists share a root (CVE-2012-2459).

use alloc::vec::Vec;

use crate::hash::{Hash256, sha256d_parts};
use crate::primitives::Txid;

const LEAF: &[u8] = &[0x00];
const NODE: &[u8] = &[0x01];

pub fn leaf_hash(id: &Txid) -> Hash256 {
    sha256d_parts(&[LEAF, id.as_bytes()])
}

pub fn node_hash(left: &Hash256, right: &Hash256) -> Hash256 {
    sha256d_parts(&[NODE, &left.0, &right.0])
}

/// Root of `ids`; the all-zero hash for an empty list (no valid block has one).
pub fn root(ids: &[Txid]) -> Hash256 {
    if ids.is_empty() {
        return Hash256::ZERO;
    }
    let mut level: Vec<Hash256> = ids.iter().map(leaf_hash).collect();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            next.push(match pair {
                [l, r] => node_hash(l, r),
                [lone] => *lone,
                _ => unreachable!("chunks(2) yields one or two items"),
            });
        }
        level = next;
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256d;

    fn ids(n: u8) -> Vec<Txid> {
        (0..n).map(|i| Txid::from_hash(sha256d(&[i]))).collect()
    }

    #[test]
    fn shapes() {
        let v = ids(3);
        assert_eq!(root(&v[..1]), leaf_hash(&v[0]));
        assert_eq!(
            root(&v[..2]),
            node_hash(&leaf_hash(&v[0]), &leaf_hash(&v[1]))
        );
        assert_eq!(
            root(&v),
            node_hash(
                &node_hash(&leaf_hash(&v[0]), &leaf_hash(&v[1])),
                &leaf_hash(&v[2])
            )
        );
    }

    #[test]
    fn duplicating_the_last_leaf_changes_the_root() {
        // The CVE-2012-2459 mutation: [a, b, c] and [a, b, c, c] must differ.
        let mut v = ids(3);
        let r3 = root(&v);
        v.push(v[2]);
        assert_ne!(r3, root(&v));
    }

    #[test]
    fn every_list_length_and_order_gives_distinct_roots() {
        let v = ids(9);
        let mut seen = alloc::collections::BTreeSet::new();
        for n in 1..=9 {
            assert!(seen.insert(root(&v[..n])));
            let mut rev = v[..n].to_vec();
            rev.reverse();
            if n > 1 {
                assert!(seen.insert(root(&rev)));
            }
        }
    }

    #[test]
    fn a_node_is_not_a_leaf() {
        let v = ids(2);
        // A one-leaf tree whose "id" is the inner node of a two-leaf tree has another root.
        let inner = node_hash(&leaf_hash(&v[0]), &leaf_hash(&v[1]));
        assert_ne!(root(&[Txid::from_hash(inner)]), root(&v));
    }
}
