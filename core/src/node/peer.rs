//! What the node keeps about one connection.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use crate::hash::Hash256;
use crate::primitives::{BlockHash, BlockHeader, Txid};
use crate::sig::PublicKey;
use crate::units::{Height, Work};
use crate::wire::Hello;

/// Hashes remembered per peer as already known to it: at least the last half of this many,
/// at most all of them (two generations, [`ShortSet`]).
const KNOWN_PER_PEER: usize = 4_096;

/// Blocks remembered per peer as answered "not found".
const LACKS_PER_PEER: usize = 1_024;

/// Announced transactions remembered per peer while they wait for a request slot.
pub(super) const TX_WAITING_PER_PEER: usize = 512;

/// Heap bytes of one entry of a per-peer `BTreeMap` keyed by a 32-byte hash, at worst: a
/// B-tree node holds up to 11 entries of 40 bytes plus about 100 bytes of links and may be
/// only half full; internal nodes add a fraction of that.
const MAP_ENTRY_MAX_BYTES: usize = 128;

/// Fixed heap of one peer beyond its sets: the remote address, the `hello` (a few short
/// strings), pending `headers` in hand (bounded across all peers, not per peer:
/// `MAX_PENDING_HEADERS_TOTAL`) aside.
const PEER_FIXED_BYTES: usize = 4 * 1024;

/// The most heap one peer's state can hold in the node, in bytes, whatever it sends: its
/// known hashes (two [`ShortSet`] generations), the blocks it lacks, the transactions it
/// announced that wait for a request ([`TX_WAITING_PER_PEER`] txids, kept twice: in order
/// and sorted), and its requests in flight and timed out (B-tree entries). Headers it sent
/// that do not show more work yet are bounded across all peers instead
/// (`MAX_PENDING_HEADERS_TOTAL`), as are blocks being rebuilt from its compact blocks
/// (`compact::MAX_PARTIAL_BYTES`). A host that serves many peers charges this per connection
/// (the relay's `--max-memory`); `core/tests/peer_memory.rs` measures it.
pub const PEER_STATE_MAX_BYTES: usize = ShortSet::max_bytes(KNOWN_PER_PEER)
    + ShortSet::max_bytes(LACKS_PER_PEER)
    + 2 * TX_WAITING_PER_PEER * 32
    + (2 * super::MAX_TXS_IN_FLIGHT_PER_PEER
        + super::TIMED_OUT_PER_PEER
        + super::sync::MAX_BLOCKS_IN_FLIGHT_SYNC)
        * MAP_ENTRY_MAX_BYTES
    + PEER_FIXED_BYTES;

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

/// The 64-bit short id of a hash: its four 64-bit words folded together, so hashes with
/// leading zero bytes (block hashes) still differ. Per-peer sets keep short ids rather than
/// hashes: a collision only means one inventory item is not announced to one peer, and
/// making a hash collide with a given one costs about 2^64 work.
fn short_id(h: &[u8; 32]) -> u64 {
    let mut id = 0u64;
    for (i, w) in h.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        id ^= u64::from_le_bytes(b).rotate_left(i as u32 * 16);
    }
    // 0 marks an empty slot.
    id.max(1)
}

/// The 32 bytes of a hash of any kind, for [`ShortSet`].
pub(super) trait HashBytes {
    fn hash_bytes(&self) -> &[u8; 32];
}

impl HashBytes for Hash256 {
    fn hash_bytes(&self) -> &[u8; 32] {
        self.as_bytes()
    }
}

impl HashBytes for BlockHash {
    fn hash_bytes(&self) -> &[u8; 32] {
        self.as_bytes()
    }
}

/// One generation of short ids: an open-addressing table (linear probing, at most half
/// full), with no allocation per entry, growing by doubling up to its cap.
#[derive(Clone, Debug, Default)]
struct Table {
    slots: Vec<u64>,
    len: usize,
}

impl Table {
    /// Slots a table of `cap` entries grows to at most.
    const fn max_slots(cap: usize) -> usize {
        (2 * cap).next_power_of_two()
    }

