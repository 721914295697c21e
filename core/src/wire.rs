//! Peer-to-peer messages and their canonical codec.
//!
//! A message is one byte of type followed by its body; a WebSocket frame carries exactly
//! one message. Every list and string has a cap checked before allocating, and the whole
//! message has a size cap per type checked before decoding, so a peer can make us allocate
//! at most what it actually sent. See `docs/PROTOCOL.md`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::encode::{Decode, DecodeError, Encode, Reader, put_var_bytes, put_varint};
use crate::hash::{Hash256, sha256d_parts};
use crate::primitives::{Block, BlockHash, BlockHeader, HEADER_SIZE, Transaction, Txid};
use crate::sig::{PublicKey, Signature};
use crate::units::{Height, U256, Work};

/// Protocol version spoken by this software.
pub const PROTOCOL_VERSION: u32 = 2;
/// The first protocol version with `sendblocks` (PROTOCOL §7.4): it is sent only to peers
/// whose `hello` says at least this, so older peers never see a type they do not know.
pub const SENDBLOCKS_VERSION: u32 = 2;
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
/// Longest relay URL.
pub const MAX_URL: usize = 200;
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
    pub version: u32,
    /// The network: its genesis hash.
    pub network: BlockHash,
    /// The node's identity; proven by signing the peer's challenge.
    pub node_id: PublicKey,
    pub kind: NodeKind,
    /// Where relays can be dialed (`ws://` or `wss://`); browsers send none.
    pub url: Option<String>,
    pub best_hash: BlockHash,
    pub best_height: Height,
    pub best_work: Work,
    /// Random bytes the peer must sign to prove its node id.
    pub challenge: [u8; 32],
    pub agent: String,
}

/// A dialable relay known to the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    pub node_id: PublicKey,
    pub url: String,
    /// Seconds since the epoch when it was last heard of.
    pub last_seen: u64,
}

/// The one byte layout of a node record, on the wire (`nodes`) and in every store: the node
/// id (32 bytes), the url (varint length, UTF-8, at most [`MAX_URL`] bytes) and `last_seen`
/// (u64 little-endian).
impl Encode for NodeRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.node_id.0);
        put_string(out, &self.url);
        out.extend_from_slice(&self.last_seen.to_le_bytes());
    }
}

impl Decode for NodeRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeRecord {
            node_id: PublicKey(r.array()?),
            url: r.string("node url", MAX_URL)?,
            last_seen: r.u64()?,
        })
    }
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

/// Why a peer's data was refused (sent before disconnecting, or as a notice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Whether the sender is about to disconnect.
    pub fatal: bool,
    pub reason: String,
}

/// Every message of the protocol.
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

const T_HELLO: u8 = 0;
const T_AUTH: u8 = 1;
const T_GETNODES: u8 = 2;
const T_NODES: u8 = 3;
const T_INV: u8 = 4;
const T_GETDATA: u8 = 5;
const T_NOTFOUND: u8 = 6;
const T_GETHEADERS: u8 = 7;
const T_HEADERS: u8 = 8;
const T_BLOCK: u8 = 9;
const T_TX: u8 = 10;
const T_PING: u8 = 11;
const T_PONG: u8 = 12;
const T_NOTICE: u8 = 13;
const T_SENDBLOCKS: u8 = 14;

/// Largest encoding each type may have (type byte included).
fn max_size(kind: u8) -> usize {
    match kind {
        T_HELLO => 1 + 4 + 32 + 32 + 1 + 1 + 2 + MAX_URL + 32 + 10 + 32 + 32 + 1 + MAX_AGENT,
        T_AUTH => 1 + 64,
        T_GETNODES => 1,
        T_NODES => 1 + 3 + MAX_ADDRS * (32 + 2 + MAX_URL + 8),
        T_INV | T_GETDATA | T_NOTFOUND => 1 + 2 + MAX_INV * 33,
        T_GETHEADERS => 1 + 1 + MAX_LOCATOR * 32 + 32,
        T_HEADERS => 1 + 2 + MAX_HEADERS * HEADER_SIZE,
        T_PING | T_PONG => 1 + 8,
        T_NOTICE => 1 + 1 + 2 + MAX_REASON,
        T_SENDBLOCKS => 1,
        _ => MAX_MESSAGE_SIZE,
    }
}

