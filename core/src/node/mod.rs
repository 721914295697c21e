//! The sans-IO node: handshake, discovery, gossip, headers-first sync, transaction relay,
//! mining templates and peer conduct. Hosts call [`Node::handle`] with the time and an
//! [`Input`], then drain [`Node::poll_output`] until it returns `None`.
//!
//! Every decision about peers lives here: the relay and the browser host it unchanged and
//! only move bytes. See `docs/PROTOCOL.md` for the messages and limits.
//!
//! This file holds the [`Node`] itself, its limits and the dispatch of inputs and messages;
//! each concern is an `impl Node` block of its own file: `connections` (opening, closing,
//! bans, conduct), `handshake`, `discovery` (over the address manager, `crate::addrman`),
//! `sync` (headers first, then bodies), `blocks`, `txs`, `timers` and `mining`. `types`
//! is the public face, `peer` what is kept per connection.

mod blocks;
pub mod compact;
mod connections;
mod discovery;
mod handshake;
mod mining;
mod offence;
mod peer;
mod prune;
mod push;
mod sync;
mod timers;
mod txs;
mod types;
mod verify;

pub use crate::addrman::{
    MAX_DIAL_BACKOFF_MS, MAX_KNOWN_NODES, MAX_NODES_PER_SOURCE, NODE_EXPIRY_MS,
};
pub use connections::ban_key;
pub use mining::MiningWait;
pub use peer::PEER_STATE_MAX_BYTES;
pub use sync::{MAX_BLOCKS_IN_FLIGHT_SYNC, SYNC_BYTES_IN_FLIGHT};
pub use types::{DisconnectReason, Event, Input, NodeConfig, NodeStats, Output, PeerId, PeerInfo};

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::addrman::AddrMan;
use crate::chain::{Chain, LoadError};
use crate::encode::Encode;
use crate::hash::sha256d_parts;
use crate::mempool::Mempool;
use crate::miner::BlockTemplate;
use crate::params::Params;
use crate::primitives::{Block, BlockHash, Txid};
use crate::sig::{Keypair, PublicKey};
use crate::store::ChangeSet;
use crate::wire::{
    MAX_HEADERS, MAX_MESSAGE_SIZE, Message, NodeKind, NodeRecord, VERSION_IGNORES_UNKNOWN,
    WireError,
};
use offence::Offence;
use peer::{Peer, RecentSet};

