//! The codec of [`Message`]: type bytes, per-type size caps checked before decoding, and
//! the canonical encoding of every message body.

use super::*;
use crate::encode::{Decode, DecodeError, Encode, Reader, put_var_bytes, put_varint};
use crate::hash::Hash256;
use crate::primitives::{Block, BlockHash, BlockHeader, HEADER_SIZE, Transaction};
use crate::sig::{PublicKey, Signature};
use crate::units::{Height, U256, Work};
use alloc::vec::Vec;

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
const T_CMPCTBLOCK: u8 = 15;
const T_GETBLOCKTXN: u8 = 16;
const T_BLOCKTXN: u8 = 17;
/// The highest type byte this version knows.
const T_LAST: u8 = T_BLOCKTXN;

/// Whether an encoded message (`frame`, as it came off the socket) carries block bodies: a
/// `block` or a `blocktxn`. A node receives these only in reply to its own requests (at most
/// its download window in flight, PROTOCOL §6.5) or pushed by a peer it asked to push (§7.4),
/// and penalises any other (`Offence::UnsolicitedBlock`, `Offence::WrongBlockTxn`), so hosts
/// leave them out of per-peer message-rate limits, which would otherwise cut a sync (§10.1).
pub fn carries_block_bodies(frame: &[u8]) -> bool {
    matches!(frame.first(), Some(&T_BLOCK | &T_BLOCKTXN))
}

/// Largest encoding each type may have (type byte included).
fn max_size(kind: u8) -> usize {
    match kind {
        T_HELLO => {
            1 + 4
                + 8
                + 32
                + 32
                + 1
                + 1
                + MAX_RECORD_SIZE
                + 1
                + 2
                + MAX_URL
                + 32
                + 10
                + 32
                + 32
                + 1
                + MAX_AGENT
                + 10
                + MAX_HELLO_EXTRA
        }
        T_AUTH => 1 + 64,
        T_GETNODES => 1,
        T_NODES => 1 + 3 + MAX_ADDRS * MAX_RECORD_SIZE,
        T_INV | T_GETDATA | T_NOTFOUND => 1 + 2 + MAX_INV * 33,
        T_GETHEADERS => 1 + 1 + MAX_LOCATOR * 32 + 32,
        T_HEADERS => 1 + 2 + MAX_HEADERS * HEADER_SIZE,
        T_PING | T_PONG => 1 + 8,
        T_NOTICE => 1 + 1 + 2 + MAX_REASON,
        T_SENDBLOCKS => 1,
        T_GETBLOCKTXN => 1 + 32 + 3 + MAX_COMPACT_TXS * 5,
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
            Message::CmpctBlock(_) => "cmpctblock",
            Message::GetBlockTxn { .. } => "getblocktxn",
            Message::BlockTxn { .. } => "blocktxn",
        }
    }

    /// Decodes one message, checking its size against its type's cap first.
    pub fn from_bytes(bytes: &[u8]) -> Result<Message, WireError> {
        let kind = *bytes.first().ok_or(WireError::Empty)?;
        if !(T_HELLO..=T_LAST).contains(&kind) {
            return Err(WireError::UnknownType(kind));
        }
        // An old `hello` is named as such before its layout (which may differ) is read.
        if kind == T_HELLO {
            if let Some(v) = bytes.get(1..5) {
                let v = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                if v < MIN_PROTOCOL_VERSION {
                    return Err(WireError::OldVersion(v));
                }
            }
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
        "cmpctblock",
        "getblocktxn",
        "blocktxn",
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

/// A transaction index: a varint that fits a `u32`. Their order is the node's rule.
fn read_index(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    u32::try_from(r.varint()?).map_err(|_| DecodeError::OutOfRange {
        field: "transaction index",
    })
}

pub(super) fn put_string(out: &mut Vec<u8>, s: &str) {
    put_var_bytes(out, s.as_bytes());
}

/// The `block` message for `block`, encoded from a reference: the same bytes as
/// `Message::Block(block.clone()).encode()` without copying the block first.
pub fn block_message(block: &Block) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + block.encoded_len());
    out.push(T_BLOCK);
    block.encode_to(&mut out);
    out
}