impl Message {
    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Auth(_) => "auth",
            Message::GetNodes => "getnodes",
            Message::Nodes(_) => "nodes",
            Message::Inv(_) => "inv",
            Message::GetData(_) => "getdata",
            Message::NotFound(_) => "notfound",
            Message::GetHeaders { .. } => "getheaders",
            Message::Headers(_) => "headers",
            Message::Block(_) => "block",
            Message::Tx(_) => "tx",
            Message::Ping(_) => "ping",
            Message::Pong(_) => "pong",
            Message::Notice(_) => "notice",
            Message::SendBlocks => "sendblocks",
        }
    }

    /// Decodes one message, checking its size against its type's cap first.
    pub fn from_bytes(bytes: &[u8]) -> Result<Message, WireError> {
        let kind = *bytes.first().ok_or(WireError::Empty)?;
        if !(T_HELLO..=T_SENDBLOCKS).contains(&kind) {
            return Err(WireError::UnknownType(kind));
        }
        let max = max_size(kind).min(MAX_MESSAGE_SIZE);
        if bytes.len() > max {
            return Err(WireError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        Message::decode(bytes).map_err(|error| WireError::Decode {
            kind: type_name(kind),
            error,
        })
    }
}

fn type_name(kind: u8) -> &'static str {
    [
        "hello",
        "auth",
        "getnodes",
        "nodes",
        "inv",
        "getdata",
        "notfound",
        "getheaders",
        "headers",
        "block",
        "tx",
        "ping",
        "pong",
        "notice",
        "sendblocks",
    ]
    .get(kind as usize)
    .copied()
    .unwrap_or("unknown")
}

fn put_items(out: &mut Vec<u8>, items: &[InvItem]) {
    put_varint(out, items.len() as u64);
    for i in items {
        out.push(match i.kind {
            InvKind::Block => 0,
            InvKind::Tx => 1,
        });
        out.extend_from_slice(&i.hash.0);
    }
}

fn read_items(r: &mut Reader<'_>) -> Result<Vec<InvItem>, DecodeError> {
    r.list("inventory", MAX_INV, |r| {
        let kind = match r.u8()? {
            0 => InvKind::Block,
            1 => InvKind::Tx,
            tag => {
                return Err(DecodeError::InvalidTag {
                    field: "inventory kind",
                    tag,
                });
            }
        };
        Ok(InvItem {
            kind,
            hash: Hash256(r.array()?),
        })
    })
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_var_bytes(out, s.as_bytes());
}

impl Encode for Message {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(h) => {
                out.push(T_HELLO);
                out.extend_from_slice(&h.version.to_le_bytes());
                out.extend_from_slice(h.network.as_bytes());
                out.extend_from_slice(&h.node_id.0);
                out.push(match h.kind {
                    NodeKind::Browser => 0,
                    NodeKind::Relay => 1,
                });
                match &h.url {
                    Some(u) => {
                        out.push(1);
                        put_string(out, u);
                    }
                    None => out.push(0),
                }
                out.extend_from_slice(h.best_hash.as_bytes());
                put_varint(out, h.best_height.0);
                out.extend_from_slice(&h.best_work.to_be_bytes());
                out.extend_from_slice(&h.challenge);
                put_string(out, &h.agent);
            }
            Message::Auth(sig) => {
                out.push(T_AUTH);
                out.extend_from_slice(&sig.0);
            }
            Message::GetNodes => out.push(T_GETNODES),
            Message::Nodes(list) => {
                out.push(T_NODES);
                put_varint(out, list.len() as u64);
                for n in list {
                    n.encode_to(out);
                }
            }
            Message::Inv(items) => {
                out.push(T_INV);
                put_items(out, items);
            }
            Message::GetData(items) => {
                out.push(T_GETDATA);
                put_items(out, items);
            }
            Message::NotFound(items) => {
                out.push(T_NOTFOUND);
                put_items(out, items);
            }
            Message::GetHeaders { locator, stop } => {
                out.push(T_GETHEADERS);
                put_varint(out, locator.len() as u64);
                for h in locator {
                    out.extend_from_slice(h.as_bytes());
                }
                out.extend_from_slice(stop.as_bytes());
            }
            Message::Headers(hs) => {
                out.push(T_HEADERS);
                put_varint(out, hs.len() as u64);
                for h in hs {
                    h.encode_to(out);
                }
            }
            Message::Block(b) => {
                out.push(T_BLOCK);
                b.encode_to(out);
            }
            Message::Tx(t) => {
                out.push(T_TX);
                t.encode_to(out);
            }
            Message::Ping(n) => {
                out.push(T_PING);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Message::Pong(n) => {
                out.push(T_PONG);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Message::Notice(n) => {
                out.push(T_NOTICE);
                out.push(u8::from(n.fatal));
                put_string(out, &n.reason);
            }
            Message::SendBlocks => out.push(T_SENDBLOCKS),
        }
    }
}

