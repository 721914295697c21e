//! Block push (`docs/PROTOCOL.md` §7.4): a peer that sent `sendblocks` gets each new block
//! that extends what it has as a `block` message at once, instead of a `headers`
//! announcement it would answer with `getdata` — one message instead of three, and no
//! request for the sender to serve. Browsers ask the first few relays they meet.

use crate::chain::Chain;
use crate::primitives::{Block, BlockHash, BlockHeader};
use crate::wire::{Message, NodeKind, SENDBLOCKS_VERSION};

use super::peer::Peer;
use super::{Node, PeerId};

/// Relays a browser asks to push blocks to it (each block comes once from each of them).
pub const MAX_PUSH_SOURCES: usize = 2;

/// Whether `fresh` (the announcement a peer would get) can go as one pushed block: a single
/// block whose parent the peer is known to have, so the block connects on arrival.
pub(super) fn pushable(peer: &Peer, chain: &Chain, fresh: &[BlockHeader]) -> bool {
    let [header] = fresh else {
        return false;
    };
    let parent = header.prev;
    peer.known.contains(parent.as_hash())
        || peer
            .best_header
            .is_some_and(|b| b == parent || chain.is_ancestor(&parent, &b))
}

impl Node {
    /// After a handshake: a browser asks a relay to push new blocks, up to
    /// [`MAX_PUSH_SOURCES`] relays at a time.
    pub(super) fn ask_push(&mut self, peer: PeerId) {
        if self.config.kind != NodeKind::Browser {
            return;
        }
        let asked = self
            .peers
            .values()
            .filter(|p| p.established && p.pushes_to_us)
            .count();
        if asked >= MAX_PUSH_SOURCES {
            return;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(h) = &p.hello else {
            return;
        };
        if h.kind != NodeKind::Relay || h.version < SENDBLOCKS_VERSION {
            return;
        }
        p.pushes_to_us = true;
        self.send(peer, &Message::SendBlocks);
    }

    /// The peer wants new blocks pushed (repeats change nothing).
    pub(super) fn on_sendblocks(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.push_to = true;
        }
    }

    /// Sends block `hash` to `peer` unasked: as a compact block if it speaks them
    /// (`compact/`), else whole (the shared encoding); false if we have no body.
    pub(super) fn push_block(&mut self, peer: PeerId, hash: &BlockHash) -> bool {
        if self.push_compact(peer, hash) {
            return true;
        }
        let Some(bytes) = self.encoded_block(hash) else {
            return false;
        };
        self.stats.blocks_sent += 1;
        self.send_bytes(peer, bytes);
        self.peer_has_block(peer, hash);
        true
    }

    /// A block a peer we asked for pushes sent unasked. It is taken only if it extends our
    /// active tip, the one case a push is for; anything else (a race with a reorg, a block
    /// we already have, a sender ahead of us) is dropped unvalidated, and the sender is asked
    /// for headers so the normal sync takes over. So a pushing peer can make us validate at
    /// most what an announcement could.
    pub(super) fn on_pushed_block(&mut self, peer: PeerId, block: Block) {
        let hash = block.hash();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.known.insert(hash.to_hash());
            p.known.insert(block.header.prev.to_hash());
        }
        // The sender has the parent (and, once we take it, the block): its shown height.
        self.peer_has_block(peer, &block.header.prev);
        if block.header.prev != self.chain.tip().hash {
            if self.chain.has_block(&hash) {
                self.peer_has_block(peer, &hash);
            } else {
                self.request_headers(peer, false);
            }
            return;
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.stalls = 0;
        }
        self.process_block(Some(peer), block);
        self.peer_has_block(peer, &hash);
        self.request_blocks();
    }
}