impl Encode for Message {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Hello(h) => {
                out.push(T_HELLO);
                out.extend_from_slice(&h.version.to_le_bytes());
                out.extend_from_slice(&h.features.to_le_bytes());
                out.extend_from_slice(h.network.as_bytes());
                out.extend_from_slice(&h.node_id.0);
                out.push(match h.kind {
                    NodeKind::Browser => 0,
                    NodeKind::Relay => 1,
                });
                match &h.record {
                    Some(r) => {
                        out.push(1);
                        r.encode_to(out);
                    }
                    None => out.push(0),
                }
                match &h.dialed {
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
                if h.version >= KEPT_FROM_VERSION {
                    put_varint(out, h.kept_from.0);
                }
                out.extend_from_slice(&h.extra);
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
            Message::CmpctBlock(c) => {
                out.push(T_CMPCTBLOCK);
                c.header.encode_to(out);
                out.extend_from_slice(&c.nonce.to_le_bytes());
                put_varint(out, c.short_ids.len() as u64);
                for id in &c.short_ids {
                    out.extend_from_slice(&id.0);
                }
                put_varint(out, c.prefilled.len() as u64);
                for p in &c.prefilled {
                    put_varint(out, u64::from(p.index));
                    p.tx.encode_to(out);
                }
            }
            Message::GetBlockTxn { block, indexes } => {
                out.push(T_GETBLOCKTXN);
                out.extend_from_slice(block.as_bytes());
                put_varint(out, indexes.len() as u64);
                for i in indexes {
                    put_varint(out, u64::from(*i));
                }
            }
            Message::BlockTxn { block, txs } => {
                out.push(T_BLOCKTXN);
                out.extend_from_slice(block.as_bytes());
                put_varint(out, txs.len() as u64);
                for t in txs {
                    t.encode_to(out);
                }
            }
        }
    }
}