/// Handshake must finish within this.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// A ping is sent after this much quiet.
pub const PING_INTERVAL_MS: u64 = 30_000;
/// A peer that does not answer a ping within this is dropped.
pub const PING_TIMEOUT_MS: u64 = 20_000;
/// A requested block that does not arrive within this is asked of someone else.
pub const BLOCK_REQUEST_TIMEOUT_MS: u64 = 20_000;
/// Score added to a peer for each tick at which some of its block requests timed out.
pub const STALL_PENALTY: u8 = 10;
/// Requests that timed out are remembered this long per peer: the block is not asked of
/// that peer again meanwhile, and if it still arrives it is accepted without penalty.
pub const TIMED_OUT_MEMORY_MS: u64 = 2 * 60 * 1000;
/// A `getheaders` not answered within this is given up: the peer is penalised a little, its
/// claimed work is no longer believed, and sync asks someone else.
pub const GETHEADERS_TIMEOUT_MS: u64 = 30_000;
/// Score added when a `getheaders` times out.
pub const GETHEADERS_TIMEOUT_PENALTY: u8 = 10;
/// `getheaders` prompted by announcements, orphans, resync or sync start go to one peer at
/// most this often (continuations of a full batch are sent at once).
pub const GETHEADERS_MIN_INTERVAL_MS: u64 = 2_000;
/// Bans last this long.
pub const BAN_MS: u64 = 60 * 60 * 1000;
/// Misbehaviour score at which a peer is banned.
pub const BAN_SCORE: u32 = 100;
/// A misbehaviour score falls by one point per this much time (100 points an hour), and is
/// kept for the address group after the connection closes until it has fallen to zero.
pub const SCORE_DECAY_MS: u64 = 36_000;
/// Blocks requested from one peer at a time.
pub const MAX_BLOCKS_IN_FLIGHT_PER_PEER: usize = 16;
/// Blocks served for one `getdata` (more are answered with `notfound`).
pub const MAX_BLOCKS_PER_GETDATA: usize = MAX_BLOCKS_IN_FLIGHT_PER_PEER;
/// Bytes of blocks and transactions served for one `getdata` (more are answered with
/// `notfound`).
pub const MAX_GETDATA_REPLY_BYTES: usize = MAX_BLOCKS_PER_GETDATA * MAX_MESSAGE_SIZE;
/// Transactions requested from one peer at a time.
pub const MAX_TXS_IN_FLIGHT_PER_PEER: usize = 100;
/// A requested transaction that does not arrive within this is asked of another announcer.
pub const TX_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// A requested transaction that does not arrive within this is asked of every other
/// announcer at once (the first request stays open until [`TX_REQUEST_TIMEOUT_MS`]).
pub const TX_FALLBACK_MS: u64 = 5_000;
/// Announced transactions waiting for their first request at the next tick.
const MAX_TXS_DUE: usize = 10_000;
/// Transactions remembered as already asked of every announcer.
const TXS_FANNED: usize = 4_096;
/// Headers held per peer before they show more work than ours.
pub const MAX_PENDING_HEADERS: usize = 20 * MAX_HEADERS;
/// Headers held across all peers before they show more work than ours.
pub const MAX_PENDING_HEADERS_TOTAL: usize = 100_000;
/// Orphan blocks kept while their parents are fetched.
pub const MAX_ORPHANS: usize = 32;
/// Rejected transaction ids remembered (not requested again).
const REJECTED_TXS: usize = 4_096;
/// Timed-out requests remembered per peer: more than a peer that never answers can earn in
/// [`TIMED_OUT_MEMORY_MS`] (100 transactions per [`TX_REQUEST_TIMEOUT_MS`], and its blocks).
const TIMED_OUT_PER_PEER: usize = 512;
/// Missing bodies considered per download pass.
const BLOCKS_PER_PASS: usize = 256;
/// Blocks waiting to be loaded from the store to serve a `getdata`, over all peers (more
/// are answered with `notfound`).
pub const MAX_PENDING_SERVES: usize = 256;
/// Encoded block messages kept for serving (the newest blocks are what peers ask for).
const ENCODED_BLOCK_CACHE: usize = 8;
/// Templates are refreshed for pool changes at most this often.
const TEMPLATE_REFRESH_MS: u64 = 5_000;
/// How often known nodes are asked of a peer.
const GETNODES_INTERVAL_MS: u64 = 10 * 60 * 1000;
/// How often while the node knows fewer relays than it wants links to: a newcomer whose
/// first answer came before its relay heard of the others learns them within a minute.
const GETNODES_EAGER_INTERVAL_MS: u64 = 60 * 1000;
/// A `getnodes` we sent counts as unanswered for this long.
const NODES_ANSWER_WINDOW_MS: u64 = 2 * 60 * 1000;
/// A `nodes` message that answers nothing may hold this many records (forwards hold one).
const MAX_UNSOLICITED_NODES: usize = 10;
/// Non-connecting `headers` messages a peer may send before its `getheaders` answer links
/// them up; beyond this each one is penalised.
const MAX_UNCONNECTING_HEADERS: u32 = 8;
/// How often a random peer is asked for headers, in case an announcement was lost.
const RESYNC_INTERVAL_MS: u64 = 60 * 1000;
/// How often one extra known relay is dialed beyond the target ("feeler"), so a node whose
/// slots are all taken by one side of a healed partition still meets the other side.
const FEELER_INTERVAL_MS: u64 = 2 * 60 * 1000;
/// A feeler with nothing to offer is closed after this.
const FEELER_LIFETIME_MS: u64 = 30 * 1000;
/// A dial with no result is forgotten after this.
const DIAL_TIMEOUT_MS: u64 = 30_000;
/// Bans remembered at once (the soonest to expire goes first).
const MAX_BANS: usize = 10_000;

