//! Peer-to-peer messages and their canonical codec.
//!
//! A message is one byte of type followed by its body; a WebSocket frame carries exactly
//! one message. Every list and string has a cap checked before allocating, and the whole
//! message has a size cap per type checked before decoding, so a peer can make us allocate
//! at most what it actually sent. See `docs/PROTOCOL.md`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

mod codec;

pub use codec::{block_message, carries_block_bodies};

use crate::encode::DecodeError;
use crate::hash::{Hash256, sha256d_parts};
use crate::primitives::{Block, BlockHash, BlockHeader, Transaction, Txid};
use crate::sig::{PublicKey, Signature};
use crate::units::{Height, Work};
use codec::put_string;

/// Protocol version spoken by this software: 2 signs relay records, binds the handshake to
/// the dialed URL, carries feature bits in `hello`, ignores unknown message types and has
/// `sendblocks` (block push, PROTOCOL §7.4); 3 adds `kept_from` to `hello` (pruning).
pub const PROTOCOL_VERSION: u32 = 3;
/// The first protocol version whose `hello` carries `kept_from` (PROTOCOL §3.2): a `hello`
/// of an older version has no such field and its sender keeps every body.
pub const KEPT_FROM_VERSION: u32 = 3;
/// Oldest protocol version accepted: version 1 cannot complete a version 2 handshake.
pub const MIN_PROTOCOL_VERSION: u32 = 2;
/// The first protocol version with `sendblocks` (PROTOCOL §7.4): it is sent only to peers
/// whose `hello` says at least this, so older peers never see a type they do not know.
pub const SENDBLOCKS_VERSION: u32 = 2;
/// From this version on, a message of an unknown type from an established peer is ignored
/// (and counted), so later versions can add messages.
pub const VERSION_IGNORES_UNKNOWN: u32 = 2;
/// Feature bit: the sender speaks compact block relay (`cmpctblock`, `getblocktxn`,
/// `blocktxn`, PROTOCOL §7.5); pushed blocks go to it as compact blocks.
pub const FEATURE_COMPACT: u64 = 1;
/// Feature bits this software sets in `hello` (unknown bits are ignored).
pub const FEATURES: u64 = FEATURE_COMPACT;
/// Bytes of a short transaction id in a compact block.
pub const SHORT_ID_LEN: usize = 6;
/// Most transactions a compact block, a `getblocktxn` or a `blocktxn` may name (the
/// decoder's bound; the node also holds blocks to the network's own limit).
pub const MAX_COMPACT_TXS: usize = crate::primitives::MAX_BLOCK_TXS_DECODE;
/// Bytes a `hello` of a later version may carry after the fields this version knows.
pub const MAX_HELLO_EXTRA: usize = 256;
/// Largest message of any type: a maximal block plus framing.
pub const MAX_MESSAGE_SIZE: usize = 1_000_000 + 1_024;
/// Most entries in one inventory, get-data or not-found message.
pub const MAX_INV: usize = 1_000;
/// Most headers in one headers message.
pub const MAX_HEADERS: usize = 2_000;
/// Most hashes in a block locator.
pub const MAX_LOCATOR: usize = 64;
/// Most node records in one known-nodes reply.
pub const MAX_ADDRS: usize = 1_000;
pub use crate::record::{MAX_RECORD_SIZE, MAX_URL, NodeRecord};
/// Longest user agent.
pub const MAX_AGENT: usize = 64;
/// Longest rejection reason.
pub const MAX_REASON: usize = 200;

/// What kind of node a peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// A browser tab: cannot be dialed.
    Browser,
    /// A relay: reachable at its advertised WebSocket URL.
    Relay,
}

/// A node's self-description, sent first on every connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The newest protocol version the sender speaks; both sides then speak the smaller.
    pub version: u32,
    /// Feature bits of the sender; a bit neither side knows is ignored.
    pub features: u64,
    /// The network: its genesis hash.
    pub network: BlockHash,
    /// The node's identity; proven by signing the peer's challenge.
    pub node_id: PublicKey,
    pub kind: NodeKind,
    /// A relay's own signed record: where it can be dialed. Browsers send none.
    pub record: Option<NodeRecord>,
    /// The URL the sender dialed to open this connection; none on the accepting side. Both
    /// `auth` signatures cover it, and the accepting side signs only its own URL.
    pub dialed: Option<String>,
    pub best_hash: BlockHash,
    pub best_height: Height,
    pub best_work: Work,
    /// Random bytes the peer must sign to prove its node id.
    pub challenge: [u8; 32],
    pub agent: String,
    /// The lowest height from which the sender keeps block bodies: 0 for a node that keeps
    /// every body, at least 1 for a pruned node (PROTOCOL §3.2). On the wire only from
    /// [`KEPT_FROM_VERSION`] on (0 when decoding an older `hello`).
    pub kept_from: Height,
    /// What a `hello` of a later version carries after the fields known here (ignored;
    /// always empty when `version` is this software's or lower).
    pub extra: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InvKind {
    Block,
    Tx,
}

/// One inventory entry. On the wire it is a kind tag and 32 bytes; the bytes are a block hash
/// or a txid according to the tag, so the typed view is [`InvItem::id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InvItem {
    pub kind: InvKind,
    pub hash: Hash256,
}

/// An inventory entry's hash, typed by its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InvId {
    Block(BlockHash),
    Tx(Txid),
}

