//! Adversarial peers on the simulator: each kind of junk is refused with its error, the
//! sender is penalised, disconnected or banned as its conduct warrants, and the honest
//! nodes stay in consensus.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{
    bans, closed, fresh, handshaken, honest_still_converge, is_getheaders, network,
    network_with_peer, next_block, penalties,
};
use tabcoin_core::encode::Encode;
use tabcoin_core::node::Event;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHeader, Payload};
use tabcoin_core::sim::Sim;
use tabcoin_core::testkit::{seal, wallet};
use tabcoin_core::units::{Amount, U256, Work};
use tabcoin_core::wire::{InvId, InvItem, Message};

#[test]
fn garbage_bytes_disconnect_and_ban_the_sender() {
    let (mut sim, raw) = network();
    let p = sim.raw_connect(raw, 0, "10.0.0.66");
    sim.run_for(1_000);
    sim.raw_send(raw, p, vec![0xff, 0x00, 0x13]);
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
    assert!(
        bans(&sim, 0)[0].contains("unknown message type 255"),
        "{:?}",
        bans(&sim, 0)
    );
    // Coming back from the same address is refused at once.
    let again = sim.raw_connect(raw, 0, "10.0.0.66");
    sim.run_for(1_000);
    assert!(closed(&sim, raw, again));
    assert!(
        sim.raw_messages(raw, again).is_empty(),
        "a banned address got a hello"
    );
    honest_still_converge(&mut sim);
}

#[test]
fn oversized_and_malformed_messages_are_refused_with_their_limit() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.67", 0xa1, false);
    let mut ping = Message::Ping(1).encode();
    ping.extend_from_slice(&[0u8; 64]);
    sim.raw_send(raw, p, ping);
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
    let notice = sim.raw_messages(raw, p).into_iter().find_map(|m| match m {
        Message::Notice(n) => Some(n),
        _ => None,
    });
    let notice = notice.expect("a notice says why");
    assert!(notice.fatal);
    assert!(
        notice.reason.contains("exceeds the limit of 9"),
        "{}",
        notice.reason
    );

    // A block message whose transaction count lies.
    let q = handshaken(&mut sim, raw, 1, "10.0.0.68", 0xa2);
    let mut bad = vec![9u8];
    bad.extend_from_slice(&[0u8; 88]);
    bad.extend_from_slice(&[0xff, 0xff, 0x03]);
    sim.raw_send(raw, q, bad);
    sim.run_for(1_000);
    assert!(closed(&sim, raw, q));
    assert!(bans(&sim, 1).iter().any(|r| r.contains("malformed block")));
    honest_still_converge(&mut sim);
}

#[test]
fn messages_before_the_handshake_and_silent_peers_are_dropped() {
    let (mut sim, raw) = network();
    let p = sim.raw_connect(raw, 0, "10.0.0.69");
    sim.raw_send(raw, p, Message::GetNodes.encode());
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
    assert!(
        bans(&sim, 0)
            .iter()
            .any(|r| r.contains("message before handshake"))
    );
    let silent = sim.raw_connect(raw, 1, "10.0.0.70");
    sim.run_for(15_000);
    assert!(
        closed(&sim, raw, silent),
        "a silent handshake must time out"
    );
    honest_still_converge(&mut sim);
}

/// A block on node 0's tip whose coinbase overpays, mined so its proof of work is valid.
fn overpaying_block(sim: &Sim) -> Block {
    let mut b = next_block(sim, 0, 99, b"evil");
    b.txs[0].outputs[0].amount =
        Amount::from_units(b.txs[0].outputs[0].amount.units() + 1).unwrap();
    seal(b)
}

#[test]
fn an_invalid_block_is_rejected_and_its_sender_banned() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.71", 0xa3, false);
    let tip = sim.node(0).chain().tip().hash;
    let bad = overpaying_block(&sim);
    sim.raw_send(raw, p, Message::Headers(vec![bad.header]).encode());
    let asked = sim.run_until_for(5_000, |s| {
        s.raw_messages(raw, p).iter().any(
            |m| matches!(m, Message::GetData(items) if items.iter().any(|i| i.id() == InvId::Block(bad.hash()))),
        )
    });
    assert!(asked, "the node should request the announced block");
    sim.raw_send(raw, p, Message::Block(bad.clone()).encode());
    sim.run_for(2_000);
    assert!(closed(&sim, raw, p));
    let rejected = sim.sim_node(0).events.iter().any(|e| matches!(e, Event::BlockRejected { hash, reason } if *hash == bad.hash() && reason.contains("coinbase pays")));
    assert!(rejected);
    assert_eq!(sim.node(0).chain().tip().hash, tip);
    for i in 1..4 {
        assert!(
            sim.node(i).chain().entry(&bad.hash()).is_none(),
            "junk travelled past the first node"
        );
    }
    honest_still_converge(&mut sim);
}