impl Decode for Message {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            T_HELLO => {
                let mut h = Hello {
                    version: r.u32()?,
                    features: r.u64()?,
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
                    record: if r.bool("record flag")? {
                        Some(NodeRecord::decode_from(r)?)
                    } else {
                        None
                    },
                    dialed: if r.bool("dialed flag")? {
                        Some(r.string("dialed url", MAX_URL)?)
                    } else {
                        None
                    },
                    best_hash: BlockHash::from_bytes(r.array()?),
                    best_height: Height(r.varint()?),
                    best_work: Work::from_u256(U256::from_be_bytes(r.array()?)),
                    challenge: r.array()?,
                    agent: r.string("agent", MAX_AGENT)?,
                    kept_from: Height(0),
                    extra: Vec::new(),
                };
                if h.version >= KEPT_FROM_VERSION {
                    h.kept_from = Height(r.varint()?);
                }
                // A later version may append fields; this one keeps them only to re-encode.
                if h.version > PROTOCOL_VERSION {
                    let n = r.remaining().min(MAX_HELLO_EXTRA);
                    h.extra = r.bytes(n)?.to_vec();
                }
                Message::Hello(h)
            }
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
            T_CMPCTBLOCK => {
                let header = BlockHeader::decode_from(r)?;
                let nonce = r.u64()?;
                let short_ids =
                    r.list("short ids", MAX_COMPACT_TXS, |r| Ok(ShortId(r.array()?)))?;
                let prefilled = r.list("prefilled", MAX_COMPACT_TXS, |r| {
                    Ok(PrefilledTx {
                        index: read_index(r)?,
                        tx: Transaction::decode_from(r)?,
                    })
                })?;
                Message::CmpctBlock(CompactBlock {
                    header,
                    nonce,
                    short_ids,
                    prefilled,
                })
            }
            T_GETBLOCKTXN => Message::GetBlockTxn {
                block: BlockHash::from_bytes(r.array()?),
                indexes: r.list("indexes", MAX_COMPACT_TXS, read_index)?,
            },
            T_BLOCKTXN => Message::BlockTxn {
                block: BlockHash::from_bytes(r.array()?),
                txs: r.list("transactions", MAX_COMPACT_TXS, Transaction::decode_from)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    field: "message type",
                    tag,
                });
            }
        })
    }
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

    fn arb_record() -> impl Strategy<Value = NodeRecord> {
        (
            any::<[u8; 32]>(),
            "[a-z:/.0-9]{0,40}",
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
        )
            .prop_map(|(id, url, last_seen, expires, sig)| {
                let mut s = [0u8; 64];
                s[..32].copy_from_slice(&sig);
                NodeRecord {
                    node_id: PublicKey(id),
                    url,
                    last_seen,
                    expires,
                    signature: Signature(s),
                }
            })
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (
                (
                    prop_oneof![Just(PROTOCOL_VERSION), (PROTOCOL_VERSION + 1)..],
                    any::<u64>(),
                    proptest::collection::vec(any::<u8>(), 0..8),
                    proptest::option::of(arb_record()),
                    proptest::option::of("[a-z:/.0-9]{0,40}"),
                ),
                arb_block_hash(),
                any::<[u8; 32]>(),
                any::<bool>(),
                arb_block_hash(),
                any::<u64>(),
                any::<[u8; 32]>(),
                any::<[u8; 32]>(),
                "[ -~]{0,20}"
            )
                .prop_map(
                    |(
                        (version, features, extra, record, dialed),
                        network,
                        id,
                        relay,
                        best_hash,
                        h,
                        work,
                        challenge,
                        agent,
                    )| {
                        Message::Hello(Hello {
                            version,
                            features,
                            network,
                            node_id: PublicKey(id),
                            kind: if relay {
                                NodeKind::Relay
                            } else {
                                NodeKind::Browser
                            },
                            record,
                            dialed,
                            best_hash,
                            best_height: Height(h),
                            best_work: Work::from_u256(U256::from_be_bytes(work)),
                            challenge,
                            agent,
                            kept_from: Height(if version >= KEPT_FROM_VERSION {
                                h / 2
                            } else {
                                0
                            }),
                            extra: if version > PROTOCOL_VERSION {
                                extra
                            } else {
                                Vec::new()
                            },
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
            proptest::collection::vec(arb_record(), 0..4).prop_map(Message::Nodes),
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
            (
                arb_header(),
                any::<u64>(),
                proptest::collection::vec(any::<[u8; 6]>(), 0..5),
                proptest::collection::vec((any::<u32>(), arb_tx()), 0..3)
            )
                .prop_map(|(header, nonce, ids, pre)| {
                    Message::CmpctBlock(CompactBlock {
                        header,
                        nonce,
                        short_ids: ids.into_iter().map(ShortId).collect(),
                        prefilled: pre
                            .into_iter()
                            .map(|(index, tx)| PrefilledTx { index, tx })
                            .collect(),
                    })
                }),
            (
                arb_block_hash(),
                proptest::collection::vec(any::<u32>(), 0..6)
            )
                .prop_map(|(block, indexes)| Message::GetBlockTxn { block, indexes }),
            (arb_block_hash(), proptest::collection::vec(arb_tx(), 0..3))
                .prop_map(|(block, txs)| Message::BlockTxn { block, txs }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(m in arb_message()) {
            let bytes = m.encode();
            // Only a `hello` of a later version may carry bytes this version does not know.
            let later = matches!(&m, Message::Hello(h) if h.version > PROTOCOL_VERSION);
            prop_assert_eq!(Message::from_bytes(&bytes).unwrap(), m);
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert_eq!(Message::from_bytes(&longer).is_err(), !later);
        }

        #[test]
        fn a_block_message_from_a_reference_is_the_message_encoding(b in arb_block()) {
            let bytes = block_message(&b);
            prop_assert_eq!(bytes.len(), 1 + b.encoded_len());
            prop_assert_eq!(bytes, Message::Block(b).encode());
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
        // A version 1 `hello` is named as such, whatever follows.
        assert_eq!(
            Message::from_bytes(&[T_HELLO, 1, 0, 0, 0, 9]),
            Err(WireError::OldVersion(1))
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

    /// The `auth` example of docs/PROTOCOL.md §3.7.
    const AUTH_EXAMPLE_HASH: &str =
        "9a3e49c1c3fee29da4519f400b3193f9586f029d0b999000da328eb8ce72e5ae";
    const AUTH_EXAMPLE_SIG: &str = "04c34f1bf0e0d0f6f643fa10c41ab4853678c8c87a7a178852097b4d035582b2\
                                    b207858576c48748d8de4c181a70dd38fd6ae5fdeb93307f1891fbfe02f0d901";

    #[test]
    fn auth_message_binds_both_challenges_both_ids_and_the_url() {
        // The example of docs/PROTOCOL.md §3.7: the node of seed 01 (whose hello carried the
        // challenge 07…07) proves its id to the node of seed 02 (challenge 08…08).
        let g = crate::params::Params::main().genesis_hash();
        let signer = crate::sig::Keypair::from_seed(&[1; 32]);
        let (s, v) = (
            signer.public_key(),
            crate::sig::Keypair::from_seed(&[2; 32]).public_key(),
        );
        let url = "wss://relay.example/ws";
        let m = auth_message(&g, &[7; 32], &[8; 32], &s, &v, url);
        assert_eq!(crate::hash::to_hex(&m.0), AUTH_EXAMPLE_HASH);
        assert_eq!(crate::hash::to_hex(&signer.sign(&m.0).0), AUTH_EXAMPLE_SIG);
        // Every part is bound, in its place.
        let other = BlockHash::from_bytes([9; 32]);
        for changed in [
            auth_message(&other, &[7; 32], &[8; 32], &s, &v, url),
            auth_message(&g, &[8; 32], &[7; 32], &s, &v, url),
            auth_message(&g, &[7; 32], &[9; 32], &s, &v, url),
            auth_message(&g, &[7; 32], &[8; 32], &v, &s, url),
            auth_message(&g, &[7; 32], &[8; 32], &s, &s, url),
            auth_message(&g, &[7; 32], &[8; 32], &s, &v, "wss://proxy.example/ws"),
            auth_message(&g, &[7; 32], &[8; 32], &s, &v, ""),
        ] {
            assert_ne!(changed, m);
        }
    }

    #[test]
    fn largest_messages_fit_their_caps() {
        let header = BlockHeader::decode(&[0u8; HEADER_SIZE]).unwrap();
        let m = Message::Headers(alloc::vec![header; MAX_HEADERS]);
        assert!(Message::from_bytes(&m.encode()).is_ok());
        let rec = NodeRecord::sign(
            &crate::sig::Keypair::from_seed(&[1; 32]),
            &BlockHash::from_bytes([0; 32]),
            "w".repeat(MAX_URL),
            1,
        );
        let m = Message::Nodes(alloc::vec![rec.clone(); MAX_ADDRS]);
        assert!(m.encode().len() <= max_size(T_NODES));
        assert!(Message::from_bytes(&m.encode()).is_ok());
        let hello = Hello {
            version: u32::MAX,
            features: u64::MAX,
            network: BlockHash::from_bytes([0; 32]),
            node_id: PublicKey([1; 32]),
            kind: NodeKind::Relay,
            record: Some(rec),
            dialed: Some("w".repeat(MAX_URL)),
            best_hash: BlockHash::from_bytes([0; 32]),
            best_height: Height(u64::MAX),
            best_work: Work::from_u256(U256::from_be_bytes([0xff; 32])),
            challenge: [0; 32],
            agent: "a".repeat(MAX_AGENT),
            kept_from: Height(u64::MAX),
            extra: alloc::vec![0; MAX_HELLO_EXTRA],
        };
        let m = Message::Hello(hello);
        assert_eq!(m.encode().len(), max_size(T_HELLO));
        assert_eq!(Message::from_bytes(&m.encode()), Ok(m));
        let items = alloc::vec![InvItem::tx(Txid::ZERO); MAX_INV];
        assert!(Message::from_bytes(&Message::GetData(items).encode()).is_ok());
    }
}
