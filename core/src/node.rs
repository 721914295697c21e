//! The sans-IO node: handshake, discovery, gossip, headers-first sync, transaction relay,
//! mining templates and peer conduct. Hosts call [`Node::handle`] with the time and an
//! [`Input`], then drain [`Node::poll_output`] until it returns `None`.
//!
//! Every decision about peers lives here: the relay and the browser host it unchanged and
//! only move bytes. See `docs/PROTOCOL.md` for the messages and limits.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::chain::{BlockOutcome, Chain, ChainError, LoadError};
use crate::encode::Encode;
use crate::hash::{Hash256, sha256d_parts};
use crate::mempool::{Mempool, MempoolError};
use crate::miner::{BlockTemplate, build_template};
use crate::params::Params;
use crate::primitives::{Block, BlockHash, BlockHeader, Transaction, Txid};
use crate::sig::{self, Keypair, PublicKey};
use crate::store::ChangeSet;
use crate::units::{Height, Work};
use crate::validation::{Conduct, check_header};
use crate::wire::{
    Hello, InvItem, InvKind, MAX_ADDRS, MAX_HEADERS, MAX_INV, MAX_URL, Message, NodeKind,
    NodeRecord, Notice, PROTOCOL_VERSION, auth_message,
};

/// A connection, numbered by the host.
pub type PeerId = u64;

/// Handshake must finish within this.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// A ping is sent after this much quiet.
pub const PING_INTERVAL_MS: u64 = 30_000;
/// A peer that does not answer a ping within this is dropped.
pub const PING_TIMEOUT_MS: u64 = 20_000;
/// A requested block that does not arrive within this is asked of someone else.
pub const BLOCK_REQUEST_TIMEOUT_MS: u64 = 20_000;
/// Bans last this long.
pub const BAN_MS: u64 = 60 * 60 * 1000;
/// Misbehaviour score at which a peer is banned.
pub const BAN_SCORE: u32 = 100;
/// Blocks requested from one peer at a time.
pub const MAX_BLOCKS_IN_FLIGHT_PER_PEER: usize = 16;
/// Headers held per peer before they show more work than ours.
pub const MAX_PENDING_HEADERS: usize = 20 * MAX_HEADERS;
/// Orphan blocks kept while their parents are fetched.
pub const MAX_ORPHANS: usize = 32;
/// Known relays kept.
pub const MAX_KNOWN_NODES: usize = 2_000;
/// Relays one source may introduce.
pub const MAX_NODES_PER_SOURCE: usize = 64;
/// A known relay not heard of for this long is forgotten.
pub const NODE_EXPIRY_MS: u64 = 3 * 60 * 60 * 1000;
/// Hashes remembered per peer as already known to it.
const KNOWN_PER_PEER: usize = 4_096;
/// Rejected transaction ids remembered (not requested again).
const REJECTED_TXS: usize = 4_096;
/// Templates are refreshed for pool changes at most this often.
const TEMPLATE_REFRESH_MS: u64 = 5_000;
/// How often known nodes are asked of a peer.
const GETNODES_INTERVAL_MS: u64 = 10 * 60 * 1000;
/// How often a random peer is asked for headers, in case an announcement was lost.
const RESYNC_INTERVAL_MS: u64 = 60 * 1000;
/// How often one extra known relay is dialed beyond the target ("feeler"), so a node whose
/// slots are all taken by one side of a healed partition still meets the other side.
const FEELER_INTERVAL_MS: u64 = 2 * 60 * 1000;
/// A feeler with nothing to offer is closed after this.
const FEELER_LIFETIME_MS: u64 = 30 * 1000;

/// How a node is configured by its host.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub kind: NodeKind,
    /// The URL others can dial to reach this relay.
    pub public_url: Option<String>,
    /// Seed of the node identity key (filled by the host from its RNG, kept across restarts).
    pub identity_seed: [u8; 32],
    /// Relays to keep outbound connections to.
    pub target_outbound: usize,
    /// Most inbound connections accepted.
    pub max_inbound: usize,
    /// Relays dialed at start.
    pub bootstrap: Vec<String>,
    /// Key paid by templates; `None` = no mining templates.
    pub mining_key: Option<PublicKey>,
    pub mempool_bytes: usize,
    pub min_fee_rate: u64,
    pub agent: String,
}

impl NodeConfig {
    pub fn new(kind: NodeKind, identity_seed: [u8; 32]) -> Self {
        NodeConfig {
            kind,
            public_url: None,
            identity_seed,
            target_outbound: 8,
            max_inbound: 1_000,
            bootstrap: Vec::new(),
            mining_key: None,
            mempool_bytes: crate::mempool::DEFAULT_MAX_BYTES,
            min_fee_rate: crate::mempool::DEFAULT_MIN_FEE_RATE,
            agent: String::from("tabcoin/0.1"),
        }
    }
}