    /// The slot to start probing at; `salt` (secret, per set) keeps a peer from choosing
    /// ids that pile up in one run of slots.
    fn start(&self, id: u64, salt: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        ((id ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    fn contains(&self, id: u64, salt: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.start(id, salt);
        loop {
            match self.slots[i] {
                0 => return false,
                s if s == id => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Inserts an id known to be absent, growing first if it would be over half full.
    fn insert_new(&mut self, id: u64, salt: u64, cap: usize) {
        if 2 * (self.len + 1) > self.slots.len() {
            let size = (2 * (self.len + 1))
                .next_power_of_two()
                .clamp(16, Self::max_slots(cap));
            let old = core::mem::replace(&mut self.slots, alloc::vec![0; size]);
            self.len = 0;
            for s in old.into_iter().filter(|&s| s != 0) {
                self.put(s, salt);
            }
        }
        self.put(id, salt);
    }

    fn put(&mut self, id: u64, salt: u64) {
        let mask = self.slots.len() - 1;
        let mut i = self.start(id, salt);
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = id;
        self.len += 1;
    }

    fn clear(&mut self) {
        self.slots.fill(0);
        self.len = 0;
    }
}

/// A bounded set of recent hashes kept as short ids in two generations: the newest holds up
/// to half the cap; when full it becomes the old one and the old one is emptied. So the set
/// remembers at least the last `cap / 2` hashes inserted and at most `cap`, in at most
/// [`ShortSet::max_bytes`] of heap.
#[derive(Clone, Debug)]
pub(super) struct ShortSet {
    new: Table,
    old: Table,
    cap: usize,
    salt: u64,
}

impl ShortSet {
    pub(super) fn new(cap: usize, salt: u64) -> Self {
        ShortSet {
            new: Table::default(),
            old: Table::default(),
            cap,
            salt,
        }
    }

    /// Heap bytes a set of cap `cap` holds at most.
    pub(super) const fn max_bytes(cap: usize) -> usize {
        2 * Table::max_slots(cap / 2) * core::mem::size_of::<u64>()
    }

    pub(super) fn insert(&mut self, h: impl HashBytes) -> bool {
        let id = short_id(h.hash_bytes());
        if self.contains_id(id) {
            return false;
        }
        let gen_cap = (self.cap / 2).max(1);
        if self.new.len >= gen_cap {
            core::mem::swap(&mut self.new, &mut self.old);
            self.new.clear();
        }
        self.new.insert_new(id, self.salt, gen_cap);
        true
    }

    pub(super) fn contains(&self, h: &impl HashBytes) -> bool {
        self.contains_id(short_id(h.hash_bytes()))
    }

    fn contains_id(&self, id: u64) -> bool {
        self.new.contains(id, self.salt) || self.old.contains(id, self.salt)
    }
}

/// Transactions a peer announced that we have not asked it for yet, oldest first, at most
/// [`TX_WAITING_PER_PEER`] (the oldest is forgotten first). Kept in order and sorted (for
/// lookups), with no stale entries.
#[derive(Clone, Debug, Default)]
pub(super) struct TxWaiting {
    order: VecDeque<Txid>,
    sorted: Vec<Txid>,
}

impl TxWaiting {
    pub(super) fn push(&mut self, txid: Txid) {
        let Err(at) = self.sorted.binary_search(&txid) else {
            return;
        };
        if self.order.len() >= TX_WAITING_PER_PEER {
            if let Some(old) = self.order.pop_front() {
                if let Ok(i) = self.sorted.binary_search(&old) {
                    self.sorted.remove(i);
                }
            }
            self.sorted
                .insert(self.sorted.binary_search(&txid).unwrap_or_else(|i| i), txid);
        } else {
            if self.order.is_empty() {
                self.order.reserve_exact(TX_WAITING_PER_PEER);
                self.sorted.reserve_exact(TX_WAITING_PER_PEER);
            }
            self.sorted.insert(at, txid);
        }
        self.order.push_back(txid);
    }

    pub(super) fn contains(&self, txid: &Txid) -> bool {
        self.sorted.binary_search(txid).is_ok()
    }

    pub(super) fn remove(&mut self, txid: &Txid) {
        if let Ok(i) = self.sorted.binary_search(txid) {
            self.sorted.remove(i);
            if let Some(j) = self.order.iter().position(|t| t == txid) {
                self.order.remove(j);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Txid> {
        self.order.iter()
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
    pub(super) known: ShortSet,
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
    pub(super) lacks: ShortSet,
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
            known: ShortSet::new(KNOWN_PER_PEER, 0),
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
            lacks: ShortSet::new(LACKS_PER_PEER, 0),
            push_to: false,
            pushes_to_us: false,
        }
    }

    /// Keys where its sets place ids with a secret of ours, so the peer cannot choose
    /// announcements that pile up in one run of slots (call before anything is inserted).
    pub(super) fn set_salt(&mut self, salt: u64) {
        self.known = ShortSet::new(KNOWN_PER_PEER, salt);
        self.lacks = ShortSet::new(LACKS_PER_PEER, salt.rotate_left(32));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u32) -> Hash256 {
        // Like a block hash: leading zero bytes, the rest varies.
        let mut b = [0u8; 32];
        b[24..28].copy_from_slice(&i.to_le_bytes());
        b[28..].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
        Hash256(b)
    }

    #[test]
    fn a_short_set_remembers_at_least_the_last_half_of_its_cap_and_no_more_than_it() {
        let mut s = ShortSet::new(64, 7);
        for i in 0..1_000 {
            assert!(s.insert(h(i)), "{i} was new");
            assert!(!s.insert(h(i)), "{i} is known");
        }
        assert!((1_000 - 32..1_000).all(|i| s.contains(&h(i))));
        assert!((0..1_000 - 64).all(|i| !s.contains(&h(i))));
        assert!(s.new.slots.len() <= Table::max_slots(32));
        assert!(s.old.slots.len() <= Table::max_slots(32));
        assert_eq!(ShortSet::max_bytes(64), 2 * 64 * 8);
    }

    #[test]
    fn short_ids_use_every_word_of_the_hash() {
        let mut a = [0u8; 32];
        a[31] = 1;
        let mut b = [0u8; 32];
        b[0] = 1;
        assert_ne!(short_id(&a), short_id(&b));
        assert_ne!(short_id(&a), short_id(&[0; 32]));
        assert_ne!(short_id(&[0; 32]), 0, "0 marks an empty slot");
    }

    #[test]
    fn tx_waiting_keeps_the_newest_in_order_within_its_cap() {
        let t = |i: u32| Txid::from_bytes(*h(i).as_bytes());
        let mut w = TxWaiting::default();
        for i in 0..(TX_WAITING_PER_PEER as u32 + 10) {
            w.push(t(i));
            w.push(t(i));
        }
        assert_eq!(w.iter().count(), TX_WAITING_PER_PEER);
        assert!(!w.contains(&t(9)) && w.contains(&t(10)));
        assert_eq!(w.iter().next(), Some(&t(10)));
        w.remove(&t(11));
        assert!(!w.contains(&t(11)));
        assert_eq!(w.iter().count(), TX_WAITING_PER_PEER - 1);
        assert!(w.order.capacity() <= TX_WAITING_PER_PEER);
        assert!(w.sorted.capacity() <= TX_WAITING_PER_PEER);
    }
}