impl Decode for Message {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            T_HELLO => Message::Hello(Hello {
                version: r.u32()?,
                network: BlockHash::from_bytes(r.array()?),
                node_id: PublicKey(r.array()?),
                kind: match r.u8()? {
                    0 => NodeKind::Browser,
                    1 => NodeKind::Relay,
                    tag => {
                        return Err(DecodeError::InvalidTag {
                            field: "node kind",
                            tag,
                        });
                    }
                },
                url: if r.bool("url flag")? {
                    Some(r.string("url", MAX_URL)?)
                } else {
                    None
                },
                best_hash: BlockHash::from_bytes(r.array()?),
                best_height: Height(r.varint()?),
                best_work: Work::from_u256(U256::from_be_bytes(r.array()?)),
                challenge: r.array()?,
                agent: r.string("agent", MAX_AGENT)?,
            }),
            T_AUTH => Message::Auth(Signature(r.array()?)),
            T_GETNODES => Message::GetNodes,
            T_NODES => Message::Nodes(r.list("nodes", MAX_ADDRS, NodeRecord::decode_from)?),
            T_INV => Message::Inv(read_items(r)?),
            T_GETDATA => Message::GetData(read_items(r)?),
            T_NOTFOUND => Message::NotFound(read_items(r)?),
            T_GETHEADERS => Message::GetHeaders {
                locator: r.list("locator", MAX_LOCATOR, |r| {
                    Ok(BlockHash::from_bytes(r.array()?))
                })?,
                stop: BlockHash::from_bytes(r.array()?),
            },
            T_HEADERS => {
                Message::Headers(r.list("headers", MAX_HEADERS, BlockHeader::decode_from)?)
            }
            T_BLOCK => Message::Block(Block::decode_from(r)?),
            T_TX => Message::Tx(Transaction::decode_from(r)?),
            T_PING => Message::Ping(r.u64()?),
            T_PONG => Message::Pong(r.u64()?),
            T_NOTICE => Message::Notice(Notice {
                fatal: r.bool("fatal flag")?,
                reason: r.string("reason", MAX_REASON)?,
            }),
            T_SENDBLOCKS => Message::SendBlocks,
            tag => {
                return Err(DecodeError::InvalidTag {
                    field: "message type",
                    tag,
                });
            }
        })
    }
}

const AUTH_TAG: &[u8] = b"tabcoin/auth/v2";

