//! Block relay (`docs/PROTOCOL.md` §7): receiving and validating blocks, orphans,
//! announcing new tips by header, and serving `getdata`.

use alloc::collections::BTreeSet;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::chain::{BlockOutcome, ChainError};
use crate::encode::Encode;
use crate::primitives::{Block, BlockHash, BlockHeader, Transaction, Txid};
use crate::wire::{InvId, InvItem, MAX_HEADERS, Message, block_message};

use super::{
    ENCODED_BLOCK_CACHE, Event, MAX_BLOCKS_PER_GETDATA, MAX_GETDATA_REPLY_BYTES, MAX_ORPHANS,
    MAX_PENDING_SERVES, Node, Offence, Output, PeerId,
};

impl Node {
    pub(super) fn on_block(&mut self, peer: PeerId, block: Block) {
        let hash = block.hash();
        self.stats.blocks_received += 1;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let requested = p.blocks_in_flight.remove(&hash).is_some();
        // A block whose request timed out is late, not unsolicited.
        let late = !requested && p.timed_out.remove(hash.as_hash()).is_some();
        if !requested && !late && p.pushes_to_us {
            self.on_pushed_block(peer, block);
            return;
        }
        if !requested && !late {
            self.offence(peer, Offence::UnsolicitedBlock(hash));
            return;
        }
        p.stalls = 0;
        p.known.insert(hash.to_hash());
        self.note_block_size(peer, block.encoded_len());
        self.process_block(Some(peer), block);
        self.peer_has_block(peer, &hash);
        self.request_blocks();
    }

    pub(super) fn on_mined(&mut self, block: Block) {
        self.process_block(None, block);
    }

    pub(super) fn process_block(&mut self, from: Option<PeerId>, block: Block) {
        let hash = block.hash();
        if self.chain.has_block(&hash) {
            return;
        }
        let now_s = self.now_s();
        let result = self.chain.accept_block(&block, now_s);
        match result {
            Ok(outcome) if outcome.duplicate => {}
            Ok(outcome) => {
                self.stats.blocks_validated += 1;
                self.note_block_source(hash, from);
                let bad_self = outcome
                    .invalidated
                    .iter()
                    .find(|(h, _)| *h == hash)
                    .cloned();
                self.apply_outcome(outcome);
                self.chain.trim_cache();
                if let Some((_, e)) = bad_self {
                    self.event(Event::BlockRejected {
                        hash,
                        reason: e.to_string(),
                    });
                    if let Some(peer) = from {
                        self.conduct(peer, e.conduct(), alloc::format!("block {hash}: {e}"));
                    }
                }
                self.connect_orphans(hash);
            }
            Err(ChainError::UnknownParent { .. }) => {
                self.add_orphan(block);
                if let Some(peer) = from {
                    self.request_headers(peer, false);
                }
            }
            Err(e) => {
                if matches!(e, ChainError::Block(_)) {
                    self.stats.blocks_validated += 1;
                }
                self.event(Event::BlockRejected {
                    hash,
                    reason: e.to_string(),
                });
                if let Some(peer) = from {
                    self.conduct(peer, e.conduct(), alloc::format!("block {hash}: {e}"));
                }
            }
        }
    }

    /// Goes on with a switch of branches the last run left half done (at start-up).
    pub(super) fn resume_switch(&mut self) {
        let outcome = self.chain.resume();
        self.apply_outcome(outcome);
    }

    fn add_orphan(&mut self, block: Block) {
        if self.orphans.iter().any(|b| b.hash() == block.hash()) {
            return;
        }
        if self.orphans.len() >= MAX_ORPHANS {
            self.orphans.pop_front();
        }
        self.orphans.push_back(block);
    }

    fn connect_orphans(&mut self, parent: BlockHash) {
        let mut parents = alloc::vec![parent];
        while let Some(p) = parents.pop() {
            let (ready, rest): (Vec<Block>, Vec<Block>) =
                self.orphans.drain(..).partition(|b| b.header.prev == p);
            self.orphans = rest.into();
            for b in ready {
                let h = b.hash();
                self.process_block(None, b);
                if self.chain.has_block(&h) {
                    parents.push(h);
                }
            }
        }
    }

