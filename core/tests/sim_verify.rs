//! Parallel signature checks through the sans-IO round trip: `Output::VerifySigs`, chunk
//! results delivered late, out of order, stale; and the same rejection, error and peer
//! penalty as verifying in place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MINUTE, bans, closed};
use tabcoin_core::chain::ChainError;
use tabcoin_core::encode::Encode;
use tabcoin_core::node::{Event, Input};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash};
use tabcoin_core::sim::Sim;
use tabcoin_core::testkit::{block_with, funded_chain, payments, seal, wallet};
use tabcoin_core::validation::{BlockError, TxError};
use tabcoin_core::wallet::Wallet;
use tabcoin_core::wire::{InvId, Message, NodeKind};

/// What a node did with the scenario's blocks.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    tip_after_good: BlockHash,
    tip_after_bad: BlockHash,
    rejected: Vec<String>,
    bans: Vec<String>,
    closed: bool,
}

/// Announces `block` from the raw peer, waits for the node's `getdata`, sends it.
fn send_block(sim: &mut Sim, raw: usize, p: tabcoin_core::node::PeerId, block: &Block) {
    sim.raw_send(raw, p, Message::Headers(vec![block.header]).encode());
    let hash = block.hash();
    let asked = sim.run_until_for(5_000, |s| {
        s.raw_messages(raw, p).iter().any(|m| {
            matches!(m, Message::GetData(items) if items.iter().any(|i| i.id() == InvId::Block(hash)))
        })
    });
    assert!(asked, "the node should request the announced block");
    sim.raw_send(raw, p, Message::Block(block.clone()).encode());
}

/// A relay, verifying in place or through 3-chunk jobs whose results the test holds, gets a
/// good 9-payment block and then one whose 5th payment (job item 4, chunk 1) has a bad
/// signature, both from a raw peer.
fn scenario(parallel: bool) -> Seen {
    let params = Params::test();
    let payers: Vec<Wallet> = (1..=3).map(|i| wallet(i, &params)).collect();
    let keys: Vec<_> = payers.iter().map(Wallet::public_key).collect();
    let (mut chain, stored) = funded_chain(&params, &keys, 4);
    let miner = wallet(9, &params).public_key();

    let mut sim = Sim::new(params.clone());
    let mut c = Sim::config(NodeKind::Relay, 1, &[]);
    c.parallel_verify = parallel;
    let node = sim.add_node(c, stored);
    sim.set_verify_host(node, 3, true);
    let raw = sim.add_raw();
    let p = sim.raw_connect(raw, node, "10.0.0.80");
    sim.raw_handshake(raw, p, [0xb1; 32]);
    sim.run_for(MINUTE / 6);
    let start = sim.node(node).chain().tip().hash;
    assert_eq!(start, chain.tip().hash);

    let good = block_with(&chain, &payments(&chain, &payers, 9), miner, b"good");
    chain.accept_block(&good, good.header.time).unwrap();
    send_block(&mut sim, raw, p, &good);
    sim.run_for(1_000);
    if parallel {
        assert_eq!(sim.held_verifications(node).len(), 3);
        assert_eq!(
            sim.node(node).chain().tip().hash,
            start,
            "committed before verified"
        );
        let held = sim.held_verifications(node).to_vec();
        assert_eq!(
            held.iter().map(|(_, r)| r.start).collect::<Vec<_>>(),
            [0, 3, 6]
        );
        // A result of a ticket the node never issued changes nothing.
        sim.input(
            node,
            Input::SigsVerified {
                ticket: held[0].0 + 1_000,
                result: held[0].1,
            },
        );
        // Late and out of order: the last chunk, then the first; the middle one last.
        sim.release_verifications(node, &[2, 0]);
        assert_eq!(sim.node(node).chain().tip().hash, start);
        assert_eq!(sim.node(node).chain().verify_in_flight(), 1);
        sim.release_verifications(node, &[0]);
        assert_eq!(sim.node(node).chain().verify_in_flight(), 0);
        // Delivered twice: the ticket is finished, the duplicate is ignored.
        sim.input(
            node,
            Input::SigsVerified {
                ticket: held[1].0,
                result: held[1].1,
            },
        );
    }
    let tip_after_good = sim.node(node).chain().tip().hash;

    let mut bad = block_with(&chain, &payments(&chain, &payers, 9), miner, b"bad");
    bad.txs[5].inputs[0].sig.0[7] ^= 1;
    let bad = seal(bad);
    // What verifying in place says about it.
    let expected = BlockError::Tx {
        index: 5,
        error: TxError::BadSignature { input: 0 },
    };
    let outcome = chain.clone().accept_block(&bad, bad.header.time).unwrap();
    assert_eq!(outcome.invalidated, vec![(bad.hash(), expected.clone())]);
    let _ = ChainError::Block(expected);

    send_block(&mut sim, raw, p, &bad);
    if parallel {
        assert!(sim.run_until_for(5_000, |s| s.held_verifications(node).len() == 3));
        let held = sim.held_verifications(node).to_vec();
        assert!(held[0].1.first_failure.is_none() && held[2].1.first_failure.is_none());
        assert_eq!(held[1].1.first_failure.map(|(i, _)| i), Some(4));
        sim.release_verifications(node, &[1, 2, 0]);
    }
    sim.run_for(2_000);
    let rejected = sim
        .sim_node(node)
        .events
        .iter()
        .filter_map(|e| match e {
            Event::BlockRejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    Seen {
        tip_after_good,
        tip_after_bad: sim.node(node).chain().tip().hash,
        rejected,
        bans: bans(&sim, node),
        closed: closed(&sim, raw, p),
    }
}

#[test]
fn verify_round_trip_late_and_out_of_order_matches_in_place() {
    let in_place = scenario(false);
    let parallel = scenario(true);
    assert_ne!(
        in_place.tip_after_good,
        Params::test().genesis_block().hash()
    );
    assert_eq!(in_place.tip_after_good, in_place.tip_after_bad);
    assert_eq!(
        in_place.rejected,
        vec!["transaction 5: signature of input 0 is invalid".to_string()]
    );
    assert!(in_place.closed && !in_place.bans.is_empty(), "{in_place:?}");
    assert_eq!(parallel, in_place);
}