/// A small deterministic generator (not cryptographic): peer choice and ping nonces. Seeded
/// from the identity seed the host filled with real entropy.
#[derive(Clone, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One full node.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    chain: Chain,
    mempool: Mempool,
    keypair: Keypair,
    node_id: PublicKey,
    peers: BTreeMap<PeerId, Peer>,
    /// Known relays (the address manager).
    book: AddrMan,
    /// Our own signed record, if we are a relay with a public URL (see `own_record`).
    own_record: Option<NodeRecord>,
    dialing: BTreeMap<String, u64>,
    /// Bans by [`ban_key`]: until when (ms). Persisted (`ChangeSet::bans`).
    bans: BTreeMap<String, u64>,
    /// Scores of closed connections by [`ban_key`]: (score, when it was last decayed).
    scores: BTreeMap<String, (u32, u64)>,
    orphans: VecDeque<Block>,
    rejected_txs: RecentSet<Txid>,
    /// Which peer each requested transaction is asked of.
    tx_asked: BTreeMap<Txid, PeerId>,
    /// Transactions announced since the last tick that nobody is asked for yet.
    txs_due: BTreeSet<Txid>,
    /// Transactions whose slow first request was followed by requests to every announcer.
    txs_fanned: RecentSet<Txid>,
    templates: VecDeque<BlockTemplate>,
    template_dirty: bool,
    last_template_ms: u64,
    /// The tip whose template the clock held back (see `mining.rs`).
    clock_hold: mining::ClockHold,
    outputs: VecDeque<Output>,
    rng: SplitMix,
    challenges: u64,
    now_ms: u64,
    /// Time of the first input: loaded relays count as heard of no earlier than this.
    started_ms: Option<u64>,
    was_synced: bool,
    last_getnodes_ms: u64,
    last_resync_ms: u64,
    last_feeler_ms: u64,
    /// URLs being dialed as feelers.
    feelers: BTreeSet<String>,
    /// Loads asked of the host and not answered yet.
    loading: BTreeSet<BlockHash>,
    /// Peers waiting for a body being loaded to serve their `getdata` (bounded by
    /// [`MAX_PENDING_SERVES`]).
    serve_waiting: BTreeMap<BlockHash, Vec<PeerId>>,
    /// Recently served block messages, encoded (see `encoded_block`).
    encoded_blocks: VecDeque<(BlockHash, Arc<[u8]>)>,
    /// Compact block relay: blocks being rebuilt, encoded compact blocks.
    compact: compact::CompactState,
    /// Who sent blocks whose signatures the host may still be verifying (`verify`).
    block_sources: BTreeMap<BlockHash, PeerId>,
    pub stats: NodeStats,
}

