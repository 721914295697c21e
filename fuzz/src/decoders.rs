//! Decoder targets: whatever the bytes, decoding returns a typed error or a value whose
//! canonical encoding is exactly the input (one encoding per value), and what the core does
//! next with a decoded value (stateless checks, loading, dialing) does not panic.

use std::collections::BTreeSet;

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::{Decode, Encode};
use tabcoin_core::node::{Input, Node, NodeConfig, Output};
use tabcoin_core::primitives::{Block, BlockHeader, HEADER_SIZE, Transaction};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::validation::{check_block, check_header, check_tx};
use tabcoin_core::wire::{Message, NodeKind};

use crate::fixture;

/// Message type byte of `nodes` on the wire.
const T_NODES: u8 = 3;

fn assert_canonical<T: Encode + std::fmt::Debug>(value: &T, input: &[u8]) {
    let again = value.encode();
    assert_eq!(again, input, "decoded {value:?} re-encodes differently");
    assert_eq!(value.encoded_len(), input.len());
}

pub fn decode_header(data: &[u8]) {
    let Ok(header) = BlockHeader::decode(data) else {
        return;
    };
    assert_canonical(&header, data);
    let fixed: &[u8; HEADER_SIZE] = data.try_into().expect("a header is exactly HEADER_SIZE");
    assert_eq!(BlockHeader::from_bytes(fixed), header);
    assert_eq!(header.to_bytes(), *fixed);
    let _ = check_header(&header, &fixture().params);
}

pub fn decode_tx(data: &[u8]) {
    let Ok(tx) = Transaction::decode(data) else {
        return;
    };
    assert_canonical(&tx, data);
    let params = &fixture().params;
    let _ = tx.txid();
    let _ = tx.post();
    // Its own outputs stand in for the spent ones: any list of outputs must hash.
    let _ = tx.sighash(&params.genesis_hash(), &tx.outputs);
    let _ = check_tx(&tx, params);
}

pub fn decode_block(data: &[u8]) {
    let Ok(block) = Block::decode(data) else {
        return;
    };
    assert_canonical(&block, data);
    let _ = block.compute_merkle_root();
    if let Ok(_checked) = check_block(&block, &fixture().params) {
        // A block that passes the stateless checks travels as one wire message.
        let msg = Message::Block(block.clone()).encode();
        assert_eq!(
            Message::from_bytes(&msg),
            Ok(Message::Block(block)),
            "a checked block does not fit its wire message"
        );
    }
}

pub fn decode_message(data: &[u8]) {
    let Ok(msg) = Message::from_bytes(data) else {
        return;
    };
    assert_canonical(&msg, data);
    let _ = msg.name();
}

pub fn decode_changeset(data: &[u8]) {
    let Ok(cs) = ChangeSet::decode(data) else {
        return;
    };
    assert_canonical(&cs, data);
    let params = fixture().params.clone();
    // Loading what a (corrupt) store holds is an error or a state, never a panic.
    let _ = Chain::load(params.clone(), cs.clone());
    let _ = Node::new(NodeConfig::new(NodeKind::Relay, [9; 32]), params, cs);
}

/// The relay records of a `nodes` message (the body after the type byte), and the same
/// records as stored ones: both decode, a node loads them and decides what to dial.
pub fn decode_node_records(data: &[u8]) {
    let mut msg = Vec::with_capacity(data.len() + 1);
    msg.push(T_NODES);
    msg.extend_from_slice(data);
    let Ok(Message::Nodes(records)) = Message::from_bytes(&msg) else {
        return;
    };
    assert_canonical(&Message::Nodes(records.clone()), &msg);
    let mut stored = ChangeSet::default();
    for r in &records {
        stored.nodes.insert(r.url.clone(), Some(r.clone()));
    }
    let bytes = stored.encode();
    assert_eq!(ChangeSet::decode(&bytes).as_ref(), Ok(&stored));

    let f = fixture();
    let mut config = NodeConfig::new(NodeKind::Relay, [9; 32]);
    config.public_url = Some(String::from("wss://fuzz.example/ws"));
    let Ok(mut node) = Node::new(config, f.params.clone(), stored.clone()) else {
        return;
    };
    let known: BTreeSet<String> = stored.nodes.keys().cloned().collect();
    let now_ms = f.now * 1000;
    for t in 0..3 {
        node.handle(now_ms + t * 60_000, Input::Tick);
        while let Some(out) = node.poll_output() {
            if let Output::Dial { url } = out {
                assert!(
                    known.contains(&url),
                    "dialed {url:?}, which no record named"
                );
            }
        }
    }
    let _ = node.known_nodes();
}
