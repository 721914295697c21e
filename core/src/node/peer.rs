//! What the node keeps about one connection.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use crate::hash::Hash256;
use crate::primitives::{BlockHash, BlockHeader, Txid};
use crate::sig::PublicKey;
use crate::units::{Height, Work};
use crate::wire::{Hello, MAX_INV};

/// Hashes remembered per peer as already known to it.
const KNOWN_PER_PEER: usize = 4_096;

/// Announced transactions remembered per peer while they wait for a request slot.
const TX_WAITING_PER_PEER: usize = MAX_INV;

/// A bounded set that forgets its oldest entries.
#[derive(Clone, Debug, Default)]
pub(super) struct RecentSet<T = Hash256> {
    set: BTreeSet<T>,
    order: VecDeque<T>,
    cap: usize,
}

impl<T: Ord + Copy + Default> RecentSet<T> {
    pub(super) fn new(cap: usize) -> Self {
        RecentSet {
            cap,
            ..Default::default()
        }
    }

    pub(super) fn insert(&mut self, h: T) -> bool {
        if !self.set.insert(h) {
            return false;
        }
        self.order.push_back(h);
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    pub(super) fn contains(&self, h: &T) -> bool {
        self.set.contains(h)
    }
}

/// Transactions a peer announced that we have not asked it for yet, oldest first, bounded.
#[derive(Clone, Debug, Default)]
pub(super) struct TxWaiting {
    pub(super) order: VecDeque<Txid>,
    pub(super) set: BTreeSet<Txid>,
}

impl TxWaiting {
    pub(super) fn push(&mut self, txid: Txid) {
        if !self.set.insert(txid) {
            return;
        }
        self.order.push_back(txid);
        while self.set.len() > TX_WAITING_PER_PEER {
            match self.order.pop_front() {
                Some(old) => {
                    self.set.remove(&old);
                }
                None => break,
            }
        }
        // Entries removed out of order leave stale slots behind; compact now and then.
        if self.order.len() > 2 * TX_WAITING_PER_PEER {
            let set = &self.set;
            self.order.retain(|t| set.contains(t));
        }
    }

    pub(super) fn contains(&self, txid: &Txid) -> bool {
        self.set.contains(txid)
    }

    pub(super) fn remove(&mut self, txid: &Txid) {
        self.set.remove(txid);
    }
}

/// What we know of one connection.
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) outbound: bool,
    pub(super) remote: String,
    pub(super) connected_ms: u64,
    pub(super) challenge: [u8; 32],
    pub(super) hello: Option<Hello>,
    /// The protocol version both sides speak (the smaller of the two), once its `hello` came.
    pub(super) version: u32,
    /// Feature bits both sides set.
    pub(super) features: u64,
    /// Messages of unknown types it sent (ignored, `docs/PROTOCOL.md` §3).
    pub(super) unknown_messages: u32,
    pub(super) authed: bool,
    pub(super) established: bool,
    pub(super) score: u32,
    /// When `score` was last brought up to date with decay (see `Peer::decay_score`).
    pub(super) score_ms: u64,
    pub(super) last_recv_ms: u64,
    pub(super) ping: Option<(u64, u64)>,
    /// Block and transaction hashes this peer has or was sent.
    pub(super) known: RecentSet,
    pub(super) blocks_in_flight: BTreeMap<BlockHash, u64>,
    /// The largest block it delivered lately, decaying (`Node::note_block_size`); starts at
    /// the largest a block may be, so its sync window grows only once it has delivered small
    /// blocks.
    pub(super) recent_block_bytes: usize,
    /// Block and transaction requests to this peer that timed out, by when. While remembered
    /// they are not asked of this peer again, and they are welcome if they still arrive.
    pub(super) timed_out: BTreeMap<Hash256, u64>,
    /// Ticks with timed-out block requests since this peer last delivered a block. A peer
    /// with stalls is asked for one block at a time, and only when no other peer can serve.
    pub(super) stalls: u32,
    pub(super) txs_in_flight: BTreeMap<Txid, u64>,
    /// Transactions it announced that wait for a request slot (or for another peer's
    /// request to fail).
    pub(super) tx_waiting: TxWaiting,
    /// Headers received that do not yet show more work than ours.
    pub(super) pending_headers: Vec<BlockHeader>,
    pub(super) pending_work: Work,
    /// The work we believe its chain has: its `hello` claim until a headers answer or a
    /// timeout shows otherwise, then what its headers demonstrated.
    pub(super) best_work: Work,
    pub(super) best_height: Height,
    /// `getnodes` sent and not answered yet, and when the last was sent.
    pub(super) nodes_asked: u32,
    pub(super) nodes_asked_ms: u64,
    pub(super) last_getnodes_from_peer_ms: Option<u64>,
    /// When the outstanding `getheaders` to this peer was sent.
    pub(super) getheaders_sent: Option<u64>,
    /// When the last `getheaders` to this peer was sent.
    pub(super) last_getheaders_ms: Option<u64>,
    /// A `getheaders` is due as soon as the rate limit allows.
    pub(super) getheaders_deferred: bool,
    /// Non-connecting `headers` messages since the last one that connected.
    pub(super) unconnecting: u32,
    /// An extra outbound connection made to look around, not counted in the target.
    pub(super) feeler: bool,
    /// The most-work header this peer showed us; it has every block up to it.
    pub(super) best_header: Option<BlockHash>,
    /// Blocks it answered "not found" for.
    pub(super) lacks: RecentSet<BlockHash>,
    /// It sent `sendblocks`: new blocks go to it as `block` messages (push.rs).
    pub(super) push_to: bool,
    /// We sent it `sendblocks`: a block it sends unasked that extends our tip is taken.
    pub(super) pushes_to_us: bool,
}

