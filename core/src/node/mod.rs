//! The sans-IO node: handshake, discovery, gossip, headers-first sync, transaction relay,
//! mining templates and peer conduct. Hosts call [`Node::handle`] with the time and an
//! [`Input`], then drain [`Node::poll_output`] until it returns `None`.
//!
//! Every decision about peers lives here: the relay and the browser host it unchanged and
//! only move bytes. See `docs/PROTOCOL.md` for the messages and limits.

mod addrbook;
mod connections;
mod discovery;
mod handshake;
mod peer;
mod types;

pub use addrbook::{MAX_DIAL_BACKOFF_MS, MAX_KNOWN_NODES, MAX_NODES_PER_SOURCE, NODE_EXPIRY_MS};
pub use types::{DisconnectReason, Event, Input, NodeConfig, NodeStats, Output, PeerId, PeerInfo};

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::chain::{BlockOutcome, Chain, ChainError, LoadError};
use crate::encode::Encode;
use crate::hash::{Hash256, sha256d_parts};
use crate::mempool::{Mempool, MempoolError};
use crate::miner::{BlockTemplate, build_template};
use crate::params::Params;
use crate::primitives::{Block, BlockHash, BlockHeader, Transaction, Txid};
use crate::sig::{Keypair, PublicKey};
use crate::store::ChangeSet;
use crate::units::{Height, Work};
use crate::validation::{Conduct, TxError, check_header};
use crate::wire::{
    InvItem, InvKind, MAX_HEADERS, MAX_INV, MAX_LOCATOR, MAX_MESSAGE_SIZE, Message, NodeKind,
    NodeRecord,
};
use addrbook::AddrBook;
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
/// Headers held per peer before they show more work than ours.
pub const MAX_PENDING_HEADERS: usize = 20 * MAX_HEADERS;
/// Headers held across all peers before they show more work than ours.
pub const MAX_PENDING_HEADERS_TOTAL: usize = 100_000;
/// Orphan blocks kept while their parents are fetched.
pub const MAX_ORPHANS: usize = 32;
/// Rejected transaction ids remembered (not requested again).
const REJECTED_TXS: usize = 4_096;
/// Timed-out requests remembered per peer.
const TIMED_OUT_PER_PEER: usize = 1_024;
/// Missing bodies considered per download pass.
const BLOCKS_PER_PASS: usize = 256;
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

/// Whether a pool refusal says something about the transaction itself (so it is not worth
/// fetching again), rather than about our pool or chain at the moment.
fn intrinsic_rejection(e: &MempoolError) -> bool {
    matches!(
        e,
        MempoolError::Invalid(te)
            if !matches!(te, TxError::MissingInput { .. } | TxError::ImmatureCoinbase { .. })
    )
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
    book: AddrBook,
    dialing: BTreeMap<String, u64>,
    bans: BTreeMap<String, u64>,
    orphans: VecDeque<Block>,
    rejected_txs: RecentSet,
    /// Which peer each requested transaction is asked of.
    tx_asked: BTreeMap<Txid, PeerId>,
    templates: VecDeque<BlockTemplate>,
    template_dirty: bool,
    last_template_ms: u64,
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
    /// Recently served block messages, encoded (see `encoded_block`).
    encoded_blocks: VecDeque<(BlockHash, Arc<[u8]>)>,
    pub stats: NodeStats,
}