impl Node {
    /// A node over a stored state (an empty ChangeSet for a new node).
    pub fn new(config: NodeConfig, params: Params, stored: ChangeSet) -> Result<Node, LoadError> {
        let stored_nodes = stored.nodes.clone();
        let stored_meta = stored.node_meta.clone();
        // Stored bans come back (expired ones go at the first input); the soonest to expire
        // are dropped beyond the limit.
        let mut bans: Vec<(String, u64)> = stored
            .bans
            .iter()
            .filter_map(|(k, until)| until.map(|u| (k.clone(), u)))
            .collect();
        bans.sort_by_key(|(_, until)| core::cmp::Reverse(*until));
        bans.truncate(MAX_BANS);
        let mut chain = Chain::load_with_cache(params, stored, config.body_cache_bytes)?;
        chain.set_prune(config.prune_bytes, config.prune_depth);
        chain.set_deferred_verify(config.parallel_verify);
        let keypair = Keypair::from_seed(&config.identity_seed);
        let node_id = keypair.public_key();
        let seed = sha256d_parts(&[b"tabcoin/node-rng", &config.identity_seed]);
        let mut rng_seed = [0u8; 8];
        rng_seed.copy_from_slice(&seed.0[..8]);
        let mut node = Node {
            mempool: Mempool::new(config.mempool_bytes, config.min_fee_rate),
            chain,
            keypair,
            node_id,
            peers: BTreeMap::new(),
            book: AddrMan::load(
                &config.identity_seed,
                config.dial_policy,
                stored_nodes,
                stored_meta,
                &config.bootstrap,
            ),
            own_record: None,
            dialing: BTreeMap::new(),
            bans: bans.into_iter().collect(),
            scores: BTreeMap::new(),
            orphans: VecDeque::new(),
            rejected_txs: RecentSet::new(REJECTED_TXS),
            tx_asked: BTreeMap::new(),
            txs_due: BTreeSet::new(),
            txs_fanned: RecentSet::new(TXS_FANNED),
            templates: VecDeque::new(),
            template_dirty: true,
            last_template_ms: 0,
            clock_hold: mining::ClockHold::default(),
            outputs: VecDeque::new(),
            rng: SplitMix(u64::from_le_bytes(rng_seed)),
            challenges: 0,
            now_ms: 0,
            started_ms: None,
            was_synced: false,
            last_getnodes_ms: 0,
            last_resync_ms: 0,
            last_feeler_ms: 0,
            feelers: BTreeSet::new(),
            loading: BTreeSet::new(),
            serve_waiting: BTreeMap::new(),
            encoded_blocks: VecDeque::new(),
            compact: compact::CompactState::default(),
            block_sources: BTreeMap::new(),
            stats: NodeStats::default(),
            config,
        };
        node.resume_switch();
        Ok(node)
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Established peers: (id, node id, kind, url, outbound, best height).
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers
            .iter()
            .filter(|(_, p)| p.established)
            .filter_map(|(&id, p)| {
                let h = p.hello.as_ref()?;
                Some(PeerInfo {
                    id,
                    node_id: h.node_id,
                    kind: h.kind,
                    url: h.record.as_ref().map(|r| r.url.clone()),
                    remote: p.remote.clone(),
                    outbound: p.outbound,
                    best_height: p.best_height,
                    score: p.score,
                })
            })
            .collect()
    }

    /// Relays this node knows (the discovery table).
    pub fn known_nodes(&self) -> Vec<NodeRecord> {
        self.book.records().cloned().collect()
    }

    /// The address manager (tables, provenance), read-only.
    pub fn address_book(&self) -> &AddrMan {
        &self.book
    }

