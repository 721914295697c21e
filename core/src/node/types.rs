//! The node's public face: how a host configures it, what it feeds in, what it gets back.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::dial::DialPolicy;
use crate::mempool::MempoolError;
use crate::miner::BlockTemplate;
use crate::primitives::{Block, BlockHash, BlockHeader, Transaction, Txid};
use crate::sig::{ChunkResult, PublicKey, VerifyJob};
use crate::store::ChangeSet;
use crate::units::Height;
use crate::utxo::BlockUndo;
use crate::wire::NodeKind;

/// A connection, numbered by the host.
pub type PeerId = u64;

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
    /// What may be dialed (`docs/PROTOCOL.md` §5.6). Default: any port, no local addresses.
    pub dial_policy: DialPolicy,
    /// Byte budget of the block bodies kept in memory; older ones are read from the store.
    pub body_cache_bytes: usize,
    /// Hand blocks' signature checks to the host ([`Output::VerifySigs`]) instead of
    /// verifying them in place. Off: the node behaves exactly as without the feature.
    pub parallel_verify: bool,
    /// Byte budget of the block bodies kept in the store (`None`: keep every body). A
    /// pruned node deletes older bodies and says so in its `hello` (see `chain::prune`).
    pub prune_bytes: Option<u64>,
    /// The deepest reorg a pruned node follows: it keeps at least this many of the newest
    /// bodies whatever its budget ([`crate::chain::DEFAULT_PRUNE_DEPTH`]).
    pub prune_depth: u64,
    /// Feature bits offered in `hello` (`wire::FEATURES`; tests and benches clear bits to
    /// compare with a node without them).
    pub features: u64,
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
            dial_policy: DialPolicy::relay(false),
            body_cache_bytes: crate::chain::DEFAULT_BODY_CACHE_BYTES,
            parallel_verify: false,
            prune_bytes: None,
            prune_depth: crate::chain::DEFAULT_PRUNE_DEPTH,
            features: crate::wire::FEATURES,
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
    /// The host's answer to [`Output::LoadBlock`]: the stored body and its undo data
    /// (`None` for what the store does not hold). Answer every load, in any order, as soon
    /// as the store can (asynchronous hosts after their read completes).
    BlockLoaded {
        hash: BlockHash,
        block: Option<Block>,
        undo: Option<BlockUndo>,
    },
    /// The verdict on one chunk of the job of [`Output::VerifySigs`] `ticket`. Results of
    /// tickets the node no longer waits for are ignored.
    SigsVerified {
        ticket: u64,
        result: ChunkResult,
    },
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
    /// Read the body of this block and its undo data from the store, and hand them back
    /// with [`Input::BlockLoaded`]. Everything persisted before this output was emitted must
    /// be visible to the read (an asynchronous host looks in its write queue first).
    LoadBlock(BlockHash),
    /// Verify these signatures (only with [`NodeConfig::parallel_verify`]): split the job with
    /// [`VerifyJob::chunks`], verify each chunk anywhere ([`VerifyChunk::verify`](crate::sig::VerifyChunk::verify)) and
    /// return every [`ChunkResult`] with [`Input::SigsVerified`] and this ticket.
    VerifySigs {
        ticket: u64,
        job: Arc<VerifyJob>,
    },
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
    /// The dialing side says it dialed a URL that is not this node's own: a forwarded
    /// handshake, or a URL this relay does not sign.
    WrongEndpoint,
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
    /// Closed to keep a shared resource within its limit (not a ban).
    Evicted(String),
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
            DisconnectReason::WrongEndpoint => write!(f, "dialed url is not this node's"),
            DisconnectReason::BadAuth => write!(f, "node id proof failed"),
            DisconnectReason::HandshakeTimeout => write!(f, "handshake timed out"),
            DisconnectReason::PingTimeout => write!(f, "ping timed out"),
            DisconnectReason::TooManyPeers => write!(f, "too many peers"),
            DisconnectReason::FeelerDone => write!(f, "feeler connection done"),
            DisconnectReason::Protocol(s) => write!(f, "protocol violation: {s}"),
            DisconnectReason::Misbehaved(s) => write!(f, "misbehaved: {s}"),
            DisconnectReason::Evicted(s) => write!(f, "evicted: {s}"),
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
    /// Messages of a type this version does not know, ignored (`docs/PROTOCOL.md` §3).
    pub unknown_messages: u64,
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