#[test]
fn an_unsolicited_block_is_refused_unprocessed() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.72", 0xa4, false);
    // Even a valid block is refused when nobody asked for it.
    let good = next_block(&sim, 0, 98, b"pushy");
    let validated = sim.node(0).stats.blocks_validated;
    sim.raw_send(raw, p, Message::Block(good.clone()).encode());
    sim.run_for(1_000);
    assert_eq!(sim.node(0).stats.blocks_validated, validated);
    assert!(sim.node(0).chain().entry(&good.hash()).is_none());
    assert!(
        penalties(&sim, 0)
            .iter()
            .any(|(r, s)| r.contains("unsolicited block") && *s == 20)
    );
    assert!(
        !closed(&sim, raw, p),
        "one unsolicited block is a penalty, not a ban"
    );
    // Five are a ban.
    for _ in 0..4 {
        sim.raw_send(raw, p, Message::Block(good.clone()).encode());
    }
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
    honest_still_converge(&mut sim);
}

#[test]
fn bad_signature_transactions_are_penalised_then_banned() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.73", 0xa5, false);
    let payer = wallet(1, &sim.params);
    let to = wallet(2, &sim.params).public_key();
    for round in 0..2u64 {
        let n = sim.node(0);
        let mut tx = payer
            .pay(
                n.chain(),
                n.mempool(),
                to,
                Amount::from_units(1_000 + round).unwrap(),
                2_000,
                None,
            )
            .unwrap();
        tx.inputs[0].sig.0[9] ^= 0x40;
        let txid = tx.txid();
        sim.raw_send(raw, p, Message::Inv(vec![InvItem::tx(txid)]).encode());
        let asked = sim.run_until_for(5_000, |s| {
            s.raw_messages(raw, p).iter().any(
                |m| matches!(m, Message::GetData(items) if items.iter().any(|i| i.id() == InvId::Tx(txid))),
            )
        });
        assert!(asked);
        sim.raw_send(raw, p, Message::Tx(tx).encode());
        sim.run_for(1_000);
        assert!(!sim.node(0).mempool().contains(&txid));
    }
    let pens = penalties(&sim, 0);
    assert!(
        pens.iter()
            .any(|(r, s)| r.contains("signature of input 0 is invalid") && *s == 50),
        "{pens:?}"
    );
    assert!(
        closed(&sim, raw, p),
        "the second bad transaction reaches the ban score"
    );
    honest_still_converge(&mut sim);
}

#[test]
fn low_work_header_floods_are_not_stored() {
    let (mut sim, raw) = network();
    let tree = sim.node(0).chain().tree_len();
    let p = sim.raw_connect(raw, 0, "10.0.0.74");
    // It claims far more work than it has.
    sim.raw_handshake_claiming(raw, p, [0xa6; 32], Work::from_u256(U256::from_u64(1 << 40)));
    // A 3-block fork from genesis: valid proof of work, less work than the 5-block chain.
    let params = sim.params.clone();
    let genesis = params.genesis_block();
    let mut headers: Vec<BlockHeader> = Vec::new();
    let mut parent = genesis.clone();
    for h in 0..3u64 {
        let b = tabcoin_core::testkit::child_of(
            &params,
            &parent,
            tabcoin_core::units::Height(h),
            wallet(97, &params).public_key(),
            b"flood",
        );
        headers.push(b.header);
        parent = b;
    }
    sim.raw_send(raw, p, Message::Headers(headers.clone()).encode());
    sim.run_for(1_000);
    assert_eq!(
        sim.node(0).chain().tree_len(),
        tree,
        "low-work headers were stored"
    );
    // Its answer did not back its claim: that costs the connection.
    assert!(
        bans(&sim, 0)
            .iter()
            .any(|r| r.contains("claimed more work"))
    );
    assert!(closed(&sim, raw, p));
    // Headers that connect to nothing are answered with getheaders; a peer that keeps
    // sending them while its answers never link them up (here: always empty) is penalised
    // once per request round, and keeping it up ends in a ban.
    let p = handshaken(&mut sim, raw, 0, "10.0.0.75", 0xa7);
    let mut orphan_headers = headers.clone();
    orphan_headers.remove(0);
    let mut seen = 0;
    let mut rounds = 0;
    while !closed(&sim, raw, p) && rounds < 40 {
        rounds += 1;
        for m in fresh(&sim, raw, p, &mut seen) {
            if is_getheaders(&m) {
                sim.raw_send(raw, p, Message::Headers(Vec::new()).encode());
            }
        }
        for _ in 0..4 {
            sim.raw_send(raw, p, Message::Headers(orphan_headers.clone()).encode());
        }
        sim.run_for(2_100);
    }
    assert!(
        penalties(&sim, 0)
            .iter()
            .any(|(r, _)| r.contains("headers do not connect"))
    );
    assert!(closed(&sim, raw, p), "{rounds} rounds");
    // One message is counted per round, so the ban takes more than the count's allowance.
    assert!(rounds > 8, "{rounds} rounds");
    assert_eq!(sim.node(0).chain().tree_len(), tree);
    honest_still_converge(&mut sim);
}

