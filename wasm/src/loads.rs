//! Answers the node's `Output::LoadBlock` from IndexedDB: a body and its undo data, looked
//! up first in the write queue (what the node persisted but the database has not yet
//! committed; the newest write of a key wins), then read in a readonly transaction, which
//! IndexedDB orders after every readwrite transaction already created. The answer goes back
//! as `Input::BlockLoaded`, so the core code is the same as the relay's synchronous redb
//! reads.

use std::cell::RefCell;
use std::rc::Rc;

use tabcoin_core::encode::Decode;
use tabcoin_core::node::Input;
use tabcoin_core::primitives::{Block, BlockHash};
use tabcoin_core::utxo::BlockUndo;
use wasm_bindgen_futures::spawn_local;

use crate::Inner;

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
        let key = hash.to_hex();
        let block = match block {
            Some(b) => Some(b),
            None => match store.get("blocks", &key).await {
                Ok(Some(bytes)) => Block::decode(&bytes).ok(),
                _ => None,
            },
        };
        let undo = match undo {
            Some(u) => u,
            None => match store.get("undo", &key).await {
                Ok(Some(bytes)) => BlockUndo::decode(&bytes).ok(),
                _ => None,
            },
        };
        crate::feed(&inner, Input::BlockLoaded { hash, block, undo });
    });
}