    /// Persists, asks the host for bodies the chain needs, updates the pool, announces new
    /// blocks and tells the UI.
    pub(super) fn apply_outcome(&mut self, mut outcome: BlockOutcome) {
        self.request_verify(core::mem::take(&mut outcome.verify));
        let changes = core::mem::take(&mut outcome.changes);
        if !changes.is_empty() {
            self.outputs.push_back(Output::Persist(changes));
        }
        for hash in &outcome.need {
            self.load(*hash);
        }
        for hash in &outcome.missing {
            self.event(Event::BlockRejected {
                hash: *hash,
                reason: "the store lost this block's body or undo data".to_string(),
            });
        }
        if !outcome.tip_changed() {
            return;
        }
        self.mempool.update(&self.chain, &outcome);
        self.template_dirty = true;
        // Transactions a reorg returned to the pool are announced again: the winning side
        // may never have seen them.
        let returned: Vec<Txid> = outcome
            .returned
            .iter()
            .map(Transaction::txid)
            .filter(|t| self.mempool.contains(t))
            .collect();
        for txid in returned {
            self.announce_tx(txid, None);
        }
        let tip = self.chain.tip();
        let (hash, height) = (tip.hash, tip.height);
        self.event(Event::TipChanged {
            hash,
            height,
            disconnected: outcome.disconnected.len(),
        });
        let headers: Vec<BlockHeader> = outcome
            .connected
            .iter()
            .rev()
            .take(MAX_HEADERS)
            .rev()
            .filter_map(|h| self.chain.entry(h).map(|e| e.header))
            .collect();
        self.announce_headers(&headers);
        if self.is_synced() && !self.was_synced {
            self.was_synced = true;
            self.event(Event::Synced { height });
        } else if !self.is_synced() {
            let target = self.chain.best_header().height;
            self.event(Event::SyncProgress { height, target });
        }
    }