/// What a node signs to prove its id on one connection: the network, both challenges of the
/// connection (the one the signer sent in its own `hello`, then the one the verifier sent)
/// and both node ids (the signer's, then the one the verifier claimed). Binding all of them
/// means a signature obtained on one connection proves nothing on another.
pub fn auth_message(
    network: &BlockHash,
    signer_challenge: &[u8; 32],
    verifier_challenge: &[u8; 32],
    signer: &PublicKey,
    verifier: &PublicKey,
) -> Hash256 {
    sha256d_parts(&[
        AUTH_TAG,
        network.as_bytes(),
        signer_challenge,
        verifier_challenge,
        &signer.0,
        &verifier.0,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::tests::{arb_block, arb_block_hash, arb_hash, arb_header, arb_tx};
    use alloc::vec;
    use proptest::prelude::*;

    fn arb_items() -> impl Strategy<Value = Vec<InvItem>> {
        proptest::collection::vec(
            (any::<bool>(), arb_hash()).prop_map(|(b, hash)| InvItem {
                kind: if b { InvKind::Block } else { InvKind::Tx },
                hash,
            }),
            0..5,
        )
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (
                any::<u32>(),
                arb_block_hash(),
                any::<[u8; 32]>(),
                any::<bool>(),
                proptest::option::of("[a-z:/.0-9]{0,40}"),
                arb_block_hash(),
                any::<u64>(),
                any::<[u8; 32]>(),
                any::<[u8; 32]>(),
                "[ -~]{0,20}"
            )
                .prop_map(
                    |(version, network, id, relay, url, best_hash, h, work, challenge, agent)| {
                        Message::Hello(Hello {
                            version,
                            network,
                            node_id: PublicKey(id),
                            kind: if relay {
                                NodeKind::Relay
                            } else {
                                NodeKind::Browser
                            },
                            url,
                            best_hash,
                            best_height: Height(h),
                            best_work: Work::from_u256(U256::from_be_bytes(work)),
                            challenge,
                            agent,
                        })
                    }
                ),
            (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
                let mut s = [0u8; 64];
                s[..32].copy_from_slice(&a);
                s[32..].copy_from_slice(&b);
                Message::Auth(Signature(s))
            }),
            Just(Message::GetNodes),
            proptest::collection::vec((any::<[u8; 32]>(), "[a-z:/.0-9]{0,40}", any::<u64>()), 0..4)
                .prop_map(|v| Message::Nodes(
                    v.into_iter()
                        .map(|(id, url, last_seen)| NodeRecord {
                            node_id: PublicKey(id),
                            url,
                            last_seen
                        })
                        .collect()
                )),
            arb_items().prop_map(Message::Inv),
            arb_items().prop_map(Message::GetData),
            arb_items().prop_map(Message::NotFound),
            (
                proptest::collection::vec(arb_block_hash(), 0..5),
                arb_block_hash()
            )
                .prop_map(|(locator, stop)| Message::GetHeaders { locator, stop }),
            proptest::collection::vec(arb_header(), 0..4).prop_map(Message::Headers),
            arb_block().prop_map(Message::Block),
            arb_tx().prop_map(Message::Tx),
            any::<u64>().prop_map(Message::Ping),
            any::<u64>().prop_map(Message::Pong),
            (any::<bool>(), "\\PC{0,40}")
                .prop_map(|(fatal, reason)| Message::Notice(Notice { fatal, reason })),
            Just(Message::SendBlocks),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(m in arb_message()) {
            let bytes = m.encode();
            prop_assert_eq!(Message::from_bytes(&bytes).unwrap(), m);
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(Message::from_bytes(&longer).is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(m) = Message::from_bytes(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }
    }

    #[test]
    fn size_caps_are_checked_before_decoding() {
        let mut ping = Message::Ping(1).encode();
        ping.extend_from_slice(&[0; 100]);
        assert_eq!(
            Message::from_bytes(&ping),
            Err(WireError::TooLarge { size: 109, max: 9 })
        );
        assert_eq!(Message::from_bytes(&[]), Err(WireError::Empty));
        assert_eq!(
            Message::from_bytes(&[200]),
            Err(WireError::UnknownType(200))
        );
        let huge = alloc::vec![T_BLOCK; MAX_MESSAGE_SIZE + 1];
        assert!(matches!(
            Message::from_bytes(&huge),
            Err(WireError::TooLarge { .. })
        ));
        // A headers message claiming more headers than allowed is refused by its count.
        let mut h = alloc::vec![T_HEADERS];
        put_varint(&mut h, (MAX_HEADERS + 1) as u64);
        assert!(matches!(
            Message::from_bytes(&h),
            Err(WireError::Decode {
                kind: "headers",
                ..
            })
        ));
    }

    #[test]
    fn auth_message_binds_both_challenges_and_both_ids() {
        // The example of docs/PROTOCOL.md §3.7: the node of seed 01 (whose hello carried the
        // challenge 07…07) proves its id to the node of seed 02 (challenge 08…08).
        let g = crate::params::Params::main().genesis_hash();
        let signer = crate::sig::Keypair::from_seed(&[1; 32]);
        let (s, v) = (
            signer.public_key(),
            crate::sig::Keypair::from_seed(&[2; 32]).public_key(),
        );
        let m = auth_message(&g, &[7; 32], &[8; 32], &s, &v);
        assert_eq!(
            crate::hash::to_hex(&m.0),
            "14eb57d55ab10d086b79774775885da86e4cfbae045518cc6cfd89837bdb1a45"
        );
        assert_eq!(
            crate::hash::to_hex(&signer.sign(&m.0).0),
            "6c590b65b4eb08ff4db7042e3db5d3e96945e9c088bf9e9f7a7db8a4ec8395b3\
             e8d5165f1e958a008278d53a00ec3bbf50d0692bfab72e9ab35a567319328d03"
        );
        // Every part is bound, in its place.
        let other = BlockHash::from_bytes([9; 32]);
        for changed in [
            auth_message(&other, &[7; 32], &[8; 32], &s, &v),
            auth_message(&g, &[8; 32], &[7; 32], &s, &v),
            auth_message(&g, &[7; 32], &[9; 32], &s, &v),
            auth_message(&g, &[7; 32], &[8; 32], &v, &s),
            auth_message(&g, &[7; 32], &[8; 32], &s, &s),
        ] {
            assert_ne!(changed, m);
        }
    }

    #[test]
    fn largest_messages_fit_their_caps() {
        let header = BlockHeader::decode(&[0u8; HEADER_SIZE]).unwrap();
        let m = Message::Headers(alloc::vec![header; MAX_HEADERS]);
        assert!(Message::from_bytes(&m.encode()).is_ok());
        let rec = NodeRecord {
            node_id: PublicKey([1; 32]),
            url: "w".repeat(MAX_URL),
            last_seen: 1,
        };
        let m = Message::Nodes(alloc::vec![rec; MAX_ADDRS]);
        assert!(Message::from_bytes(&m.encode()).is_ok());
        let items = alloc::vec![InvItem::tx(Txid::ZERO); MAX_INV];
        assert!(Message::from_bytes(&Message::GetData(items).encode()).is_ok());
    }
}