impl Peer {
    /// A connection that has just opened.
    pub(super) fn new(
        outbound: bool,
        remote: String,
        now_ms: u64,
        challenge: [u8; 32],
        feeler: bool,
    ) -> Self {
        Peer {
            outbound,
            remote,
            connected_ms: now_ms,
            challenge,
            hello: None,
            version: 0,
            features: 0,
            unknown_messages: 0,
            authed: false,
            established: false,
            score: 0,
            score_ms: now_ms,
            last_recv_ms: now_ms,
            ping: None,
            known: RecentSet::new(KNOWN_PER_PEER),
            blocks_in_flight: BTreeMap::new(),
            recent_block_bytes: crate::wire::MAX_MESSAGE_SIZE,
            timed_out: BTreeMap::new(),
            stalls: 0,
            txs_in_flight: BTreeMap::new(),
            tx_waiting: TxWaiting::default(),
            pending_headers: Vec::new(),
            pending_work: Work::ZERO,
            best_work: Work::ZERO,
            best_height: Height::GENESIS,
            nodes_asked: 0,
            nodes_asked_ms: 0,
            last_getnodes_from_peer_ms: None,
            getheaders_sent: None,
            last_getheaders_ms: None,
            getheaders_deferred: false,
            unconnecting: 0,
            feeler,
            best_header: None,
            lacks: RecentSet::new(1_024),
            push_to: false,
            pushes_to_us: false,
        }
    }

    /// Lets the score fall by one point per [`SCORE_DECAY_MS`](super::SCORE_DECAY_MS)
    /// elapsed up to `now`.
    pub(super) fn decay_score(&mut self, now: u64) {
        let steps = now.saturating_sub(self.score_ms) / super::SCORE_DECAY_MS;
        if self.score == 0 {
            self.score_ms = now;
            return;
        }
        self.score = self
            .score
            .saturating_sub(u32::try_from(steps).unwrap_or(u32::MAX));
        self.score_ms += steps * super::SCORE_DECAY_MS;
    }

    pub(super) fn node_id(&self) -> Option<PublicKey> {
        self.hello.as_ref().map(|h| h.node_id)
    }

    /// The URL both `auth` signatures of this connection cover: the one the dialing side
    /// dialed — ours for an outbound connection, the one its `hello` names for an inbound one
    /// (empty if it named none).
    pub(super) fn dialed_url(&self) -> &str {
        if self.outbound {
            &self.remote
        } else {
            self.hello
                .as_ref()
                .and_then(|h| h.dialed.as_deref())
                .unwrap_or("")
        }
    }
}
