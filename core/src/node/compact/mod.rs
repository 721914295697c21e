//! Compact block relay (`docs/PROTOCOL.md` §7.5). A peer that asked for pushes and set
//! [`FEATURE_COMPACT`] gets each new block as a `cmpctblock`: the header, a nonce, a short id
//! per transaction and the coinbase in full. It rebuilds the block from its pool, asks for
//! what it lacks with `getblocktxn`, and falls back to the whole block (`getdata`) when ids
//! collide, the rebuilt block does not match its header, or the answer does not come.
//!
//! Short ids are keyed per block and per sender: the key hashes the header and a nonce the
//! sender draws, so an attacker who wants two transactions to collide must grind for each
//! block and each sender, and a collision one sender's nonce produces is not in another's.

mod partial;

pub use partial::{CompactError, Partial, compact_of, short_id, short_id_key};

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::encode::Encode;
use crate::primitives::{BlockHash, Transaction};
use crate::wire::{CompactBlock, FEATURE_COMPACT, InvItem, Message};

use super::{Node, Offence, PeerId};

/// A `getblocktxn` not answered within this is given up and the whole block is asked for.
pub const BLOCKTXN_TIMEOUT_MS: u64 = 5_000;
/// Blocks remembered per peer as answered in compact form.
const SERVED_PER_PEER: usize = 8;
/// Compact blocks kept encoded for pushing (a new block goes to every pushed-to peer).
const ENCODED_COMPACT_CACHE: usize = 4;
/// Bytes all blocks being rebuilt may hold together, across all peers (their transactions'
/// encoded sizes and their slot tables, [`Partial::held_bytes`]): room for a few full blocks
/// at once. A compact block whose partial would not fit is not rebuilt: the whole block is
/// asked for. Per-connection charges (`PEER_STATE_MAX_BYTES`) need not include partials.
pub const MAX_PARTIAL_BYTES: usize = 8 << 20;
/// Other peers remembered per block being rebuilt as having sent the same compact block:
/// if the rebuild fails, the first of them still connected is asked for the whole block.
const OTHER_SENDERS: usize = 4;

/// A block being rebuilt from one peer's compact block.
#[derive(Debug)]
struct Rebuild {
    partial: Partial,
    /// When its missing transactions were asked for.
    asked_ms: u64,
    /// What it holds ([`Partial::held_bytes`]), counted in [`CompactState::bytes`].
    bytes: usize,
    /// Other peers that sent the same block meanwhile, not rebuilt from (at most
    /// [`OTHER_SENDERS`]).
    others: Vec<PeerId>,
}

/// What the node keeps for compact relay.
#[derive(Debug, Default)]
pub(super) struct CompactState {
    /// The block each peer's compact block is being rebuilt into (one per peer: a new one
    /// replaces it; one per block hash across peers).
    partials: BTreeMap<PeerId, Rebuild>,
    /// The peer whose partial rebuilds each block hash.
    by_hash: BTreeMap<BlockHash, PeerId>,
    /// The sum of the partials' [`Rebuild::bytes`], at most [`MAX_PARTIAL_BYTES`].
    bytes: usize,
    /// Recently pushed compact blocks, encoded once.
    encoded: VecDeque<(BlockHash, Arc<[u8]>)>,
    /// Blocks answered to a `getdata` as compact blocks, per peer: a second `getdata` for
    /// one of them (a fallback) is answered with the whole block.
    served: BTreeMap<PeerId, VecDeque<BlockHash>>,
    /// Blocks fetched whole because a compact block could not be rebuilt.
    pub(super) fallbacks: u64,
    /// Blocks rebuilt from compact blocks.
    pub(super) rebuilt: u64,
}

impl CompactState {
    /// Keeps `r` as `peer`'s rebuild; the caller checked that it fits and that no other
    /// peer rebuilds that block. Returns the rebuild it replaces.
    fn put(&mut self, peer: PeerId, r: Rebuild) -> Option<Rebuild> {
        let old = self.take(peer);
        self.bytes += r.bytes;
        self.by_hash.insert(r.partial.hash(), peer);
        self.partials.insert(peer, r);
        old
    }