/// What happened, from the host.
#[derive(Clone, Debug)]
pub enum Input {
    /// A connection opened. `remote` is the dialed URL (outbound) or the remote address
    /// (inbound); bans apply to it.
    Connected {
        peer: PeerId,
        outbound: bool,
        remote: String,
    },
    /// One message arrived.
    Received {
        peer: PeerId,
        bytes: Vec<u8>,
    },
    Disconnected {
        peer: PeerId,
    },
    /// A dial the node asked for failed.
    DialFailed {
        url: String,
    },
    /// Time passed (hosts tick about once a second).
    Tick,
    /// A transaction from the local wallet.
    SubmitTx(Transaction),
    /// A block from a local miner.
    MinedBlock(Block),
    /// A header a worker solved for one of the recent templates.
    MinedHeader(BlockHeader),
}

/// What the host must do.
#[derive(Clone, Debug)]
pub enum Output {
    /// Send these bytes as one message (shared, so fan-out does not copy).
    Send {
        peer: PeerId,
        bytes: Arc<[u8]>,
    },
    Disconnect {
        peer: PeerId,
        reason: DisconnectReason,
    },
    Dial {
        url: String,
    },
    /// Write atomically.
    Persist(ChangeSet),
    Event(Event),
    /// Mine this (replaces any earlier template).
    Template(BlockTemplate),
}

/// Why the node closes a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    Banned,
    SelfConnection,
    DuplicateConnection,
    WrongNetwork,
    UnsupportedVersion(u32),
    BadAuth,
    HandshakeTimeout,
    PingTimeout,
    TooManyPeers,
    /// A feeler connection had nothing new.
    FeelerDone,
    /// A message that does not decode or breaks the protocol's order.
    Protocol(String),
    /// Misbehaviour reached the ban score.
    Misbehaved(String),
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::Banned => write!(f, "banned"),
            DisconnectReason::SelfConnection => write!(f, "connected to self"),
            DisconnectReason::DuplicateConnection => write!(f, "already connected to this node"),
            DisconnectReason::WrongNetwork => write!(f, "peer is on another network"),
            DisconnectReason::UnsupportedVersion(v) => {
                write!(f, "unsupported protocol version {v}")
            }
            DisconnectReason::BadAuth => write!(f, "node id proof failed"),
            DisconnectReason::HandshakeTimeout => write!(f, "handshake timed out"),
            DisconnectReason::PingTimeout => write!(f, "ping timed out"),
            DisconnectReason::TooManyPeers => write!(f, "too many peers"),
            DisconnectReason::FeelerDone => write!(f, "feeler connection done"),
            DisconnectReason::Protocol(s) => write!(f, "protocol violation: {s}"),
            DisconnectReason::Misbehaved(s) => write!(f, "misbehaved: {s}"),
        }
    }
}

/// Things the UI may show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    TipChanged {
        hash: BlockHash,
        height: Height,
        disconnected: usize,
    },
    BlockRejected {
        hash: BlockHash,
        reason: String,
    },
    TxAccepted {
        txid: Txid,
    },
    TxRejected {
        txid: Txid,
        error: MempoolError,
    },
    PeerConnected {
        peer: PeerId,
        node_id: PublicKey,
        kind: NodeKind,
        outbound: bool,
    },
    PeerDisconnected {
        peer: PeerId,
    },
    PeerPenalised {
        peer: PeerId,
        reason: String,
        score: u32,
    },
    PeerBanned {
        peer: PeerId,
        reason: String,
    },
    SyncProgress {
        height: Height,
        target: Height,
    },
    Synced {
        height: Height,
    },
}

/// Counters for tests, metrics and the UI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Blocks fully checked (duplicates are dropped before this).
    pub blocks_validated: u64,
    pub blocks_received: u64,
    pub blocks_sent: u64,
    pub headers_received: u64,
    pub txs_accepted: u64,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub peers_banned: u64,
}

/// A bounded set that forgets its oldest entries.
#[derive(Clone, Debug, Default)]
struct RecentSet {
    set: BTreeSet<Hash256>,
    order: VecDeque<Hash256>,
    cap: usize,
}

impl RecentSet {
    fn new(cap: usize) -> Self {
        RecentSet {
            cap,
            ..Default::default()
        }
    }

    fn insert(&mut self, h: Hash256) -> bool {
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

    fn contains(&self, h: &Hash256) -> bool {
        self.set.contains(h)
    }
}

/// What we know of one connection.
#[derive(Debug)]
struct Peer {
    outbound: bool,
    remote: String,
    connected_ms: u64,
    challenge: [u8; 32],
    hello: Option<Hello>,
    authed: bool,
    established: bool,
    score: u32,
    last_recv_ms: u64,
    ping: Option<(u64, u64)>,
    /// Block and transaction hashes this peer has or was sent.
    known: RecentSet,
    blocks_in_flight: BTreeMap<BlockHash, u64>,
    txs_in_flight: BTreeSet<Txid>,
    /// Headers received that do not yet show more work than ours.
    pending_headers: Vec<BlockHeader>,
    pending_work: Work,
    best_work: Work,
    best_height: Height,
    asked_nodes_ms: Option<u64>,
    last_getnodes_from_peer_ms: Option<u64>,
    getheaders_sent: bool,
    /// An extra outbound connection made to look around, not counted in the target.
    feeler: bool,
    /// The most-work header this peer showed us; it has every block up to it.
    best_header: Option<BlockHash>,
    /// Blocks it answered "not found" for.
    lacks: RecentSet,
}

impl Peer {
    fn node_id(&self) -> Option<PublicKey> {
        self.hello.as_ref().map(|h| h.node_id)
    }
}

/// A known relay and how dialing it went.
#[derive(Clone, Debug)]
struct KnownNode {
    record: NodeRecord,
    source: String,
    failures: u32,
    next_try_ms: u64,
    seen_ms: u64,
}

/// A small deterministic generator (not cryptographic): peer choice, ping nonces and
/// handshake challenges. Seeded from the identity seed the host filled with real entropy.
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

    fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        out
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
    known_nodes: BTreeMap<String, KnownNode>,
    per_source: BTreeMap<String, usize>,
    dialing: BTreeMap<String, u64>,
    bans: BTreeMap<String, u64>,
    orphans: VecDeque<Block>,
    rejected_txs: RecentSet,
    templates: VecDeque<BlockTemplate>,
    template_dirty: bool,
    last_template_ms: u64,
    outputs: VecDeque<Output>,
    pending_nodes: BTreeMap<String, Option<NodeRecord>>,
    rng: SplitMix,
    now_ms: u64,
    was_synced: bool,
    last_getnodes_ms: u64,
    last_resync_ms: u64,
    last_feeler_ms: u64,
    /// URLs being dialed as feelers.
    feelers: BTreeSet<String>,
    pub stats: NodeStats,
}

impl Node {
    /// A node over a stored state (an empty ChangeSet for a new node).
    pub fn new(config: NodeConfig, params: Params, stored: ChangeSet) -> Result<Node, LoadError> {
        let nodes = stored.nodes.clone();
        let chain = Chain::load(params, stored)?;
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
            known_nodes: BTreeMap::new(),
            per_source: BTreeMap::new(),
            dialing: BTreeMap::new(),
            bans: BTreeMap::new(),
            orphans: VecDeque::new(),
            rejected_txs: RecentSet::new(REJECTED_TXS),
            templates: VecDeque::new(),
            template_dirty: true,
            last_template_ms: 0,
            outputs: VecDeque::new(),
            pending_nodes: BTreeMap::new(),
            rng: SplitMix(u64::from_le_bytes(rng_seed)),
            now_ms: 0,
            was_synced: false,
            last_getnodes_ms: 0,
            last_resync_ms: 0,
            last_feeler_ms: 0,
            feelers: BTreeSet::new(),
            stats: NodeStats::default(),
            config,
        };
        for (url, rec) in nodes {
            if let Some(rec) = rec {
                node.known_nodes.insert(
                    url,
                    KnownNode {
                        record: rec,
                        source: String::from("store"),
                        failures: 0,
                        next_try_ms: 0,
                        seen_ms: 0,
                    },
                );
            }
        }
        for url in node.config.bootstrap.clone() {
            node.known_nodes.entry(url.clone()).or_insert(KnownNode {
                record: NodeRecord {
                    node_id: PublicKey([0; 32]),
                    url,
                    last_seen: 0,
                },
                source: String::from("bootstrap"),
                failures: 0,
                next_try_ms: 0,
                seen_ms: 0,
            });
        }
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
        self.known_nodes
            .values()
            .map(|k| k.record.clone())
            .collect()
    }

    /// Whether the node has caught up with every peer it knows of.
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
            Input::MinedHeader(header) => {
                let found = self.templates.iter().find(|t| {
                    t.block.header.prev == header.prev
                        && t.block.header.merkle_root == header.merkle_root
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

    fn hello(&self, challenge: [u8; 32]) -> Message {
        let tip = self.chain.tip();
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            network: self.chain.genesis_hash(),
            node_id: self.node_id,
            kind: self.config.kind,
            url: self.config.public_url.clone(),
            best_hash: tip.hash,
            best_height: tip.height,
            best_work: tip.work,
            challenge,
            agent: self.config.agent.clone(),
        })
    }

    // ---- connections -------------------------------------------------------------------

    fn banned(&mut self, remote: &str) -> bool {
        match self.bans.get(remote) {
            Some(&until) if until > self.now_ms => true,
            Some(_) => {
                self.bans.remove(remote);
                false
            }
            None => false,
        }
    }

    fn on_connected(&mut self, peer: PeerId, outbound: bool, remote: String) {
        if outbound {
            self.dialing.remove(&remote);
        }
        if self.banned(&remote) {
            self.outputs.push_back(Output::Disconnect {
                peer,
                reason: DisconnectReason::Banned,
            });
            return;
        }
        let inbound = self.peers.values().filter(|p| !p.outbound).count();
        if !outbound && inbound >= self.config.max_inbound {
            self.outputs.push_back(Output::Disconnect {
                peer,
                reason: DisconnectReason::TooManyPeers,
            });
            return;
        }
        let challenge = self.rng.bytes32();
        let feeler = outbound && self.feelers.remove(&remote);
        self.peers.insert(
            peer,
            Peer {
                outbound,
                remote,
                connected_ms: self.now_ms,
                challenge,
                hello: None,
                authed: false,
                established: false,
                score: 0,
                last_recv_ms: self.now_ms,
                ping: None,
                known: RecentSet::new(KNOWN_PER_PEER),
                blocks_in_flight: BTreeMap::new(),
                txs_in_flight: BTreeSet::new(),
                pending_headers: Vec::new(),
                pending_work: Work::ZERO,
                best_work: Work::ZERO,
                best_height: Height::GENESIS,
                asked_nodes_ms: None,
                last_getnodes_from_peer_ms: None,
                getheaders_sent: false,
                feeler,
                best_header: None,
                lacks: RecentSet::new(1_024),
            },
        );
        let hello = self.hello(challenge);
        self.send(peer, &hello);
    }

    fn on_disconnected(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.remove(&peer) {
            if p.established {
                self.event(Event::PeerDisconnected { peer });
            }
            if p.outbound {
                self.dialing.remove(&p.remote);
            }
            // Whatever it was fetching for us is asked of others.
            if !p.blocks_in_flight.is_empty() {
                self.request_blocks();
            }
            self.start_sync();
        }
    }

    fn on_dial_failed(&mut self, url: &str) {
        self.dialing.remove(url);
        self.feelers.remove(url);
        if let Some(k) = self.known_nodes.get_mut(url) {
            k.failures = k.failures.saturating_add(1);
            let backoff = 1_000u64 << k.failures.min(8);
            k.next_try_ms = self.now_ms + backoff.min(5 * 60 * 1000);
        }
    }

    /// Closes a connection with a notice saying why; bans when the reason warrants.
    fn drop_peer(&mut self, peer: PeerId, reason: DisconnectReason, ban: bool) {
        let Some(p) = self.peers.remove(&peer) else {
            return;
        };
        let notice = Message::Notice(Notice {
            fatal: true,
            reason: truncate(reason.to_string()),
        });
        self.send(peer, &notice);
        if ban {
            self.stats.peers_banned += 1;
            self.bans.insert(p.remote.clone(), self.now_ms + BAN_MS);
            if let Some(url) = p.hello.as_ref().and_then(|h| h.url.clone()) {
                self.bans.insert(url.clone(), self.now_ms + BAN_MS);
                if self.known_nodes.remove(&url).is_some() {
                    self.pending_nodes.insert(url, None);
                }
            }
            self.event(Event::PeerBanned {
                peer,
                reason: reason.to_string(),
            });
        }
        if p.established {
            self.event(Event::PeerDisconnected { peer });
        }
        self.outputs.push_back(Output::Disconnect { peer, reason });
        if !p.blocks_in_flight.is_empty() {
            self.request_blocks();
        }
    }

    /// Applies a verdict about a peer's conduct.
    fn conduct(&mut self, peer: PeerId, conduct: Conduct, reason: String) {
        match conduct {
            Conduct::Ignore => {}
            Conduct::Disconnect => self.drop_peer(peer, DisconnectReason::Misbehaved(reason), true),
            Conduct::Penalise(n) => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                p.score = p.score.saturating_add(u32::from(n));
                let score = p.score;
                if score >= BAN_SCORE {
                    self.drop_peer(peer, DisconnectReason::Misbehaved(reason), true);
                } else {
                    self.event(Event::PeerPenalised {
                        peer,
                        reason: reason.clone(),
                        score,
                    });
                    self.send(
                        peer,
                        &Message::Notice(Notice {
                            fatal: false,
                            reason: truncate(reason),
                        }),
                    );
                }
            }
        }
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
            Message::NotFound(items) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    for i in items {
                        if p.blocks_in_flight.remove(&i.hash).is_some() {
                            p.lacks.insert(i.hash);
                        }
                        p.txs_in_flight.remove(&i.hash);
                    }
                }
                self.request_blocks();
            }
            Message::GetHeaders { locator, stop } => {
                let fork = self.chain.find_fork(&locator);
                let mut headers = self.chain.headers_after(&fork, MAX_HEADERS);
                if let Some(i) = headers.iter().position(|h| h.hash() == stop) {
                    headers.truncate(i + 1);
                }
                self.send(peer, &Message::Headers(headers));
            }
            Message::Headers(hs) => self.on_headers(peer, hs),
            Message::Block(b) => self.on_block(peer, b),
            Message::Tx(tx) => self.on_tx(peer, tx),
        }
    }

    fn on_hello(&mut self, peer: PeerId, h: Hello) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        if p.hello.is_some() {
            self.drop_peer(
                peer,
                DisconnectReason::Protocol(String::from("second hello")),
                true,
            );
            return;
        }
        if h.network != self.chain.genesis_hash() {
            self.drop_peer(peer, DisconnectReason::WrongNetwork, false);
            return;
        }
        if h.version < 1 {
            self.drop_peer(peer, DisconnectReason::UnsupportedVersion(h.version), false);
            return;
        }
        if h.node_id == self.node_id {
            // Our own address came back to us: forget it as a relay to dial.
            if let Some(url) = self
                .peers
                .get(&peer)
                .filter(|p| p.outbound)
                .map(|p| p.remote.clone())
            {
                if self.known_nodes.remove(&url).is_some() {
                    self.pending_nodes.insert(url, None);
                }
            }
            self.drop_peer(peer, DisconnectReason::SelfConnection, false);
            return;
        }
        let duplicate = self
            .peers
            .iter()
            .any(|(&id, q)| id != peer && q.node_id() == Some(h.node_id));
        if duplicate {
            self.drop_peer(peer, DisconnectReason::DuplicateConnection, false);
            return;
        }
        let proof = self
            .keypair
            .sign(&auth_message(&self.chain.genesis_hash(), &h.challenge, &self.node_id).0);
        let known_best = self.chain.entry(&h.best_hash).map(|e| e.hash);
        let p = self.peers.get_mut(&peer).expect("checked above");
        p.best_work = h.best_work;
        p.best_height = h.best_height;
        p.best_header = known_best;
        p.hello = Some(h);
        self.send(peer, &Message::Auth(proof));
        self.maybe_established(peer);
    }

    fn on_auth(&mut self, peer: PeerId, sig: sig::Signature) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let Some(h) = p.hello.as_ref() else {
            self.drop_peer(
                peer,
                DisconnectReason::Protocol(String::from("auth before hello")),
                true,
            );
            return;
        };
        if p.authed {
            self.drop_peer(
                peer,
                DisconnectReason::Protocol(String::from("second auth")),
                true,
            );
            return;
        }
        let msg = auth_message(&self.chain.genesis_hash(), &p.challenge, &h.node_id);
        if sig::verify(&h.node_id, &msg.0, &sig).is_err() {
            self.drop_peer(peer, DisconnectReason::BadAuth, true);
            return;
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.authed = true;
        }
        self.maybe_established(peer);
    }

    fn maybe_established(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.established || !p.authed || p.hello.is_none() {
            return;
        }
        p.established = true;
        p.asked_nodes_ms = Some(self.now_ms);
        let outbound = p.outbound;
        let remote = p.remote.clone();
        let h = p.hello.clone().expect("checked above");
        self.event(Event::PeerConnected {
            peer,
            node_id: h.node_id,
            kind: h.kind,
            outbound,
        });
        if h.kind == NodeKind::Relay {
            if let Some(url) = h.url.clone() {
                let rec = NodeRecord {
                    node_id: h.node_id,
                    url,
                    last_seen: self.now_s(),
                };
                // Heard from the node itself: its own word about its URL.
                if self.learn_node(rec.clone(), remote.clone(), true) {
                    self.forward_node(rec, Some(peer));
                }
            }
        }
        if let Some(k) = self.known_nodes.get_mut(&remote) {
            k.failures = 0;
            k.record.node_id = h.node_id;
        }
        self.send(peer, &Message::GetNodes);
        self.start_sync();
    }

    // ---- discovery ---------------------------------------------------------------------

    fn valid_url(url: &str) -> bool {
        (url.starts_with("ws://") || url.starts_with("wss://"))
            && url.len() <= MAX_URL
            && url.len() > 6
            && !url
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    }

    /// Adds or refreshes a relay record; returns true if it was new.
    fn learn_node(&mut self, rec: NodeRecord, source: String, direct: bool) -> bool {
        if !Self::valid_url(&rec.url)
            || rec.node_id == self.node_id
            || self.config.public_url.as_deref() == Some(rec.url.as_str())
        {
            return false;
        }
        let now_ms = self.now_ms;
        if let Some(k) = self.known_nodes.get_mut(&rec.url) {
            if rec.last_seen > k.record.last_seen || direct {
                k.record.last_seen = k.record.last_seen.max(rec.last_seen);
                k.seen_ms = now_ms;
                if direct {
                    k.record.node_id = rec.node_id;
                }
            }
            return false;
        }
        if self.known_nodes.len() >= MAX_KNOWN_NODES {
            return false;
        }
        let count = self.per_source.entry(source.clone()).or_insert(0);
        if *count >= MAX_NODES_PER_SOURCE && !direct {
            return false;
        }
        *count += 1;
        self.pending_nodes
            .insert(rec.url.clone(), Some(rec.clone()));
        self.known_nodes.insert(
            rec.url.clone(),
            KnownNode {
                record: rec,
                source,
                failures: 0,
                next_try_ms: 0,
                seen_ms: now_ms,
            },
        );
        true
    }

    /// Passes a newly learned relay on to every other established peer, once.
    fn forward_node(&mut self, rec: NodeRecord, except: Option<PeerId>) {
        let targets: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| p.established && Some(**id) != except)
            .map(|(&id, _)| id)
            .collect();
        let bytes: Arc<[u8]> = Arc::from(Message::Nodes(alloc::vec![rec]).encode());
        for id in targets {
            self.send_bytes(id, bytes.clone());
        }
    }

    fn on_getnodes(&mut self, peer: PeerId) {
        let now = self.now_ms;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        // One answer a minute per peer is plenty; more is ignored.
        if p.last_getnodes_from_peer_ms
            .is_some_and(|t| now < t + 60_000)
        {
            return;
        }
        p.last_getnodes_from_peer_ms = Some(now);
        let mut list: Vec<NodeRecord> = self
            .known_nodes
            .values()
            .map(|k| k.record.clone())
            .collect();
        list.sort_by_key(|r| core::cmp::Reverse(r.last_seen));
        list.truncate(MAX_ADDRS);
        if self.config.kind == NodeKind::Relay {
            if let Some(url) = self.config.public_url.clone() {
                list.push(NodeRecord {
                    node_id: self.node_id,
                    url,
                    last_seen: self.now_s(),
                });
                list.truncate(MAX_ADDRS);
            }
        }
        self.send(peer, &Message::Nodes(list));
    }

    fn on_nodes(&mut self, peer: PeerId, list: Vec<NodeRecord>) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let asked = p.asked_nodes_ms.take().is_some();
        let source = p.remote.clone();
        if !asked && list.len() > 10 {
            self.conduct(
                peer,
                Conduct::Penalise(20),
                String::from("unsolicited node list"),
            );
            return;
        }
        let now_s = self.now_s();
        for rec in list {
            // A record claiming to be from the future is clamped, not trusted.
            let rec = NodeRecord {
                last_seen: rec.last_seen.min(now_s),
                ..rec
            };
            if self.learn_node(rec.clone(), source.clone(), false) {
                self.forward_node(rec, Some(peer));
            }
        }
    }

    fn flush_nodes(&mut self) {
        if !self.pending_nodes.is_empty() {
            let nodes = core::mem::take(&mut self.pending_nodes);
            self.outputs.push_back(Output::Persist(ChangeSet {
                nodes,
                ..ChangeSet::default()
            }));
        }
    }

    /// Dials known relays until the outbound target is met.
    fn dial_more(&mut self) {
        let connected: BTreeSet<String> = self
            .peers
            .values()
            .flat_map(|p| {
                let mut v = alloc::vec![p.remote.clone()];
                if let Some(u) = p.hello.as_ref().and_then(|h| h.url.clone()) {
                    v.push(u);
                }
                v
            })
            .collect();
        let connected_ids: BTreeSet<PublicKey> =
            self.peers.values().filter_map(|p| p.node_id()).collect();
        let outbound = self
            .peers
            .values()
            .filter(|p| p.outbound && !p.feeler)
            .count()
            + self.dialing.len();
        let now = self.now_ms;
        let feeler = outbound >= self.config.target_outbound
            && self.feelers.is_empty()
            && now >= self.last_feeler_ms + FEELER_INTERVAL_MS;
        if outbound >= self.config.target_outbound && !feeler {
            return;
        }
        let mut candidates: Vec<String> = self
            .known_nodes
            .iter()
            .filter(|(url, k)| {
                k.next_try_ms <= now
                    && !connected.contains(*url)
                    && !connected_ids.contains(&k.record.node_id)
                    && !self.dialing.contains_key(*url)
                    && self.bans.get(*url).is_none_or(|&t| t <= now)
            })
            .map(|(url, _)| url.clone())
            .collect();
        if feeler {
            self.last_feeler_ms = now;
            if candidates.is_empty() {
                return;
            }
            let i = (self.rng.next() % candidates.len() as u64) as usize;
            let url = candidates.swap_remove(i);
            self.feelers.insert(url.clone());
            self.outputs.push_back(Output::Dial { url });
            return;
        }
        let want = self.config.target_outbound - outbound;
        for _ in 0..want {
            if candidates.is_empty() {
                break;
            }
            let i = (self.rng.next() % candidates.len() as u64) as usize;
            let url = candidates.swap_remove(i);
            self.dialing.insert(url.clone(), now);
            self.outputs.push_back(Output::Dial { url });
        }
    }

    // ---- sync --------------------------------------------------------------------------

    /// Asks the peer with the most work for headers if anyone has more than we know.
    fn start_sync(&mut self) {
        let best = self.chain.best_header().work;
        if self
            .peers
            .values()
            .any(|p| p.established && p.getheaders_sent)
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
        self.send_getheaders(peer);
    }

    fn send_getheaders(&mut self, peer: PeerId) {
        let mut locator = Vec::new();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.getheaders_sent = true;
            if let Some(last) = p.pending_headers.last() {
                locator.push(last.hash());
            }
        }
        // Locate from the best header so a half-done download resumes where it stopped.
        let mut h = self.chain.best_header().hash;
        let mut step = 1u64;
        while locator.len() < crate::wire::MAX_LOCATOR - 1 {
            locator.push(h);
            let height = self
                .chain
                .entry(&h)
                .expect("walking known ancestors")
                .height
                .0;
            if height == 0 {
                break;
            }
            if locator.len() > 10 {
                step *= 2;
            }
            let target = height.saturating_sub(step);
            while self.chain.entry(&h).expect("known").height.0 > target {
                h = self.chain.entry(&h).expect("known").header.prev;
            }
        }
        if locator.last() != Some(&self.chain.genesis_hash()) {
            locator.push(self.chain.genesis_hash());
        }
        self.send(
            peer,
            &Message::GetHeaders {
                locator,
                stop: Hash256::ZERO,
            },
        );
    }

    fn on_headers(&mut self, peer: PeerId, hs: Vec<BlockHeader>) {
        self.stats.headers_received += hs.len() as u64;
        let full = hs.len() == MAX_HEADERS;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.getheaders_sent = false;
        }
        if hs.is_empty() {
            self.finish_header_batch(peer);
            return;
        }
        // Check linkage and proof of work before anything is kept.
        let params = self.chain.params().clone();
        let pending_tip = self
            .peers
            .get(&peer)
            .and_then(|p| p.pending_headers.last().map(BlockHeader::hash));
        let base_work = if Some(hs[0].prev) == pending_tip {
            self.peers.get(&peer).map(|p| p.pending_work)
        } else {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.pending_headers.clear();
                p.pending_work = Work::ZERO;
            }
            self.chain.entry(&hs[0].prev).map(|e| e.work)
        };
        let Some(mut work) = base_work else {
            // Does not connect to anything we know: find the fork point. A single header
            // is a normal announcement of a branch we have not seen.
            if hs.len() > 1 {
                self.conduct(
                    peer,
                    Conduct::Penalise(20),
                    String::from("headers do not connect"),
                );
            }
            if self.peers.contains_key(&peer) {
                self.send_getheaders(peer);
            }
            return;
        };
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
        let last = hs[hs.len() - 1];
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.known.insert(last.hash());
        if work > p.best_work {
            p.best_work = work;
        }
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
        if work > self.chain.best_header().work {
            self.commit_headers(peer);
        } else if self.chain.entry(&last.hash()).is_some() {
            // Nothing new to us, but it tells what the peer has.
            if let Some(p) = self.peers.get_mut(&peer) {
                p.pending_headers.clear();
                p.pending_work = Work::ZERO;
            }
            self.note_peer_header(peer, last.hash());
        }
        if !self.peers.contains_key(&peer) {
            return;
        }
        if full {
            self.send_getheaders(peer);
        } else {
            self.finish_header_batch(peer);
        }
    }

    /// The peer has no more headers: drop what did not beat our chain.
    fn finish_header_batch(&mut self, peer: PeerId) {
        let ours = self.chain.best_header().work;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let claimed = p.hello.as_ref().map_or(Work::ZERO, |h| h.best_work);
        let delivered = p.pending_work;
        let had_pending = !p.pending_headers.is_empty();
        p.pending_headers.clear();
        p.pending_work = Work::ZERO;
        if had_pending && delivered <= ours && claimed > ours {
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
        if !self.peers.values().any(|p| p.getheaders_sent) {
            self.start_sync();
        }
    }

    /// Moves a peer's pending headers into the block tree (full contextual checks).
    fn commit_headers(&mut self, peer: PeerId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let headers = core::mem::take(&mut p.pending_headers);
        p.pending_work = Work::ZERO;
        let last = headers.last().map(BlockHeader::hash);
        let now_s = self.now_s();
        for h in headers {
            match self.chain.accept_header(&h, now_s) {
                Ok(_) => {}
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
        if let Some(last) = last {
            self.note_peer_header(peer, last);
        }
        let best = self.chain.best_header();
        let (height, target) = (self.chain.height(), best.height);
        self.event(Event::SyncProgress { height, target });
        self.request_blocks();
    }

    /// Records that `peer` has the block `hash` (in our tree) and all its ancestors.
    fn note_peer_header(&mut self, peer: PeerId, hash: BlockHash) {
        let Some(work) = self.chain.entry(&hash).map(|e| e.work) else {
            return;
        };
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let better = p
            .best_header
            .and_then(|b| self.chain.entry(&b))
            .is_none_or(|e| e.work < work);
        if better {
            p.best_header = Some(hash);
        }
    }

    /// Requests missing bodies along the best header chain from peers that have them.
    fn request_blocks(&mut self) {
        let in_flight: BTreeSet<BlockHash> = self
            .peers
            .values()
            .flat_map(|p| p.blocks_in_flight.keys().copied())
            .collect();
        let missing = self.chain.missing_blocks(256);
        let mut per_peer: BTreeMap<PeerId, Vec<InvItem>> = BTreeMap::new();
        for hash in missing {
            if in_flight.contains(&hash) {
                continue;
            }
            // The least-loaded peer known to have it.
            let chain = &self.chain;
            let choice = self
                .peers
                .iter()
                .filter(|(_, p)| {
                    p.established
                        && p.blocks_in_flight.len() < MAX_BLOCKS_IN_FLIGHT_PER_PEER
                        && !p.lacks.contains(&hash)
                        && p.best_header.is_some_and(|b| chain.is_ancestor(&hash, &b))
                })
                .min_by_key(|(id, p)| {
                    p.blocks_in_flight.len() + per_peer.get(*id).map_or(0, Vec::len)
                })
                .map(|(&id, _)| id);
            let Some(peer) = choice else {
                break;
            };
            let p = self.peers.get_mut(&peer).expect("chosen from peers");
            if p.blocks_in_flight.len() + per_peer.get(&peer).map_or(0, Vec::len)
                >= MAX_BLOCKS_IN_FLIGHT_PER_PEER
            {
                break;
            }
            per_peer.entry(peer).or_default().push(InvItem {
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

    // ---- blocks ------------------------------------------------------------------------

    fn on_block(&mut self, peer: PeerId, block: Block) {
        let hash = block.hash();
        self.stats.blocks_received += 1;
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.blocks_in_flight.remove(&hash).is_none() {
            self.conduct(
                peer,
                Conduct::Penalise(20),
                alloc::format!("unsolicited block {hash}"),
            );
            return;
        }
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
                    self.send_getheaders(peer);
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

    fn on_getdata(&mut self, peer: PeerId, items: Vec<InvItem>) {
        let mut missing = Vec::new();
        for item in items {
            match item.kind {
                InvKind::Block => match self.chain.block(&item.hash) {
                    Some(b) => {
                        let bytes: Arc<[u8]> = Arc::from(Message::Block(b.clone()).encode());
                        self.stats.blocks_sent += 1;
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.known.insert(item.hash);
                        }
                        self.send_bytes(peer, bytes);
                    }
                    None => missing.push(item),
                },
                InvKind::Tx => match self.mempool.get(&item.hash) {
                    Some(e) => {
                        let msg = Message::Tx(e.tx.clone());
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.known.insert(item.hash);
                        }
                        self.send(peer, &msg);
                    }
                    None => missing.push(item),
                },
            }
        }
        if !missing.is_empty() {
            self.send(peer, &Message::NotFound(missing));
        }
    }

    // ---- transactions ------------------------------------------------------------------

    fn on_inv(&mut self, peer: PeerId, items: Vec<InvItem>) {
        let mut want = Vec::new();
        let mut unknown_block = false;
        for item in items.into_iter().take(MAX_INV) {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.known.insert(item.hash);
            }
            match item.kind {
                InvKind::Tx => {
                    let requested = self
                        .peers
                        .values()
                        .any(|p| p.txs_in_flight.contains(&item.hash));
                    if !self.mempool.contains(&item.hash)
                        && !self.rejected_txs.contains(&item.hash)
                        && !requested
                    {
                        want.push(item);
                    }
                }
                InvKind::Block => {
                    if self.chain.entry(&item.hash).is_none() {
                        unknown_block = true;
                    }
                }
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            for i in &want {
                p.txs_in_flight.insert(i.hash);
            }
        }
        if !want.is_empty() {
            self.send(peer, &Message::GetData(want));
        }
        if unknown_block {
            self.send_getheaders(peer);
        }
    }

    fn on_tx(&mut self, peer: PeerId, tx: Transaction) {
        let txid = tx.txid();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if !p.txs_in_flight.remove(&txid) {
            self.conduct(
                peer,
                Conduct::Penalise(10),
                alloc::format!("unsolicited transaction {txid}"),
            );
            return;
        }
        p.known.insert(txid);
        match self.mempool.add(tx, &self.chain) {
            Ok(_) => {
                self.stats.txs_accepted += 1;
                self.template_dirty = true;
                self.event(Event::TxAccepted { txid });
                self.announce_tx(txid, Some(peer));
            }
            Err(e) => {
                self.rejected_txs.insert(txid);
                let conduct = e.conduct();
                self.conduct(peer, conduct, alloc::format!("transaction {txid}: {e}"));
            }
        }
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

    // ---- timers ------------------------------------------------------------------------

    fn on_tick(&mut self) {
        let now = self.now_ms;
        let mut timeouts = Vec::new();
        let mut pings = Vec::new();
        let mut stalled = false;
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
            let before = p.blocks_in_flight.len();
            p.blocks_in_flight
                .retain(|_, &mut at| now < at + BLOCK_REQUEST_TIMEOUT_MS);
            stalled |= p.blocks_in_flight.len() != before;
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
                drop(p);
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
        if stalled {
            self.request_blocks();
        }
        // Forget relays not heard of in a long time (never the ones we are connected to).
        let connected: BTreeSet<String> = self.peers.values().map(|p| p.remote.clone()).collect();
        let expired: Vec<String> = self
            .known_nodes
            .iter()
            .filter(|(url, k)| {
                k.seen_ms + NODE_EXPIRY_MS < now
                    && !connected.contains(*url)
                    && k.source != "bootstrap"
            })
            .map(|(u, _)| u.clone())
            .collect();
        for url in expired {
            self.known_nodes.remove(&url);
            self.pending_nodes.insert(url, None);
        }
        // Dials that never answered.
        self.dialing.retain(|_, &mut at| now < at + 30_000);
        if now >= self.last_getnodes_ms + GETNODES_INTERVAL_MS {
            self.last_getnodes_ms = now;
            let ids: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.established)
                .map(|(&id, _)| id)
                .collect();
            if !ids.is_empty() {
                let id = ids[(self.rng.next() % ids.len() as u64) as usize];
                if let Some(p) = self.peers.get_mut(&id) {
                    p.asked_nodes_ms = Some(now);
                }
                self.send(id, &Message::GetNodes);
            }
        }
        if now >= self.last_resync_ms + RESYNC_INTERVAL_MS {
            self.last_resync_ms = now;
            let ids: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.established && !p.getheaders_sent)
                .map(|(&id, _)| id)
                .collect();
            if !ids.is_empty() {
                let id = ids[(self.rng.next() % ids.len() as u64) as usize];
                self.send_getheaders(id);
            }
        }
        self.dial_more();
        self.start_sync_if_idle();
    }

    // ---- mining ------------------------------------------------------------------------

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

/// An established peer as the UI sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub id: PeerId,
    pub node_id: PublicKey,
    pub kind: NodeKind,
    pub url: Option<String>,
    pub remote: String,
    pub outbound: bool,
    pub best_height: Height,
    pub score: u32,
}

fn truncate(mut s: String) -> String {
    if s.len() > crate::wire::MAX_REASON {
        let mut end = crate::wire::MAX_REASON;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