    /// Announces new blocks by header to each established peer that does not have them. The
    /// list sent is the contiguous suffix after the last header the peer is known to have, so
    /// it is always a chain.
    fn announce_headers(&mut self, headers: &[BlockHeader]) {
        let ids: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.established)
            .map(|(&id, _)| id)
            .collect();
        // Hashed once here, not once per peer: a block announced to 1,000 peers.
        let hashes: Vec<BlockHash> = headers.iter().map(BlockHeader::hash).collect();
        for id in ids {
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            let chain = &self.chain;
            let has = |hash: &BlockHash| {
                p.known.contains(hash.as_hash())
                    || p.best_header.is_some_and(|b| chain.is_ancestor(hash, &b))
            };
            let start = hashes.iter().rposition(has).map_or(0, |i| i + 1);
            let fresh = &headers[start..];
            if fresh.is_empty() {
                continue;
            }
            let push = p.push_to && super::push::pushable(p, chain, fresh);
            for hash in &hashes[start..] {
                p.known.insert(hash.to_hash());
            }
            if push && self.push_block(id, &hashes[start]) {
                continue;
            }
            let msg = Message::Headers(fresh.to_vec());
            self.send(id, &msg);
        }
    }

    /// The peer has the block `hash` (it sent it to us, or we sent it on its request): its
    /// chain reaches at least that height. `best_height` is what hosts show (the peers
    /// table), never a decision; it grows as the chain does instead of staying at the
    /// handshake's claim.
    pub(super) fn peer_has_block(&mut self, peer: PeerId, hash: &BlockHash) {
        let Some(height) = self.chain.entry(hash).map(|e| e.height) else {
            return;
        };
        if let Some(p) = self.peers.get_mut(&peer) {
            p.best_height = p.best_height.max(height);
        }
    }

    /// Asks the host for a stored body (once while it is outstanding).
    fn load(&mut self, hash: BlockHash) {
        if self.loading.insert(hash) {
            self.outputs.push_back(Output::LoadBlock(hash));
        }
    }

    /// The host read a body the chain or a `getdata` waited for.
    pub(super) fn on_block_loaded(
        &mut self,
        hash: BlockHash,
        block: Option<Block>,
        undo: Option<crate::utxo::BlockUndo>,
    ) {
        if !self.loading.remove(&hash) {
            return;
        }
        let block = block.filter(|b| b.hash() == hash);
        if let Some(peers) = self.serve_waiting.remove(&hash) {
            for peer in peers {
                if !self.peers.contains_key(&peer) {
                    continue;
                }
                match &block {
                    Some(b) => {
                        // Several peers may wait for the same body: one encoding for all.
                        let bytes = self.encode_cached(hash, b);
                        self.stats.blocks_sent += 1;
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.known.insert(hash.to_hash());
                        }
                        self.send_bytes(peer, bytes);
                    }
                    None => self.send(peer, &Message::NotFound(alloc::vec![InvItem::block(hash)])),
                }
            }
        }
        if self.chain.wants(&hash) {
            let outcome = self.chain.provide(hash, block, undo);
            self.apply_outcome(outcome);
            self.request_blocks();
        }
        self.chain.trim_cache();
    }

    /// The cached `block` message for `hash`, if it was encoded lately.
    fn cached_encoding(&self, hash: &BlockHash) -> Option<Arc<[u8]>> {
        self.encoded_blocks
            .iter()
            .find(|(h, _)| h == hash)
            .map(|(_, bytes)| bytes.clone())
    }

    /// The `block` message for `block` (whose hash is `hash`): from the cache, or encoded
    /// once and cached.
    fn encode_cached(&mut self, hash: BlockHash, block: &Block) -> Arc<[u8]> {
        if let Some(bytes) = self.cached_encoding(&hash) {
            return bytes;
        }
        let bytes: Arc<[u8]> = Arc::from(block_message(block));
        self.remember_encoding(hash, bytes.clone());
        bytes
    }

    fn remember_encoding(&mut self, hash: BlockHash, bytes: Arc<[u8]>) {
        if self.encoded_blocks.len() >= ENCODED_BLOCK_CACHE {
            self.encoded_blocks.pop_front();
        }
        self.encoded_blocks.push_back((hash, bytes));
    }

    /// The `block` message for `hash`, encoded once and shared: a new block is asked for by
    /// every peer it was announced to, so fan-out to N peers encodes it once, not N times.
    pub(super) fn encoded_block(&mut self, hash: &BlockHash) -> Option<Arc<[u8]>> {
        if let Some(bytes) = self.cached_encoding(hash) {
            return Some(bytes);
        }
        // The chain's copy is borrowed while it is encoded, so it is not cloned first.
        let bytes: Arc<[u8]> = Arc::from(block_message(self.chain.block(hash)?));
        self.remember_encoding(*hash, bytes.clone());
        Some(bytes)
    }

    /// Serves blocks and transactions. Repeated items are served once; at most
    /// [`MAX_BLOCKS_PER_GETDATA`] blocks and [`MAX_GETDATA_REPLY_BYTES`] bytes go out per
    /// request, and what is left over is answered with `notfound` like what we lack.
    pub(super) fn on_getdata(&mut self, peer: PeerId, items: Vec<InvItem>) {
        let mut seen: BTreeSet<InvItem> = BTreeSet::new();
        let mut missing = Vec::new();
        let mut blocks = 0usize;
        let mut bytes_out = 0usize;
        for item in items {
            if !seen.insert(item) {
                continue;
            }
            let bytes = match item.id() {
                // Our new tip goes in compact form to a peer that speaks it (compact/).
                InvId::Block(hash)
                    if blocks < MAX_BLOCKS_PER_GETDATA && self.serve_compact(peer, &hash) =>
                {
                    blocks += 1;
                    continue;
                }
                InvId::Block(hash) if blocks < MAX_BLOCKS_PER_GETDATA => {
                    let bytes = self.encoded_block(&hash);
                    if bytes.is_none() && self.defer_serve(peer, hash) {
                        blocks += 1;
                        continue;
                    }
                    bytes
                }
                InvId::Block(_) => None,
                InvId::Tx(txid) => self
                    .mempool
                    .get(&txid)
                    .map(|e| Arc::from(Message::Tx(e.tx.clone()).encode())),
            };
            let Some(bytes) = bytes else {
                missing.push(item);
                continue;
            };
            if bytes_out + bytes.len() > MAX_GETDATA_REPLY_BYTES {
                missing.push(item);
                continue;
            }
            bytes_out += bytes.len();
            if let InvId::Block(hash) = item.id() {
                blocks += 1;
                self.stats.blocks_sent += 1;
                self.peer_has_block(peer, &hash);
            }
            if let Some(p) = self.peers.get_mut(&peer) {
                p.known.insert(item.hash);
            }
            self.send_bytes(peer, bytes);
        }
        if !missing.is_empty() {
            self.send(peer, &Message::NotFound(missing));
        }
    }

    /// Queues serving a stored body that is not in memory: the host reads it and
    /// [`Node::on_block_loaded`] sends it. False when it is not stored or the queue is full.
    fn defer_serve(&mut self, peer: PeerId, hash: BlockHash) -> bool {
        // A body deleted by pruning is answered `notfound` at once, without a store read.
        if !self.chain.has_block(&hash) || self.chain.body_pruned(&hash) {
            return false;
        }
        let queued: usize = self.serve_waiting.values().map(Vec::len).sum();
        if queued >= MAX_PENDING_SERVES {
            return false;
        }
        let waiting = self.serve_waiting.entry(hash).or_default();
        if !waiting.contains(&peer) {
            waiting.push(peer);
        }
        self.load(hash);
        true
    }

    pub(super) fn on_notfound(&mut self, peer: PeerId, items: Vec<InvItem>) {
        let mut failed_txs = Vec::new();
        if let Some(p) = self.peers.get_mut(&peer) {
            for i in items {
                match i.id() {
                    InvId::Block(hash) => {
                        if p.blocks_in_flight.remove(&hash).is_some() {
                            p.lacks.insert(hash);
                        }
                    }
                    InvId::Tx(txid) => {
                        if p.txs_in_flight.remove(&txid).is_some() {
                            failed_txs.push(txid);
                        }
                    }
                }
            }
        }
        for txid in failed_txs {
            if self.tx_asked.get(&txid) == Some(&peer) {
                self.tx_asked.remove(&txid);
            }
            self.tx_fallback(txid);
        }
        self.fill_tx_requests(peer);
        self.request_blocks();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

    use alloc::collections::BTreeSet;

    use crate::params::Params;
    use crate::sim::Sim;
    use crate::store::ChangeSet;
    use crate::testkit::long_chain;
    use crate::units::Height;
    use crate::wire::NodeKind;

    /// Bodies a node serves from its store to several peers at once are encoded once: each
    /// hash is in the encoded-block cache at most once (it held one copy per waiting peer,
    /// pushing other blocks out).
    #[test]
    fn a_stored_body_several_peers_wait_for_is_encoded_once() {
        let mut sim = Sim::new(Params::test());
        sim.jitter_ms = 0;
        // Reads answered later, as a tab's IndexedDB answers them: both peers' requests for
        // a body come in while its read is outstanding.
        sim.load_delay_ms = 200;
        let stored = long_chain(&sim.params, 40);
        let mut c = Sim::config(NodeKind::Relay, 1, &[]);
        c.body_cache_bytes = 0;
        let server = sim.add_node(c, stored);
        let a = sim.add_node(
            Sim::config(NodeKind::Relay, 2, &[server]),
            ChangeSet::default(),
        );
        let b = sim.add_node(
            Sim::config(NodeKind::Relay, 3, &[server]),
            ChangeSet::default(),
        );
        assert!(sim.run_until_for(5 * 60_000, |s| {
            s.node(a).chain().height() == Height(40) && s.node(b).chain().height() == Height(40)
        }));
        let cached = &sim.node(server).encoded_blocks;
        let hashes: BTreeSet<_> = cached.iter().map(|(h, _)| *h).collect();
        assert!(cached.len() > 1, "the server encoded what it served");
        assert_eq!(hashes.len(), cached.len(), "one cache entry per block");
    }
}