impl Node {
    /// A node over a stored state (an empty ChangeSet for a new node).
    pub fn new(config: NodeConfig, params: Params, stored: ChangeSet) -> Result<Node, LoadError> {
        let stored_nodes = stored.nodes.clone();
        let chain = Chain::load(params, stored)?;
        let keypair = Keypair::from_seed(&config.identity_seed);
        let node_id = keypair.public_key();
        let seed = sha256d_parts(&[b"tabcoin/node-rng", &config.identity_seed]);
        let mut rng_seed = [0u8; 8];
        rng_seed.copy_from_slice(&seed.0[..8]);
        let node = Node {
            mempool: Mempool::new(config.mempool_bytes, config.min_fee_rate),
            chain,
            keypair,
            node_id,
            peers: BTreeMap::new(),
            book: AddrBook::load(stored_nodes, &config.bootstrap),
            dialing: BTreeMap::new(),
            bans: BTreeMap::new(),
            orphans: VecDeque::new(),
            rejected_txs: RecentSet::new(REJECTED_TXS),
            tx_asked: BTreeMap::new(),
            templates: VecDeque::new(),
            template_dirty: true,
            last_template_ms: 0,
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
            encoded_blocks: VecDeque::new(),
            stats: NodeStats::default(),
            config,
        };
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
                    url: h.url.clone(),
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

    /// Whether the node has caught up with every peer it knows of: its best header is its
    /// tip and no established peer is believed to have more work. A peer's `hello` claim is
    /// believed only until it answers a `getheaders` (or lets one time out); from then on
    /// what its headers showed counts, so a peer claiming work it does not have cannot hold
    /// this false for longer than one request.
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
        }
        self.flush_nodes();
        self.maybe_template();
    }

    /// Adds a local transaction to the pool and announces it. The same as
    /// `Input::SubmitTx`, with the verdict returned.
    pub fn submit_tx(&mut self, tx: Transaction) -> Result<Txid, MempoolError> {
        let txid = tx.txid();
        match self.mempool.add(tx, &self.chain) {
            Ok(txid) => {
                self.stats.txs_accepted += 1;
                self.template_dirty = true;
                self.event(Event::TxAccepted { txid });
                self.announce_tx(txid, None);
                Ok(txid)
            }
            Err(error) => {
                self.event(Event::TxRejected {
                    txid,
                    error: error.clone(),
                });
                Err(error)
            }
        }
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
            Err(e) => {
                self.drop_peer(peer, DisconnectReason::Protocol(e.to_string()), true);
                return;
            }
        };
        let established = self.peers.get(&peer).is_some_and(|p| p.established);
        match msg {
            Message::Hello(h) => self.on_hello(peer, h),
            Message::Auth(sig) => self.on_auth(peer, sig),
            Message::Notice(_) => {}
            _ if !established => self.drop_peer(
                peer,
                DisconnectReason::Protocol(String::from("message before handshake")),
                true,
            ),
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
            Message::Tx(tx) => self.on_tx(peer, tx),
        }
    }

    /// Answers a `getheaders`: up to [`MAX_HEADERS`] of our best chain after the fork point
    /// of `locator`, ending at `stop` if it comes first.
    fn on_getheaders(&mut self, peer: PeerId, locator: &[BlockHash], stop: BlockHash) {
        let fork = self.chain.find_fork(locator);
        let mut headers = self.chain.headers_after(&fork, MAX_HEADERS);
        if let Some(i) = headers.iter().position(|h| h.hash() == stop) {
            headers.truncate(i + 1);
        }
        self.send(peer, &Message::Headers(headers));
    }

    /// Asks the peer believed to have the most work for headers if anyone has more than we
    /// know (one sync request at a time).
    fn start_sync(&mut self) {
        let best = self.chain.best_header().work;
        if self
            .peers
            .values()
            .any(|p| p.established && p.getheaders_sent.is_some())
        {
            return;
        }
        let Some((&peer, _)) = self
            .peers
            .iter()
            .filter(|(_, p)| p.established && p.best_work > best)
            .max_by(|a, b| a.1.best_work.cmp(&b.1.best_work))
        else {
            self.request_blocks();
            return;
        };
        self.request_headers(peer, false);
    }

    /// Sends `getheaders` to `peer` unless one is outstanding there. A `continuation` (the
    /// answer to our request was a full batch) goes at once; other requests go at most once
    /// per [`GETHEADERS_MIN_INTERVAL_MS`] per peer, later ones wait for a tick.
    fn request_headers(&mut self, peer: PeerId, continuation: bool) {
        let now = self.now_ms;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if !p.established || p.getheaders_sent.is_some() {
            return;
        }
        if !continuation
            && p.last_getheaders_ms
                .is_some_and(|t| now < t + GETHEADERS_MIN_INTERVAL_MS)
        {
            p.getheaders_deferred = true;
            return;
        }
        p.getheaders_deferred = false;
        p.getheaders_sent = Some(now);
        p.last_getheaders_ms = Some(now);
        let mut locator = Vec::with_capacity(MAX_LOCATOR);
        let pending = p.pending_headers.last().map(BlockHeader::hash);
        locator.extend(pending);
        // Locate from the best header so a half-done download resumes where it stopped.
        locator.extend(
            self.chain
                .best_header_locator(MAX_LOCATOR - locator.len())
                .into_iter()
                .filter(|h| Some(*h) != pending),
        );
        self.send(
            peer,
            &Message::GetHeaders {
                locator,
                stop: Hash256::ZERO,
            },
        );
    }

    /// The cumulative work of the best header `peer` has shown us (zero if none).
    fn demonstrated_work(&self, peer: PeerId) -> Work {
        self.peers
            .get(&peer)
            .and_then(|p| p.best_header)
            .and_then(|b| self.chain.entry(&b))
            .map_or(Work::ZERO, |e| e.work)
    }

    fn on_headers(&mut self, peer: PeerId, hs: Vec<BlockHeader>) {
        self.stats.headers_received += hs.len() as u64;
        let full = hs.len() == MAX_HEADERS;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let answer = p.getheaders_sent.is_some();
        if hs.is_empty() {
            // Only an answer can be empty; an empty message nobody asked for is ignored.
            if answer {
                p.getheaders_sent = None;
                self.end_of_answer(peer, Work::ZERO);
            }
            return;
        }
        // Where it attaches: the continuation of this peer's pending headers, or our tree.
        let pending_tip = p.pending_headers.last().map(BlockHeader::hash);
        let continues = Some(hs[0].prev) == pending_tip;
        let base_work = if continues {
            Some(p.pending_work)
        } else {
            self.chain.entry(&hs[0].prev).map(|e| e.work)
        };
        let Some(mut work) = base_work else {
            // Connects to nothing we know: an announcement from a peer on a branch (or far
            // ahead) we have not seen. Ask where it forks. Only a peer that keeps sending
            // such headers without its answers ever linking them up is penalised. (An
            // answer to our locator always connects, so this does not count as one.)
            p.unconnecting = p.unconnecting.saturating_add(1);
            if p.unconnecting > MAX_UNCONNECTING_HEADERS {
                self.conduct(
                    peer,
                    Conduct::Penalise(20),
                    String::from("headers do not connect"),
                );
            }
            self.request_headers(peer, false);
            return;
        };
        p.unconnecting = 0;
        if answer {
            p.getheaders_sent = None;
        }
        if !continues {
            p.pending_headers.clear();
            p.pending_work = Work::ZERO;
        }
        // Check linkage and proof of work before anything is kept.
        let params = self.chain.params().clone();
        let mut prev = hs[0].prev;
        for h in &hs {
            if h.prev != prev {
                self.conduct(
                    peer,
                    Conduct::Disconnect,
                    String::from("headers are not a chain"),
                );
                return;
            }
            if let Err(e) = check_header(h, &params) {
                self.conduct(
                    peer,
                    e.conduct(),
                    alloc::format!("header {}: {e}", h.hash()),
                );
                return;
            }
            let hw = h.bits.to_target().map(|t| t.work()).unwrap_or(Work::ZERO);
            work = work.checked_add(hw).unwrap_or(Work::MAX);
            prev = h.hash();
        }
        let last = hs[hs.len() - 1].hash();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.known.insert(last);
        p.pending_headers.extend(hs);
        p.pending_work = work;
        if p.pending_headers.len() > MAX_PENDING_HEADERS {
            self.conduct(
                peer,
                Conduct::Disconnect,
                String::from("too many low-work headers"),
            );
            return;
        }
        self.limit_pending_headers();
        if !self.peers.contains_key(&peer) {
            return;
        }
        if work > self.chain.best_header().work {
            self.commit_headers(peer);
        } else if self.chain.entry(&last).is_some() {
            // Nothing new to us, but it tells what the peer has.
            if let Some(p) = self.peers.get_mut(&peer) {
                p.pending_headers.clear();
                p.pending_work = Work::ZERO;
            }
            self.note_peer_header(peer, last);
        }
        if !self.peers.contains_key(&peer) {
            return;
        }
        if full {
            // There may be more: continue at once if we asked, else as the rate allows.
            self.request_headers(peer, answer);
        } else if answer {
            self.end_of_answer(peer, work);
        } else {
            // An announcement: whatever did not beat our chain is dropped.
            if let Some(p) = self.peers.get_mut(&peer) {
                p.pending_headers.clear();
                p.pending_work = Work::ZERO;
            }
            self.request_blocks();
            self.start_sync_if_idle();
        }
    }

    /// The peer answered our `getheaders` and has no more: drop what did not beat our chain,
    /// believe from now on only the work its headers showed, and penalise a claim its
    /// headers did not back (`delivered` = cumulative work of the last batch, kept or not).
    fn end_of_answer(&mut self, peer: PeerId, delivered: Work) {
        let ours = self.chain.best_header().work;
        let demonstrated = self.demonstrated_work(peer);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let claimed = p.best_work;
        p.pending_headers.clear();
        p.pending_work = Work::ZERO;
        p.best_work = demonstrated;
        if claimed > demonstrated.max(delivered) && claimed > ours {
            self.conduct(
                peer,
                Conduct::Penalise(50),
                String::from("claimed more work than its headers show"),
            );
        }
        self.request_blocks();
        self.start_sync_if_idle();
    }

    fn start_sync_if_idle(&mut self) {
        if !self.peers.values().any(|p| p.getheaders_sent.is_some()) {
            self.start_sync();
        }
    }

    /// Keeps the headers pending across all peers within [`MAX_PENDING_HEADERS_TOTAL`] by
    /// closing the newest connections holding some.
    fn limit_pending_headers(&mut self) {
        loop {
            let total: usize = self.peers.values().map(|p| p.pending_headers.len()).sum();
            if total <= MAX_PENDING_HEADERS_TOTAL {
                return;
            }
            let newest = self
                .peers
                .iter()
                .filter(|(_, p)| !p.pending_headers.is_empty())
                .max_by_key(|(id, p)| (p.connected_ms, **id))
                .map(|(&id, _)| id);
            let Some(id) = newest else {
                return;
            };
            self.drop_peer(
                id,
                DisconnectReason::Evicted(String::from("too many pending headers")),
                false,
            );
        }
    }

    /// Moves a peer's pending headers into the block tree (full contextual checks).
    fn commit_headers(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let headers = core::mem::take(&mut p.pending_headers);
        p.pending_work = Work::ZERO;
        let now_s = self.now_s();
        let mut accepted = None;
        for h in headers {
            match self.chain.accept_header(&h, now_s) {
                Ok(_) => accepted = Some(h.hash()),
                Err(e) => {
                    let conduct = e.conduct();
                    let reason = alloc::format!("header {}: {e}", h.hash());
                    if conduct == Conduct::Ignore {
                        break;
                    }
                    self.conduct(peer, conduct, reason);
                    return;
                }
            }
        }
        if let Some(last) = accepted {
            self.note_peer_header(peer, last);
        }
        let best = self.chain.best_header();
        let (height, target) = (self.chain.height(), best.height);
        self.event(Event::SyncProgress { height, target });
        self.request_blocks();
    }

    /// Records that `peer` has the block `hash` (in our tree) and all its ancestors.
    fn note_peer_header(&mut self, peer: PeerId, hash: BlockHash) {
        let Some(e) = self.chain.entry(&hash) else {
            return;
        };
        let (work, height) = (e.work, e.height);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let better = p
            .best_header
            .and_then(|b| self.chain.entry(&b))
            .is_none_or(|e| e.work < work);
        if better {
            p.best_header = Some(hash);
            p.best_height = p.best_height.max(height);
        }
        if work > p.best_work {
            p.best_work = work;
        }
    }

    /// Requests missing bodies along the best header chain from peers that have them.
    fn request_blocks(&mut self) {
        let missing = self.chain.missing_blocks(BLOCKS_PER_PASS);
        if missing.is_empty() {
            return;
        }
        let in_flight: BTreeSet<BlockHash> = self
            .peers
            .values()
            .flat_map(|p| p.blocks_in_flight.keys().copied())
            .collect();
        struct Candidate {
            id: PeerId,
            /// It has every block of our best-header chain up to this height.
            upto: Height,
            load: usize,
            cap: usize,
            stalling: bool,
        }
        let chain = &self.chain;
        let mut cands: Vec<Candidate> = self
            .peers
            .iter()
            .filter(|(_, p)| p.established)
            .filter_map(|(&id, p)| {
                let upto = chain.best_chain_common_height(&p.best_header?)?;
                let stalling = p.stalls > 0;
                Some(Candidate {
                    id,
                    upto,
                    load: p.blocks_in_flight.len(),
                    // A window is refilled only once half of it is free, so one getdata
                    // carries several blocks: asking for each block as the previous one
                    // arrived sent a message per block, and the relay's per-peer rate limit
                    // disconnected syncing tabs as flooders (browser bench, P7). A busy peer
                    // stays a candidate (it has the block) with no room for now.
                    cap: if stalling {
                        1
                    } else if p.blocks_in_flight.len() > MAX_BLOCKS_IN_FLIGHT_PER_PEER / 2 {
                        p.blocks_in_flight.len()
                    } else {
                        MAX_BLOCKS_IN_FLIGHT_PER_PEER
                    },
                    stalling,
                })
            })
            .collect();
        let mut per_peer: BTreeMap<PeerId, Vec<InvItem>> = BTreeMap::new();
        for hash in missing {
            if in_flight.contains(&hash) {
                continue;
            }
            let Some(height) = chain.entry(&hash).map(|e| e.height) else {
                continue;
            };
            let peers = &self.peers;
            let has = |c: &Candidate| {
                c.upto >= height && peers.get(&c.id).is_some_and(|p| !p.lacks.contains(&hash))
            };
            // A peer that let this block's request time out, or lets requests time out at
            // all, is asked only when no other peer has the block.
            let good = |c: &Candidate| {
                !c.stalling
                    && peers
                        .get(&c.id)
                        .is_some_and(|p| !p.timed_out.contains_key(&hash))
            };
            let any_good = cands.iter().any(|c| has(c) && good(c));
            let choice = cands
                .iter_mut()
                .filter(|c| has(c) && (!any_good || good(c)) && c.load < c.cap)
                .min_by_key(|c| (c.load, c.id));
            let Some(c) = choice else {
                break;
            };
            c.load += 1;
            per_peer.entry(c.id).or_default().push(InvItem {
                kind: InvKind::Block,
                hash,
            });
        }
        let now = self.now_ms;
        for (peer, items) in per_peer {
            if let Some(p) = self.peers.get_mut(&peer) {
                for i in &items {
                    p.blocks_in_flight.insert(i.hash, now);
                }
            }
            self.send(peer, &Message::GetData(items));
        }
    }

    fn on_block(&mut self, peer: PeerId, block: Block) {
        let hash = block.hash();
        self.stats.blocks_received += 1;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let requested = p.blocks_in_flight.remove(&hash).is_some();
        // A block whose request timed out is late, not unsolicited.
        let late = !requested && p.timed_out.remove(&hash).is_some();
        if !requested && !late {
            self.conduct(
                peer,
                Conduct::Penalise(20),
                alloc::format!("unsolicited block {hash}"),
            );
            return;
        }
        p.stalls = 0;
        p.known.insert(hash);
        self.process_block(Some(peer), block);
        self.request_blocks();
    }

    fn on_mined(&mut self, block: Block) {
        self.process_block(None, block);
    }

    fn process_block(&mut self, from: Option<PeerId>, block: Block) {
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
                let bad_self = outcome
                    .invalidated
                    .iter()
                    .find(|(h, _)| *h == hash)
                    .cloned();
                self.apply_outcome(outcome);
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

    /// Persists, updates the pool, announces new blocks and tells the UI.
    fn apply_outcome(&mut self, outcome: BlockOutcome) {
        if !outcome.changes.is_empty() {
            self.outputs
                .push_back(Output::Persist(outcome.changes.clone()));
        }
        if !outcome.tip_changed() {
            return;
        }
        self.mempool.update(&self.chain, &outcome);
        self.template_dirty = true;
        // Transactions a reorg returned to the pool are announced again: the winning side
        // may never have seen them.
        let returned: Vec<Txid> = outcome
            .disconnected
            .iter()
            .flat_map(|b| b.txs.iter().skip(1).map(Transaction::txid))
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
        for id in ids {
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            let chain = &self.chain;
            let has = |h: &BlockHeader| {
                let hash = h.hash();
                p.known.contains(&hash)
                    || p.best_header.is_some_and(|b| chain.is_ancestor(&hash, &b))
            };
            let start = headers.iter().rposition(has).map_or(0, |i| i + 1);
            let fresh = &headers[start..];
            if fresh.is_empty() {
                continue;
            }
            for h in fresh {
                p.known.insert(h.hash());
            }
            let msg = Message::Headers(fresh.to_vec());
            self.send(id, &msg);
        }
    }

    /// The `block` message for `hash`, encoded once and shared: a new block is asked for by
    /// every peer it was announced to, so fan-out to N peers encodes it once, not N times.
    fn encoded_block(&mut self, hash: &BlockHash) -> Option<Arc<[u8]>> {
        if let Some((_, bytes)) = self.encoded_blocks.iter().find(|(h, _)| h == hash) {
            return Some(bytes.clone());
        }
        let bytes: Arc<[u8]> = Arc::from(Message::Block(self.chain.block(hash)?.clone()).encode());
        if self.encoded_blocks.len() >= ENCODED_BLOCK_CACHE {
            self.encoded_blocks.pop_front();
        }
        self.encoded_blocks.push_back((*hash, bytes.clone()));
        Some(bytes)
    }

    /// Serves blocks and transactions. Repeated items are served once; at most
    /// [`MAX_BLOCKS_PER_GETDATA`] blocks and [`MAX_GETDATA_REPLY_BYTES`] bytes go out per
    /// request, and what is left over is answered with `notfound` like what we lack.
    fn on_getdata(&mut self, peer: PeerId, items: Vec<InvItem>) {
        let mut seen: BTreeSet<InvItem> = BTreeSet::new();
        let mut missing = Vec::new();
        let mut blocks = 0usize;
        let mut bytes_out = 0usize;
        for item in items {
            if !seen.insert(item) {
                continue;
            }
            let bytes = match item.kind {
                InvKind::Block if blocks < MAX_BLOCKS_PER_GETDATA => self.encoded_block(&item.hash),
                InvKind::Block => None,
                InvKind::Tx => self
                    .mempool
                    .get(&item.hash)
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
            if item.kind == InvKind::Block {
                blocks += 1;
                self.stats.blocks_sent += 1;
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

    fn on_notfound(&mut self, peer: PeerId, items: Vec<InvItem>) {
        let mut failed_txs = Vec::new();
        if let Some(p) = self.peers.get_mut(&peer) {
            for i in items {
                match i.kind {
                    InvKind::Block => {
                        if p.blocks_in_flight.remove(&i.hash).is_some() {
                            p.lacks.insert(i.hash);
                        }
                    }
                    InvKind::Tx => {
                        if p.txs_in_flight.remove(&i.hash).is_some() {
                            failed_txs.push(i.hash);
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

    /// Whether a transaction is worth fetching from anyone.
    fn tx_unwanted(&self, txid: &Txid) -> bool {
        self.mempool.contains(txid) || self.rejected_txs.contains(txid)
    }

    fn send_tx_requests(&mut self, peer: PeerId, txids: Vec<Txid>) {
        if txids.is_empty() {
            return;
        }
        let now = self.now_ms;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        for t in &txids {
            p.txs_in_flight.insert(*t, now);
            p.tx_waiting.remove(t);
            self.tx_asked.insert(*t, peer);
        }
        let items = txids
            .into_iter()
            .map(|hash| InvItem {
                kind: InvKind::Tx,
                hash,
            })
            .collect();
        self.send(peer, &Message::GetData(items));
    }

    /// A request for `txid` ended without it (timeout, `notfound`, disconnect): ask the next
    /// peer that announced it and has a free request slot.
    fn tx_fallback(&mut self, txid: Txid) {
        if self.tx_unwanted(&txid) || self.tx_asked.contains_key(&txid) {
            return;
        }
        let next = self
            .peers
            .iter()
            .find(|(_, p)| {
                p.established
                    && p.tx_waiting.contains(&txid)
                    && p.txs_in_flight.len() < MAX_TXS_IN_FLIGHT_PER_PEER
                    && !p.timed_out.contains_key(&txid)
            })
            .map(|(&id, _)| id);
        if let Some(id) = next {
            self.send_tx_requests(id, alloc::vec![txid]);
        }
    }

    /// Fills `peer`'s free request slots with transactions it announced that nobody is
    /// being asked for.
    fn fill_tx_requests(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let free = MAX_TXS_IN_FLIGHT_PER_PEER.saturating_sub(p.txs_in_flight.len());
        if free == 0 || p.tx_waiting.set.is_empty() {
            return;
        }
        let mut ask = Vec::new();
        let mut stale = Vec::new();
        for t in &p.tx_waiting.order {
            if ask.len() >= free {
                break;
            }
            if !p.tx_waiting.contains(t) {
                continue;
            }
            if self.tx_unwanted(t) {
                stale.push(*t);
            } else if !self.tx_asked.contains_key(t) && !p.timed_out.contains_key(t) {
                ask.push(*t);
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            for t in &stale {
                p.tx_waiting.remove(t);
            }
        }
        self.send_tx_requests(peer, ask);
    }

    fn on_inv(&mut self, peer: PeerId, items: Vec<InvItem>) {
        let mut ask = Vec::new();
        let mut unknown_block = false;
        for item in items.into_iter().take(MAX_INV) {
            let unwanted = item.kind == InvKind::Tx && self.tx_unwanted(&item.hash);
            let asked = self.tx_asked.contains_key(&item.hash);
            let Some(p) = self.peers.get_mut(&peer) else {
                return;
            };
            p.known.insert(item.hash);
            match item.kind {
                InvKind::Tx => {
                    if unwanted || p.txs_in_flight.contains_key(&item.hash) {
                        continue;
                    }
                    let free = p.txs_in_flight.len() + ask.len() < MAX_TXS_IN_FLIGHT_PER_PEER;
                    if !asked && free && !p.timed_out.contains_key(&item.hash) {
                        if !ask.contains(&item.hash) {
                            ask.push(item.hash);
                        }
                    } else {
                        // Asked of someone else, or no slot free: remember who has it.
                        p.tx_waiting.push(item.hash);
                    }
                }
                InvKind::Block => {
                    if self.chain.entry(&item.hash).is_none() {
                        unknown_block = true;
                    }
                }
            }
        }
        self.send_tx_requests(peer, ask);
        if unknown_block {
            self.request_headers(peer, false);
        }
    }

    fn on_tx(&mut self, peer: PeerId, tx: Transaction) {
        let txid = tx.txid();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let requested = p.txs_in_flight.remove(&txid).is_some();
        let late = !requested && p.timed_out.remove(&txid).is_some();
        if !requested && !late {
            self.conduct(
                peer,
                Conduct::Penalise(10),
                alloc::format!("unsolicited transaction {txid}"),
            );
            return;
        }
        p.known.insert(txid);
        p.tx_waiting.remove(&txid);
        if self.tx_asked.get(&txid) == Some(&peer) {
            self.tx_asked.remove(&txid);
        }
        match self.mempool.add(tx, &self.chain) {
            Ok(_) => {
                self.stats.txs_accepted += 1;
                self.template_dirty = true;
                self.event(Event::TxAccepted { txid });
                self.announce_tx(txid, Some(peer));
            }
            Err(e) => {
                // Only a verdict about the transaction itself is remembered: one refused
                // for a missing parent, a low fee or a full pool may be fine later.
                if intrinsic_rejection(&e) {
                    self.rejected_txs.insert(txid);
                }
                let conduct = e.conduct();
                self.conduct(peer, conduct, alloc::format!("transaction {txid}: {e}"));
            }
        }
        self.fill_tx_requests(peer);
    }

    fn announce_tx(&mut self, txid: Txid, except: Option<PeerId>) {
        let ids: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| p.established && Some(**id) != except && !p.known.contains(&txid))
            .map(|(&id, _)| id)
            .collect();
        let bytes: Arc<[u8]> = Arc::from(
            Message::Inv(alloc::vec![InvItem {
                kind: InvKind::Tx,
                hash: txid,
            }])
            .encode(),
        );
        for id in ids {
            if let Some(p) = self.peers.get_mut(&id) {
                p.known.insert(txid);
            }
            self.send_bytes(id, bytes.clone());
        }
    }

    fn on_tick(&mut self) {
        let now = self.now_ms;
        let mut timeouts = Vec::new();
        let mut pings = Vec::new();
        let mut stalled = Vec::new();
        let mut header_timeouts = Vec::new();
        let mut deferred_headers = Vec::new();
        let mut tx_timeouts: Vec<(PeerId, Txid)> = Vec::new();
        for (&id, p) in &mut self.peers {
            if !p.established {
                if now >= p.connected_ms + HANDSHAKE_TIMEOUT_MS {
                    timeouts.push((id, DisconnectReason::HandshakeTimeout));
                }
                continue;
            }
            if let Some((_, sent)) = p.ping {
                if now >= sent + PING_TIMEOUT_MS {
                    timeouts.push((id, DisconnectReason::PingTimeout));
                    continue;
                }
            } else if now >= p.last_recv_ms + PING_INTERVAL_MS {
                pings.push(id);
            }
            // Requests that timed out are remembered: not asked of this peer again for a
            // while, and not penalised as unsolicited if they still arrive.
            p.timed_out.retain(|_, at| now < *at + TIMED_OUT_MEMORY_MS);
            let late_blocks: Vec<BlockHash> = p
                .blocks_in_flight
                .iter()
                .filter(|(_, at)| now >= **at + BLOCK_REQUEST_TIMEOUT_MS)
                .map(|(h, _)| *h)
                .collect();
            let late_txs: Vec<Txid> = p
                .txs_in_flight
                .iter()
                .filter(|(_, at)| now >= **at + TX_REQUEST_TIMEOUT_MS)
                .map(|(h, _)| *h)
                .collect();
            for h in &late_blocks {
                p.blocks_in_flight.remove(h);
                p.timed_out.insert(*h, now);
            }
            for t in &late_txs {
                p.txs_in_flight.remove(t);
                p.timed_out.insert(*t, now);
                tx_timeouts.push((id, *t));
            }
            while p.timed_out.len() > TIMED_OUT_PER_PEER {
                let oldest = p
                    .timed_out
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(h, _)| *h);
                match oldest {
                    Some(h) => {
                        p.timed_out.remove(&h);
                    }
                    None => break,
                }
            }
            if !late_blocks.is_empty() {
                p.stalls = p.stalls.saturating_add(1);
                stalled.push(id);
            }
            if let Some(sent) = p.getheaders_sent {
                if now >= sent + GETHEADERS_TIMEOUT_MS {
                    header_timeouts.push(id);
                }
            } else if p.getheaders_deferred
                && p.last_getheaders_ms
                    .is_none_or(|t| now >= t + GETHEADERS_MIN_INTERVAL_MS)
            {
                deferred_headers.push(id);
            }
            if p.nodes_asked > 0 && now >= p.nodes_asked_ms + NODES_ANSWER_WINDOW_MS {
                p.nodes_asked = 0;
            }
        }
        // Feelers that have nothing we lack are closed; one with more work stays until we
        // have caught up with it.
        let tip_work = self.chain.tip().work;
        let done_feelers: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.feeler
                    && p.established
                    && now >= p.connected_ms + FEELER_LIFETIME_MS
                    && p.best_work <= tip_work
                    && p.blocks_in_flight.is_empty()
            })
            .map(|(&id, _)| id)
            .collect();
        for id in done_feelers {
            if let Some(p) = self.peers.remove(&id) {
                self.event(Event::PeerDisconnected { peer: id });
                self.outputs.push_back(Output::Disconnect {
                    peer: id,
                    reason: DisconnectReason::FeelerDone,
                });
                self.after_peer_removed(id, p);
            }
        }
        for (id, reason) in timeouts {
            self.drop_peer(id, reason, false);
        }
        for id in pings {
            let nonce = self.rng.next();
            if let Some(p) = self.peers.get_mut(&id) {
                p.ping = Some((nonce, now));
            }
            self.send(id, &Message::Ping(nonce));
        }
        // A peer that does not deliver what it was asked for is penalised each time, so one
        // that never delivers is eventually dropped.
        for &id in &stalled {
            self.conduct(
                id,
                Conduct::Penalise(STALL_PENALTY),
                String::from("block requests timed out"),
            );
        }
        for id in header_timeouts {
            let demonstrated = self.demonstrated_work(id);
            if let Some(p) = self.peers.get_mut(&id) {
                p.getheaders_sent = None;
                p.pending_headers.clear();
                p.pending_work = Work::ZERO;
                p.best_work = demonstrated;
            }
            self.conduct(
                id,
                Conduct::Penalise(GETHEADERS_TIMEOUT_PENALTY),
                String::from("headers request timed out"),
            );
        }
        for id in deferred_headers {
            self.request_headers(id, false);
        }
        let mut refill = BTreeSet::new();
        for (id, txid) in tx_timeouts {
            if self.tx_asked.get(&txid) == Some(&id) {
                self.tx_asked.remove(&txid);
            }
            self.tx_fallback(txid);
            refill.insert(id);
        }
        for id in refill {
            self.fill_tx_requests(id);
        }
        if !stalled.is_empty() {
            self.request_blocks();
        }
        // Forget relays not heard of in a long time (never the ones we are connected to).
        // Relays loaded from the store count as heard of at start at the earliest.
        let start = self.started_ms.unwrap_or(now);
        let connected: BTreeSet<String> = self
            .peers
            .values()
            .flat_map(|p| {
                let mut v = alloc::vec![p.remote.clone()];
                if p.established {
                    v.extend(p.hello.as_ref().and_then(|h| h.url.clone()));
                }
                v
            })
            .collect();
        self.book.expire(now, start, &connected);
        self.bans.retain(|_, until| *until > now);
        // Dials that never answered.
        self.dialing.retain(|_, &mut at| now < at + DIAL_TIMEOUT_MS);
        let interval = if self.book.len() < self.config.target_outbound {
            GETNODES_EAGER_INTERVAL_MS
        } else {
            GETNODES_INTERVAL_MS
        };
        if now >= self.last_getnodes_ms + interval {
            self.last_getnodes_ms = now;
            let ids: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.established && p.nodes_asked == 0)
                .map(|(&id, _)| id)
                .collect();
            if !ids.is_empty() {
                let id = ids[(self.rng.next() % ids.len() as u64) as usize];
                self.ask_nodes(id);
            }
        }
        if now >= self.last_resync_ms + RESYNC_INTERVAL_MS {
            self.last_resync_ms = now;
            let ids: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.established && p.getheaders_sent.is_none())
                .map(|(&id, _)| id)
                .collect();
            if !ids.is_empty() {
                let id = ids[(self.rng.next() % ids.len() as u64) as usize];
                self.request_headers(id, false);
            }
        }
        self.dial_more();
        self.start_sync_if_idle();
    }

    /// A worker solved `header` for one of the recent templates: the block is that
    /// template's with this header.
    fn on_mined_header(&mut self, header: BlockHeader) {
        let found = self.templates.iter().find(|t| {
            t.block.header.prev == header.prev && t.block.header.merkle_root == header.merkle_root
        });
        match found {
            Some(t) => {
                let mut block = t.block.clone();
                block.header = header;
                self.on_mined(block);
            }
            None => self.event(Event::BlockRejected {
                hash: header.hash(),
                reason: String::from("no template for the mined header"),
            }),
        }
    }

    fn maybe_template(&mut self) {
        let Some(key) = self.config.mining_key else {
            return;
        };
        if !self.template_dirty || !self.is_synced() {
            return;
        }
        let tip_changed = self
            .templates
            .back()
            .is_none_or(|t| t.block.header.prev != self.chain.tip().hash);
        if !tip_changed && self.now_ms < self.last_template_ms + TEMPLATE_REFRESH_MS {
            return;
        }
        let t = build_template(&self.chain, &self.mempool, key, self.now_s(), b"tabcoin");
        self.template_dirty = false;
        self.last_template_ms = self.now_ms;
        self.templates.push_back(t.clone());
        if self.templates.len() > 4 {
            self.templates.pop_front();
        }
        self.outputs.push_back(Output::Template(t));
    }

    /// Changes the key templates pay (None stops templates).
    pub fn set_mining_key(&mut self, key: Option<PublicKey>) {
        self.config.mining_key = key;
        self.template_dirty = true;
        self.maybe_template();
    }
}