impl InvItem {
    pub fn block(hash: BlockHash) -> Self {
        InvItem {
            kind: InvKind::Block,
            hash: hash.to_hash(),
        }
    }

    pub fn tx(txid: Txid) -> Self {
        InvItem {
            kind: InvKind::Tx,
            hash: txid.to_hash(),
        }
    }

    /// The hash as the id its kind says it is.
    pub fn id(&self) -> InvId {
        match self.kind {
            InvKind::Block => InvId::Block(BlockHash::from_hash(self.hash)),
            InvKind::Tx => InvId::Tx(Txid::from_hash(self.hash)),
        }
    }
}

impl From<BlockHash> for InvId {
    fn from(hash: BlockHash) -> Self {
        InvId::Block(hash)
    }
}

impl From<Txid> for InvId {
    fn from(txid: Txid) -> Self {
        InvId::Tx(txid)
    }
}

impl From<InvId> for InvItem {
    fn from(id: InvId) -> Self {
        match id {
            InvId::Block(h) => InvItem::block(h),
            InvId::Tx(t) => InvItem::tx(t),
        }
    }
}

/// A short transaction id: the first [`SHORT_ID_LEN`] bytes of a hash keyed per block and
/// per sender (see `node::compact::short_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortId(pub [u8; SHORT_ID_LEN]);

/// A transaction sent in full inside a compact block, at its index in the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefilledTx {
    pub index: u32,
    pub tx: Transaction,
}

/// A block as its header, a key nonce, short ids of the transactions the receiver probably
/// has, and the ones it cannot have (the coinbase) in full. The block's transaction `i` is
/// the `i`-th prefilled one if its index is `i`, else the next short id in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactBlock {
    pub header: BlockHeader,
    /// Chosen by the sender, so a collision in one sender's ids is not in another's.
    pub nonce: u64,
    pub short_ids: Vec<ShortId>,
    /// In increasing index order.
    pub prefilled: Vec<PrefilledTx>,
}

/// Why a peer's data was refused (sent before disconnecting, or as a notice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Whether the sender is about to disconnect.
    pub fatal: bool,
    pub reason: String,
}

/// Every message of the protocol.
// A `hello` (with its record) is the largest variant; messages are short-lived values
// decoded one at a time, so boxing it would cost more churn than the bytes it saves.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    /// Signature over [`auth_message`] for the peer's challenge.
    Auth(Signature),
    GetNodes,
    Nodes(Vec<NodeRecord>),
    Inv(Vec<InvItem>),
    GetData(Vec<InvItem>),
    NotFound(Vec<InvItem>),
    GetHeaders {
        locator: Vec<BlockHash>,
        stop: BlockHash,
    },
    Headers(Vec<BlockHeader>),
    Block(Block),
    Tx(Transaction),
    Ping(u64),
    Pong(u64),
    Notice(Notice),
    /// Asks the receiver to send new blocks that extend what it knows we have as `block`
    /// messages at once, instead of announcing them by header (PROTOCOL §7.4).
    SendBlocks,
    /// A pushed block in compact form (PROTOCOL §7.5).
    CmpctBlock(CompactBlock),
    /// Asks for the transactions at `indexes` (strictly increasing) of block `block`.
    GetBlockTxn {
        block: BlockHash,
        indexes: Vec<u32>,
    },
    /// The transactions a `getblocktxn` asked for, in its order.
    BlockTxn {
        block: BlockHash,
        txs: Vec<Transaction>,
    },
}

/// A message that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    TooLarge {
        size: usize,
        max: usize,
    },
    Empty,
    UnknownType(u8),
    /// A `hello` of a protocol version older than [`MIN_PROTOCOL_VERSION`].
    OldVersion(u32),
    Decode {
        kind: &'static str,
        error: DecodeError,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooLarge { size, max } => {
                write!(f, "message of {size} bytes exceeds the limit of {max}")
            }
            WireError::Empty => write!(f, "empty message"),
            WireError::UnknownType(t) => write!(f, "unknown message type {t}"),
            WireError::OldVersion(v) => write!(f, "protocol version {v} is not supported"),
            WireError::Decode { kind, error } => write!(f, "malformed {kind} message: {error}"),
        }
    }
}

impl core::error::Error for WireError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            WireError::Decode { error, .. } => Some(error),
            _ => None,
        }
    }
}

const AUTH_TAG: &[u8] = b"tabcoin/auth/v3";

/// What a node signs to prove its id on one connection: the network, both challenges of the
/// connection (the one the signer sent in its own `hello`, then the one the verifier sent),
/// both node ids (the signer's, then the one the verifier claimed) and the URL the dialing
/// side dialed. Binding the challenges and ids means a signature obtained on one connection
/// proves nothing on another; binding the URL means a handshake forwarded from another
/// address fails, since the accepting side signs only its own URL.
pub fn auth_message(
    network: &BlockHash,
    signer_challenge: &[u8; 32],
    verifier_challenge: &[u8; 32],
    signer: &PublicKey,
    verifier: &PublicKey,
    dialed: &str,
) -> Hash256 {
    let mut url = Vec::with_capacity(dialed.len() + 2);
    put_string(&mut url, dialed);
    sha256d_parts(&[
        AUTH_TAG,
        network.as_bytes(),
        signer_challenge,
        verifier_challenge,
        &signer.0,
        &verifier.0,
        &url,
    ])
}
