//! Rebuilding the stored chain state from the stored blocks, when the state does not load
//! (a damaged record, a state that does not fit together) or a repair was interrupted.
//!
//! Linear in the number of blocks: blocks are ordered parents-first through a map of
//! children (each visited once) and replayed into a fresh chain. It writes in bounded
//! transactions and never deletes a block that decodes and links to genesis:
//!
//! 1. one transaction marks the repair under meta `repair`, deletes the block records that
//!    do not decode or do not link to genesis, and empties what the replay recomputes
//!    (headers, UTXO set, undo data, invalid marks, tip, relay list);
//! 2. the replay's ChangeSets (headers instead of the block bodies, which are stored
//!    already) go in
//!    merged batches bounded like the write queue's ([`Limits::BROWSER`]), each moving the
//!    stored tip forward;
//! 3. one transaction deletes the mark.
//!
//! A tab closed at any point leaves the blocks and the mark: the next start sees the mark
//! and repairs again.

use std::collections::{BTreeMap, BTreeSet};

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash};

use crate::idb::{IdbStore, StoreError};
use crate::queue::{Limits, WriteQueue};

/// The meta key that marks a repair under way.
pub const REPAIR_MARK: &str = "repair";

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// Height of the rebuilt tip.
    pub height: u64,
    /// Blocks replayed.
    pub kept: usize,
    /// Block records deleted (undecodable, or not linking to genesis, or invalid).
    pub dropped: usize,
    /// Write transactions used.
    pub transactions: usize,
}

/// Orders `blocks` parents-first from `genesis` (linear: one map of children, each block
/// visited once). Blocks that do not link to genesis are returned apart.
pub fn parents_first(genesis: BlockHash, blocks: Vec<Block>) -> (Vec<Block>, Vec<Block>) {
    let mut children: BTreeMap<BlockHash, Vec<Block>> = BTreeMap::new();
    for b in blocks {
        if b.hash() != genesis {
            children.entry(b.header.prev).or_default().push(b);
        }
    }
    let mut ordered = Vec::new();
    let mut stack = vec![genesis];
    while let Some(parent) = stack.pop() {
        for b in children.remove(&parent).unwrap_or_default() {
            stack.push(b.hash());
            ordered.push(b);
        }
    }
    let unlinked = children.into_values().flatten().collect();
    (ordered, unlinked)
}

/// Rebuilds the chain state of `store` from its blocks (see the module doc). `why` is
/// kept under the repair mark until the repair completes.
pub async fn repair(store: &IdbStore, params: &Params, why: &str) -> Result<Repaired, StoreError> {
    let (blocks, bad_keys) = store.scan_blocks().await?;
    let mut chain = Chain::new(params.clone());
    let (ordered, unlinked) = parents_first(chain.genesis_hash(), blocks);
    let mut queue = WriteQueue::new(Limits::BROWSER);
    let mut dropped: Vec<String> = bad_keys;
    dropped.extend(unlinked.iter().map(|b| b.hash().to_hex()));
    let mut rejected: BTreeSet<BlockHash> = BTreeSet::new();
    let mut kept = 0;
    for b in &ordered {
        // A child of a rejected block cannot connect either.
        if rejected.contains(&b.header.prev) {
            rejected.insert(b.hash());
            continue;
        }
        match chain.accept_block(b, u64::MAX / 4) {
            Ok(out) => {
                let mut changes = out.changes;
                // The bodies are in the store already (with their index entries); their
                // headers are written again, since the repair's first write clears them,
                // each with its body's size (the bodies stay stored).
                for b in changes.blocks.drain(..) {
                    let size = u32::try_from(b.encoded_len()).unwrap_or(u32::MAX);
                    changes.sizes.insert(b.hash(), size);
                    changes.headers.push(b.header);
                }
                queue.push(changes);
                kept += 1;
            }
            Err(_) => {
                rejected.insert(b.hash());
            }
        }
    }
    dropped.extend(rejected.iter().map(BlockHash::to_hex));

    store.begin_repair(why, &dropped).await?;
    let mut transactions = 1;
    while let Some(batch) = queue.take_batch() {
        store.persist(&batch.changes).await?;
        queue.committed();
        transactions += 1;
    }
    store.delete_meta(REPAIR_MARK).await?;
    transactions += 1;
    Ok(Repaired {
        height: chain.height().0,
        kept,
        dropped: dropped.len(),
        transactions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabcoin_core::testkit::{block_with, wallet};

    #[test]
    fn parents_first_is_linear_and_keeps_forks_and_drops_orphans() {
        let params = Params::test();
        let key = wallet(1, &params).public_key();
        let mut chain = Chain::new(params.clone());
        let mut blocks = Vec::new();
        for _ in 0..30 {
            let b = block_with(&chain, &[], key, b"main");
            chain.accept_block(&b, b.header.time).unwrap();
            blocks.push(b);
        }
        // A fork off height 10 and a block whose parent is not stored.
        let mut fork_chain = Chain::new(params.clone());
        for b in &blocks[..10] {
            fork_chain.accept_block(b, b.header.time).unwrap();
        }
        let fork = block_with(&fork_chain, &[], wallet(2, &params).public_key(), b"fork");
        fork_chain.accept_block(&fork, fork.header.time).unwrap();
        let fork2 = block_with(&fork_chain, &[], key, b"fork2");
        let mut orphan = blocks[20].clone();
        orphan.header.prev = BlockHash::from_bytes([7; 32]);
        // Worst order for the old retain loop: children before parents.
        let mut stored: Vec<Block> = blocks.iter().rev().cloned().collect();
        stored.push(fork2.clone());
        stored.push(fork.clone());
        stored.push(orphan.clone());
        let (ordered, unlinked) = parents_first(chain.genesis_hash(), stored);
        assert_eq!(ordered.len(), 32);
        assert_eq!(unlinked, vec![orphan]);
        let pos = |h: BlockHash| ordered.iter().position(|b| b.hash() == h).unwrap();
        for b in &ordered {
            if b.header.prev != chain.genesis_hash() {
                assert!(
                    pos(b.header.prev) < pos(b.hash()),
                    "a child before its parent"
                );
            }
        }
        // Replaying that order rebuilds the same chain.
        let mut replay = Chain::new(params);
        for b in &ordered {
            replay.accept_block(b, u64::MAX / 4).unwrap();
        }
        assert_eq!(replay.tip().hash, chain.tip().hash);
        assert_eq!(replay.utxo(), chain.utxo());
    }
}
