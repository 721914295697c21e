//! Answers the node's `Output::LoadBlock` from IndexedDB: a body and its undo data, looked
//! up first in the write queue (what the node persisted but the database has not yet
//! committed; the newest write of a key wins), then read in a readonly transaction, which
//! IndexedDB orders after every readwrite transaction already created. The answer goes back
//! as `Input::BlockLoaded`, so the core code is the same as the relay's synchronous redb
//! reads. The explorer's transaction lookup ([`find_tx`]) reads the same way.

use std::cell::RefCell;
use std::rc::Rc;

use tabcoin_core::node::Input;
use tabcoin_core::primitives::{Block, BlockHash, Txid};
use tabcoin_core::utxo::BlockUndo;
use wasm_bindgen_futures::spawn_local;

use crate::Inner;
use crate::idb::IdbStore;

/// What `writes` (newest first) say about `hash`: the body if one holds it, and the undo
/// data the newest write sets (`Some(None)` = deleted there).
pub(crate) fn newest_first<'a>(
    writes: impl Iterator<Item = &'a tabcoin_core::store::ChangeSet>,
    hash: &BlockHash,
) -> (Option<Block>, Option<Option<BlockUndo>>) {
    let mut block = None;
    let mut undo = None;
    for cs in writes {
        if block.is_none() {
            block = cs.blocks.iter().find(|b| b.hash() == *hash).cloned();
        }
        if undo.is_none() {
            undo = cs.undo.get(hash).cloned();
        }
        if block.is_some() && undo.is_some() {
            break;
        }
    }
    (block, undo)
}

/// Reads `hash` and feeds the answer to the node. A record that does not decode, or a
/// failed read, is answered as missing (the chain then downloads the body again or gives up
/// the switch that needed it).
pub(crate) fn answer(inner: &Rc<RefCell<Inner>>, hash: BlockHash) {
    let (block, undo, store) = {
        let i = inner.borrow();
        let (block, undo) = i.writer.unstored_block(&hash);
        (block, undo, i.store.clone())
    };
    let inner = inner.clone();
    spawn_local(async move {
        // One readonly transaction for both (a body's record may carry its undo data).
        let (stored_block, stored_undo) = if block.is_none() || undo.is_none() {
            store.load_block(&hash).await.unwrap_or((None, None))
        } else {
            (None, None)
        };
        let block = block.or(stored_block);
        let undo = undo.unwrap_or(stored_undo);
        crate::feed(&inner, Input::BlockLoaded { hash, block, undo });
    });
}

/// Body `hash` as the store will hold it: the write queue first, then IndexedDB. None when
/// neither has it (pruned, never stored) or the record does not decode.
async fn read_block(
    inner: &Rc<RefCell<Inner>>,
    store: &IdbStore,
    hash: BlockHash,
) -> Option<Block> {
    let queued = inner.borrow().writer.unstored_block(&hash).0;
    if queued.is_some() {
        return queued;
    }
    store.load_block(&hash).await.ok().and_then(|(b, _)| b)
}

/// The active-chain block holding transaction `txid` and its position there: looked up in
/// the write queue (not yet committed), then in the store's transaction index. None when no
/// active block this node keeps holds it.
pub(crate) async fn find_tx(inner: &Rc<RefCell<Inner>>, txid: Txid) -> Option<(Block, usize)> {
    let (queued, store) = {
        let i = inner.borrow();
        let chain = i.node.chain();
        let queued = i.writer.find_unstored(|b| {
            chain.is_active(&b.hash()) && b.txs.iter().any(|t| t.txid() == txid)
        });
        (queued, i.store.clone())
    };
    let in_block = |b: Block| {
        let pos = b.txs.iter().position(|t| t.txid() == txid)?;
        Some((b, pos))
    };
    if let Some(b) = queued {
        return in_block(b);
    }
    for (hash, pos) in store.tx_locations(&txid).await.unwrap_or_default() {
        // The chain may have moved while the store answered: check each candidate now.
        if !inner.borrow().node.chain().is_active(&hash) {
            continue;
        }
        let Some(b) = read_block(inner, &store, hash).await else {
            continue;
        };
        if b.txs.get(pos as usize).is_some_and(|t| t.txid() == txid) {
            return Some((b, pos as usize));
        }
    }
    // The genesis block is made from the parameters, not stored.
    let genesis = {
        let i = inner.borrow();
        let chain = i.node.chain();
        chain.block(&chain.genesis_hash()).cloned()
    };
    genesis.and_then(in_block)
}
