//! The bounded cache of block bodies (and the undo data of active ones) the chain keeps in
//! memory. Everything else is in the host's store and is asked for when needed (see
//! [`super::Chain::provide`]).

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::encode::Encode;
use crate::primitives::{Block, BlockHash};
use crate::utxo::BlockUndo;

/// Default byte budget of the body cache: the newest bodies, enough for the reorgs a node
/// sees every day without reading its store.
pub const DEFAULT_BODY_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Heap bytes one cached entry is charged beyond its encodings (map and queue slots).
const ENTRY_OVERHEAD: usize = 128;

#[derive(Clone, Debug)]
struct Entry {
    block: Block,
    undo: Option<BlockUndo>,
    bytes: usize,
}

/// Bodies by hash, oldest insertion evicted first, within a byte budget counted on their
/// encodings. Entries in `pinned` (the block a pending switch waits for) are never evicted.
#[derive(Clone, Debug)]
pub(crate) struct BodyCache {
    entries: BTreeMap<BlockHash, Entry>,
    order: VecDeque<BlockHash>,
    bytes: usize,
    budget: usize,
    /// The most `bytes` has been since the last reset (what tests bound).
    peak: usize,
    pub(crate) pinned: BTreeSet<BlockHash>,
}

fn undo_bytes(undo: &Option<BlockUndo>) -> usize {
    undo.as_ref().map_or(0, |u| u.spent.len() * 96)
}

impl BodyCache {
    pub(crate) fn new(budget: usize) -> Self {
        BodyCache {
            entries: BTreeMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            budget,
            peak: 0,
            pinned: BTreeSet::new(),
        }
    }

    pub(crate) fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    pub(crate) fn reset_peak(&mut self) {
        self.peak = self.bytes;
    }

    fn grew(&mut self) {
        self.peak = self.peak.max(self.bytes);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn block(&self, hash: &BlockHash) -> Option<&Block> {
        self.entries.get(hash).map(|e| &e.block)
    }

    pub(crate) fn undo(&self, hash: &BlockHash) -> Option<&BlockUndo> {
        self.entries.get(hash).and_then(|e| e.undo.as_ref())
    }

    pub(crate) fn contains(&self, hash: &BlockHash) -> bool {
        self.entries.contains_key(hash)
    }

    /// Adds (or refreshes) a body; `undo` replaces the entry's undo data when given.
    pub(crate) fn insert(&mut self, hash: BlockHash, block: Block, undo: Option<BlockUndo>) {
        if let Some(e) = self.entries.get_mut(&hash) {
            if undo.is_some() {
                self.bytes -= undo_bytes(&e.undo);
                self.bytes += undo_bytes(&undo);
                e.bytes = e.bytes - undo_bytes(&e.undo) + undo_bytes(&undo);
                e.undo = undo;
                self.grew();
            }
            return;
        }
        let bytes = block.encoded_len() + undo_bytes(&undo) + ENTRY_OVERHEAD;
        self.bytes += bytes;
        self.entries.insert(hash, Entry { block, undo, bytes });
        self.order.push_back(hash);
        self.grew();
    }

    /// Sets or clears the undo data of a cached body (no-op when the body is not cached).
    pub(crate) fn set_undo(&mut self, hash: &BlockHash, undo: Option<BlockUndo>) {
        if let Some(e) = self.entries.get_mut(hash) {
            let (old, new) = (undo_bytes(&e.undo), undo_bytes(&undo));
            self.bytes = self.bytes - old + new;
            e.bytes = e.bytes - old + new;
            e.undo = undo;
            self.grew();
        }
    }

    pub(crate) fn remove(&mut self, hash: &BlockHash) {
        if let Some(e) = self.entries.remove(hash) {
            self.bytes -= e.bytes;
            // The stale queue slot is skipped when it reaches the front.
        }
    }

    /// Evicts the oldest unpinned entries until the budget holds (pinned ones may keep it
    /// above budget until they are released).
    pub(crate) fn trim(&mut self) {
        let mut skipped = 0usize;
        while self.bytes > self.budget && skipped < self.order.len() {
            let Some(hash) = self.order.pop_front() else {
                break;
            };
            if !self.entries.contains_key(&hash) {
                continue;
            }
            if self.pinned.contains(&hash) {
                self.order.push_back(hash);
                skipped += 1;
                continue;
            }
            self.remove(&hash);
        }
        // Drop queue slots of removed entries so the queue stays as long as the map.
        if self.order.len() > 2 * self.entries.len() + 16 {
            let entries = &self.entries;
            self.order.retain(|h| entries.contains_key(h));
        }
    }
}