    /// Forgets `peer`'s rebuild and returns it.
    fn take(&mut self, peer: PeerId) -> Option<Rebuild> {
        let r = self.partials.remove(&peer)?;
        self.bytes -= r.bytes;
        self.by_hash.remove(&r.partial.hash());
        Some(r)
    }
}

impl Node {
    /// Whether `peer` negotiated compact blocks.
    fn speaks_compact(&self, peer: PeerId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.features & FEATURE_COMPACT != 0)
    }

    /// Answers a `getdata` for our tip block with a compact block, the first time `peer`
    /// asks for it, if it speaks them; false (serve it whole) otherwise. A peer whose
    /// rebuild failed asks again and gets the whole block.
    pub(super) fn serve_compact(&mut self, peer: PeerId, hash: &BlockHash) -> bool {
        if *hash != self.chain.tip().hash || !self.speaks_compact(peer) {
            return false;
        }
        let served = self.compact.served.entry(peer).or_default();
        if served.contains(hash) {
            return false;
        }
        if served.len() >= SERVED_PER_PEER {
            served.pop_front();
        }
        served.push_back(*hash);
        self.push_compact(peer, hash)
    }

    /// Pushes block `hash` to `peer` as a compact block if it speaks them; false otherwise
    /// (or if we lack the body), so the caller pushes the whole block.
    pub(super) fn push_compact(&mut self, peer: PeerId, hash: &BlockHash) -> bool {
        if !self.speaks_compact(peer) {
            return false;
        }
        let cached = self
            .compact
            .encoded
            .iter()
            .find(|(h, _)| h == hash)
            .map(|(_, b)| b.clone());
        let bytes = match cached {
            Some(b) => b,
            None => {
                let nonce = self.rng.next();
                let Some(block) = self.chain.block(hash) else {
                    return false;
                };
                let bytes: Arc<[u8]> =
                    Arc::from(Message::CmpctBlock(compact_of(block, nonce)).encode());
                if self.compact.encoded.len() >= ENCODED_COMPACT_CACHE {
                    self.compact.encoded.pop_front();
                }
                self.compact.encoded.push_back((*hash, bytes.clone()));
                bytes
            }
        };
        self.stats.blocks_sent += 1;
        self.send_bytes(peer, bytes);
        self.peer_has_block(peer, hash);
        true
    }

    /// A compact block, pushed by a peer we asked for pushes or answering our `getdata`;
    /// only from a peer that speaks them. Taken only if it extends our tip; a requested one
    /// that does not is asked for again (and comes whole).
    pub(super) fn on_cmpctblock(&mut self, peer: PeerId, cb: CompactBlock) {
        let hash = cb.header.hash();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let requested = p.blocks_in_flight.remove(&hash).is_some();
        if !(requested || p.pushes_to_us) || p.features & FEATURE_COMPACT == 0 {
            self.offence(peer, Offence::UnsolicitedBlock(hash));
            return;
        }
        if let Err(e) = crate::validation::check_header(&cb.header, self.chain.params()) {
            self.offence(peer, Offence::BadCompactBlock(alloc::format!("{e}")));
            return;
        }
        p.known.insert(hash.to_hash());
        p.known.insert(cb.header.prev.to_hash());
        self.peer_has_block(peer, &cb.header.prev);
        if self.chain.has_block(&hash) {
            self.peer_has_block(peer, &hash);
            return;
        }
        if cb.header.prev != self.chain.tip().hash {
            if requested {
                self.fetch_whole(peer, hash);
            } else if self.chain.entry(&cb.header.prev).is_some() {
                // A push on another branch whose parent we know: its header shows the
                // branch's work at once (if that beats ours, its bodies are fetched), where
                // a `getheaders` would wait for its interval (issue 15: two miners racing).
                self.on_headers(peer, alloc::vec![cb.header]);
            } else {
                self.request_headers(peer, false);
            }
            return;
        }
        if let Some(&first) = self.compact.by_hash.get(&hash) {
            // Already being rebuilt from another peer's compact block: not rebuilt twice
            // (each would hold its own copy of the block); this peer is asked for the whole
            // block if that rebuild fails.
            self.peer_has_block(peer, &hash);
            let r = self
                .compact
                .partials
                .get_mut(&first)
                .expect("by_hash names a peer with a partial");
            if first != peer && r.others.len() < OTHER_SENDERS && !r.others.contains(&peer) {
                r.others.push(peer);
            }
            return;
        }
        let max = self.chain.params().max_block_txs;
        let started = Partial::start(&cb, max, self.mempool.txs());
        match started {
            Err(e) if e.malformed() => {
                self.offence(peer, Offence::BadCompactBlock(alloc::format!("{e}")));
            }
            Err(_) => self.fetch_whole(peer, hash),
            Ok(partial) => {
                let missing = partial.missing();
                if missing.is_empty() {
                    self.finish_compact(peer, partial, Vec::new());
                } else {
                    let bytes = partial.held_bytes();
                    let replaced = self.compact.partials.get(&peer).map_or(0, |r| r.bytes);
                    if self.compact.bytes - replaced + bytes > MAX_PARTIAL_BYTES {
                        // Rebuilds in progress hold the budget: the whole block instead.
                        self.fetch_whole(peer, hash);
                        return;
                    }
                    let rebuild = Rebuild {
                        partial,
                        asked_ms: self.now_ms,
                        bytes,
                        others: Vec::new(),
                    };
                    if let Some(old) = self.compact.put(peer, rebuild) {
                        // The other senders of the block it replaces are asked for it whole.
                        self.fall_back(None, old.partial.hash(), &old.others);
                    }
                    self.send(
                        peer,
                        &Message::GetBlockTxn {
                            block: hash,
                            indexes: missing,
                        },
                    );
                }
            }
        }
    }

    /// Serves the transactions of a recent block we hold in memory; `notfound` otherwise.
    pub(super) fn on_getblocktxn(&mut self, peer: PeerId, block: BlockHash, indexes: Vec<u32>) {
        if indexes.windows(2).any(|w| w[0] >= w[1]) {
            self.offence(peer, Offence::BadGetBlockTxn(block));
            return;
        }
        let Some(b) = self.chain.block(&block) else {
            self.send(peer, &Message::NotFound(alloc::vec![InvItem::block(block)]));
            return;
        };
        if indexes.last().is_some_and(|&i| i as usize >= b.txs.len()) {
            self.offence(peer, Offence::BadGetBlockTxn(block));
            return;
        }
        let txs = indexes.iter().map(|&i| b.txs[i as usize].clone()).collect();
        self.send(peer, &Message::BlockTxn { block, txs });
    }

    /// The transactions a `getblocktxn` of ours asked for.
    pub(super) fn on_blocktxn(&mut self, peer: PeerId, block: BlockHash, txs: Vec<Transaction>) {
        let pending = self
            .compact
            .partials
            .get(&peer)
            .is_some_and(|r| r.partial.hash() == block);
        if !pending {
            self.offence(peer, Offence::WrongBlockTxn(block));
            return;
        }
        let Rebuild {
            mut partial,
            others,
            ..
        } = self.compact.take(peer).expect("checked just above");
        match partial.fill(txs) {
            Ok(()) => self.finish_compact(peer, partial, others),
            Err(_) => {
                self.offence(peer, Offence::WrongBlockTxn(block));
                self.fall_back(Some(peer), block, &others);
            }
        }
    }

    fn finish_compact(&mut self, peer: PeerId, partial: Partial, others: Vec<PeerId>) {
        let hash = partial.hash();
        match partial.finish() {
            Ok(block) => {
                self.compact.rebuilt += 1;
                self.stats.blocks_received += 1;
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.stalls = 0;
                }
                self.process_block(Some(peer), block);
                self.peer_has_block(peer, &hash);
                self.request_blocks();
            }
            Err(_) => self.fall_back(Some(peer), hash, &others),
        }
    }

    /// A failed or abandoned rebuild of `hash`: the whole block is asked for from the first
    /// of `others` (peers that sent the same compact block) still connected, else from
    /// `peer` (the one it was rebuilt from), if given.
    fn fall_back(&mut self, peer: Option<PeerId>, hash: BlockHash, others: &[PeerId]) {
        let to = others
            .iter()
            .copied()
            .chain(peer)
            .find(|o| self.peers.contains_key(o));
        if let Some(to) = to {
            self.fetch_whole(to, hash);
        }
    }

    /// Asks `peer` for the whole block: the normal request, with its timeout and penalty.
    fn fetch_whole(&mut self, peer: PeerId, hash: BlockHash) {
        if self.chain.has_block(&hash) {
            return;
        }
        self.compact.fallbacks += 1;
        let now = self.now_ms;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.blocks_in_flight.insert(hash, now);
        self.send(peer, &Message::GetData(alloc::vec![InvItem::block(hash)]));
    }

    /// At each tick: unanswered `getblocktxn` fall back to the whole block; partials of
    /// blocks we have are dropped, those of closed connections fall back to the other
    /// senders.
    pub(super) fn compact_tick(&mut self) {
        let now = self.now_ms;
        let peers = &self.peers;
        self.compact.served.retain(|p, _| peers.contains_key(p));
        let ended: Vec<PeerId> = self
            .compact
            .partials
            .iter()
            .filter(|(peer, r)| {
                !self.peers.contains_key(peer)
                    || self.chain.has_block(&r.partial.hash())
                    || now >= r.asked_ms + BLOCKTXN_TIMEOUT_MS
            })
            .map(|(&peer, _)| peer)
            .collect();
        for peer in ended {
            let r = self.compact.take(peer).expect("listed just above");
            // `fetch_whole` skips blocks we have and closed connections.
            self.fall_back(Some(peer), r.partial.hash(), &r.others);
        }
    }

    /// Blocks being rebuilt from compact blocks and the bytes they hold together (at most
    /// [`MAX_PARTIAL_BYTES`]).
    pub fn compact_partials(&self) -> (usize, usize) {
        (self.compact.partials.len(), self.compact.bytes)
    }

    /// Blocks rebuilt from compact blocks, and compact blocks that fell back to the whole
    /// block.
    pub fn compact_counts(&self) -> (u64, u64) {
        (self.compact.rebuilt, self.compact.fallbacks)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::node::NodeConfig;
    use crate::node::peer::Peer;
    use crate::params::Params;
    use crate::primitives::Block;
    use crate::testkit::{block_with, funded_chain, payments, wallet};
    use crate::wire::{NodeKind, ShortId};

    const PEERS: u64 = 50;
    const POOLED: usize = 30;

    /// A relay on a funded chain with `POOLED` payments in its pool, one more payment that
    /// is not, and `PEERS` peers (ids 1..=PEERS) that speak compact blocks and push to it.
    fn relay() -> (Node, Vec<Transaction>) {
        let params = Params::test();
        let payer = wallet(1, &params);
        let (chain, stored) = funded_chain(&params, &[payer.public_key()], POOLED + 1);
        let txs = payments(&chain, &[payer], POOLED + 1);
        let config = NodeConfig::new(NodeKind::Relay, [7; 32]);
        let mut node = Node::new(config, params, stored).unwrap();
        node.now_ms = crate::testkit::next_time(&node.chain) * 1000;
        for tx in &txs[..POOLED] {
            node.mempool.add(tx.clone(), &node.chain).unwrap();
        }
        for id in 1..=PEERS {
            let mut p = Peer::new(false, alloc::format!("peer {id}"), 0, [0; 32], false);
            p.established = true;
            p.features = FEATURE_COMPACT;
            p.pushes_to_us = true;
            node.peers.insert(id, p);
        }
        (node, txs)
    }

    /// A block on the tip (valid proof of work) of every payment, the last not pooled.
    fn honest(node: &Node, txs: &[Transaction], extra: &[u8]) -> Block {
        block_with(&node.chain, txs, crate::sig::PublicKey([9; 32]), extra)
    }

    fn asked_whole(node: &Node, peer: PeerId, hash: &BlockHash) -> bool {
        node.peers[&peer].blocks_in_flight.contains_key(hash)
    }

    /// The budget holds the partials of three of the largest blocks a peer may send.
    #[test]
    fn a_full_block_fits_the_budget() {
        for p in [Params::main(), Params::test()] {
            let tables = p.max_block_txs
                * (core::mem::size_of::<Option<Transaction>>()
                    + core::mem::size_of::<Option<ShortId>>());
            let most = tables + p.max_block_size;
            assert!(
                most <= MAX_PARTIAL_BYTES / 2,
                "{tables} + {}",
                p.max_block_size
            );
        }
    }

    /// Issue 12: every peer sending the same real block as a compact block with one
    /// transaction we lack must not make the node hold one copy of the block per peer.
    #[test]
    fn a_block_is_rebuilt_once_however_many_peers_send_it() {
        let (mut node, txs) = relay();
        let block = honest(&node, &txs, b"honest");
        let hash = block.hash();
        for peer in 1..=PEERS {
            node.on_cmpctblock(peer, compact_of(&block, peer));
        }
        let (count, bytes) = node.compact_partials();
        assert_eq!(count, 1, "one rebuild for the block, not one per peer");
        assert!(bytes > 0 && bytes <= MAX_PARTIAL_BYTES, "{bytes}");
        assert!((2..=PEERS).all(|p| !asked_whole(&node, p, &hash)));
        // The first sender answers: the block is rebuilt and nothing is held.
        node.on_blocktxn(1, hash, alloc::vec![txs[POOLED].clone()]);
        assert_eq!(node.chain.tip().hash, hash);
        assert_eq!(node.compact_partials(), (0, 0));
        assert_eq!(node.compact_counts(), (1, 0));
    }

    /// If the first sender never answers, the whole block is asked of another sender.
    #[test]
    fn a_failed_rebuild_asks_another_sender_for_the_whole_block() {
        let (mut node, txs) = relay();
        let block = honest(&node, &txs, b"honest");
        let hash = block.hash();
        node.on_cmpctblock(1, compact_of(&block, 1));
        node.on_cmpctblock(2, compact_of(&block, 2));
        node.now_ms += BLOCKTXN_TIMEOUT_MS;
        node.compact_tick();
        assert_eq!(node.compact_partials(), (0, 0));
        assert!(asked_whole(&node, 2, &hash));
        assert!(!asked_whole(&node, 1, &hash));
    }

    /// Issue 12: peers each sending another valid-work header with many transactions we
    /// lack fill at most the global budget; the rest are asked for whole.
    #[test]
    fn blocks_being_rebuilt_stay_within_the_byte_budget() {
        let (mut node, txs) = relay();
        let mut whole = 0;
        for peer in 1..=PEERS {
            let block = honest(&node, &txs[..POOLED], &peer.to_le_bytes());
            let mut cb = compact_of(&block, peer);
            // Thousands of transactions nobody has: ids the rebuild has to wait for.
            cb.short_ids.extend((0..5_000u32).map(|i| {
                let mut id = [0u8; 6];
                id[..4].copy_from_slice(&i.to_le_bytes());
                id[4..].copy_from_slice(&(peer as u16).to_le_bytes());
                ShortId(id)
            }));
            node.on_cmpctblock(peer, cb);
            let (_, bytes) = node.compact_partials();
            assert!(bytes <= MAX_PARTIAL_BYTES, "{bytes} bytes held");
            whole += usize::from(asked_whole(&node, peer, &block.hash()));
        }
        let (count, bytes) = node.compact_partials();
        assert!(count >= 1, "rebuilds start while the budget allows");
        assert!(whole >= 1, "the rest are asked for whole");
        assert_eq!(count + whole, PEERS as usize);
        assert!(bytes <= MAX_PARTIAL_BYTES, "{bytes}");
        // An honest block still goes through: asked for whole while the budget is taken
        // (it fits again once the rebuilds time out).
        let block = honest(&node, &txs, b"honest");
        node.on_cmpctblock(1, compact_of(&block, 1));
        assert!(node.compact_partials().1 <= MAX_PARTIAL_BYTES);
        node.now_ms += BLOCKTXN_TIMEOUT_MS;
        node.compact_tick();
        assert_eq!(node.compact_partials(), (0, 0));
        node.on_cmpctblock(2, compact_of(&block, 2));
        assert_eq!(node.compact_partials().0, 1);
        node.on_blocktxn(2, block.hash(), alloc::vec![txs[POOLED].clone()]);
        assert_eq!(node.chain.tip().hash, block.hash());
    }
}