#[test]
fn address_floods_are_capped_per_source_and_unsolicited_lists_penalised() {
    let (mut sim, raw) = network();
    let before = sim.node(0).known_nodes().len();
    let p = handshaken(&mut sim, raw, 0, "10.0.0.75", 0xa7);
    // The node asked for known nodes on connecting: answer with 1,000 fake relays.
    assert!(
        sim.raw_messages(raw, p)
            .iter()
            .any(|m| matches!(m, Message::GetNodes))
    );
    let now_s = sim.now_ms / 1000;
    let fake = |sim: &Sim, i: u32| {
        sim.signed_record(
            [(i % 250) as u8 + 1; 32],
            format!("ws://fake{i}.example/ws"),
            now_s,
        )
    };
    let list = (0..1_000).map(|i| fake(&sim, i)).collect();
    sim.raw_send(raw, p, Message::Nodes(list).encode());
    sim.run_for(1_000);
    let after = sim.node(0).known_nodes().len();
    assert!(
        after - before <= 64,
        "per-source cap not applied: {before} -> {after}"
    );
    // Another list nobody asked for is penalised and ignored.
    let list = (1_000..2_000).map(|i| fake(&sim, i)).collect();
    sim.raw_send(raw, p, Message::Nodes(list).encode());
    sim.run_for(1_000);
    assert_eq!(sim.node(0).known_nodes().len(), after);
    assert!(
        penalties(&sim, 0)
            .iter()
            .any(|(r, _)| r.contains("unsolicited node list"))
    );
    // Fake relays never crowd out the honest ones it already knew.
    for i in 1..4 {
        assert!(
            sim.node(0)
                .known_nodes()
                .iter()
                .any(|r| r.url == Sim::url_of(i))
        );
    }
    honest_still_converge(&mut sim);
}

#[test]
fn a_peer_on_another_network_or_impersonating_is_dropped() {
    let (mut sim, raw) = network();
    let p = sim.raw_connect(raw, 0, "10.0.0.76");
    sim.run_for(500);
    // A hello for the main network.
    let mut hello = match sim.raw_messages(raw, p).into_iter().next() {
        Some(Message::Hello(h)) => h,
        other => panic!("expected a hello, got {other:?}"),
    };
    hello.network = Params::main().genesis_hash();
    hello.node_id = tabcoin_core::sig::Keypair::from_seed(&[0xb0; 32]).public_key();
    sim.raw_send(raw, p, Message::Hello(hello.clone()).encode());
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
    // Right network, but the auth is signed by another key.
    let q = sim.raw_connect(raw, 1, "10.0.0.77");
    hello.network = sim.params.genesis_hash();
    hello.dialed = Some(Sim::url_of(1));
    hello.record = None;
    sim.raw_send(raw, q, Message::Hello(hello).encode());
    sim.run_for(500);
    let forged = tabcoin_core::sig::Keypair::from_seed(&[0xb1; 32]).sign(b"not the challenge");
    sim.raw_send(raw, q, Message::Auth(forged).encode());
    sim.run_for(1_000);
    assert!(closed(&sim, raw, q));
    assert!(
        bans(&sim, 1)
            .iter()
            .any(|r| r.contains("node id proof failed"))
    );
    let _ = Payload::None;
    honest_still_converge(&mut sim);
}