    /// Whether the node has caught up with every peer it knows of: its best header is its
    /// tip and no established peer is believed to have more work. A peer's `hello` claim is
    /// checked with a `getheaders` sent at once (in parallel with other claimants) and
    /// believed only until it is answered or times out; from then on what its headers showed
    /// counts, and a claim they did not back costs the connection. So peers claiming work
    /// they do not have cannot hold this false for longer than one request timeout.
    pub fn is_synced(&self) -> bool {
        let tip = self.chain.tip();
        let have_peer = self.peers.values().any(|p| p.established);
        if !have_peer && self.config.kind == NodeKind::Browser {
            return false;
        }
        self.chain.best_header().hash == tip.hash
            && self
                .peers
                .values()
                .filter(|p| p.established)
                .all(|p| p.best_work <= tip.work)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Feeds one input at `now_ms` (milliseconds since the epoch).
    pub fn handle(&mut self, now_ms: u64, input: Input) {
        self.now_ms = self.now_ms.max(now_ms);
        if self.started_ms.is_none() {
            self.started_ms = Some(self.now_ms);
        }
        match input {
            Input::Connected {
                peer,
                outbound,
                remote,
            } => self.on_connected(peer, outbound, remote),
            Input::Received { peer, bytes } => self.on_bytes(peer, &bytes),
            Input::Disconnected { peer } => self.on_disconnected(peer),
            Input::DialFailed { url } => self.on_dial_failed(&url),
            Input::Tick => self.on_tick(),
            Input::SubmitTx(tx) => {
                let _ = self.submit_tx(tx);
            }
            Input::MinedBlock(block) => self.on_mined(block),
            Input::MinedHeader(header) => self.on_mined_header(header),
            Input::BlockLoaded { hash, block, undo } => self.on_block_loaded(hash, block, undo),
            Input::SigsVerified { ticket, result } => self.on_sigs_verified(ticket, result),
        }
        self.flush_nodes();
        self.maybe_template();
    }

    fn now_s(&self) -> u64 {
        self.now_ms / 1000
    }

    fn event(&mut self, e: Event) {
        self.outputs.push_back(Output::Event(e));
    }

    fn send(&mut self, peer: PeerId, msg: &Message) {
        let bytes: Arc<[u8]> = Arc::from(msg.encode());
        self.send_bytes(peer, bytes);
    }

    fn send_bytes(&mut self, peer: PeerId, bytes: Arc<[u8]>) {
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        self.outputs.push_back(Output::Send { peer, bytes });
    }

    fn on_bytes(&mut self, peer: PeerId, bytes: &[u8]) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.last_recv_ms = self.now_ms;
        self.stats.messages_received += 1;
        let msg = match Message::from_bytes(bytes) {
            Ok(m) => m,
            // Once both sides speak a version that says so, a message of a type we do not
            // know is ignored and counted: later versions may add messages.
            Err(WireError::UnknownType(_))
                if p.established && p.version >= VERSION_IGNORES_UNKNOWN =>
            {
                p.unknown_messages = p.unknown_messages.saturating_add(1);
                self.stats.unknown_messages += 1;
                return;
            }
            Err(WireError::OldVersion(v)) if p.hello.is_none() => {
                self.drop_peer(peer, DisconnectReason::UnsupportedVersion(v), false);
                return;
            }
            Err(e) => {
                self.offence(peer, Offence::Undecodable(e));
                return;
            }
        };
        let established = self.peers.get(&peer).is_some_and(|p| p.established);
        match msg {
            Message::Hello(h) => self.on_hello(peer, h),
            Message::Auth(sig) => self.on_auth(peer, sig),
            Message::Notice(_) => {}
            _ if !established => self.offence(peer, Offence::MessageBeforeHandshake),
            Message::Ping(n) => self.send(peer, &Message::Pong(n)),
            Message::Pong(n) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    if p.ping.is_some_and(|(nonce, _)| nonce == n) {
                        p.ping = None;
                    }
                }
            }
            Message::GetNodes => self.on_getnodes(peer),
            Message::Nodes(list) => self.on_nodes(peer, list),
            Message::Inv(items) => self.on_inv(peer, items),
            Message::GetData(items) => self.on_getdata(peer, items),
            Message::NotFound(items) => self.on_notfound(peer, items),
            Message::GetHeaders { locator, stop } => self.on_getheaders(peer, &locator, stop),
            Message::Headers(hs) => self.on_headers(peer, hs),
            Message::Block(b) => self.on_block(peer, b),
            Message::SendBlocks => self.on_sendblocks(peer),
            Message::Tx(tx) => self.on_tx(peer, tx),
            Message::CmpctBlock(cb) => self.on_cmpctblock(peer, cb),
            Message::GetBlockTxn { block, indexes } => self.on_getblocktxn(peer, block, indexes),
            Message::BlockTxn { block, txs } => self.on_blocktxn(peer, block, txs),
        }
    }
}
