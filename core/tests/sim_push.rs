//! Block push (PROTOCOL §7.4): a peer that sent `sendblocks` gets new blocks as `block`
//! messages without asking; other peers still get `headers` announcements; browsers ask
//! their relays for it and take a pushed block that extends their tip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{
    MINUTE, branch, closed, count, handshaken, is_getheaders, network, next_block, penalties,
};
use tabcoin_core::encode::Encode;
use tabcoin_core::node::PeerId;
use tabcoin_core::params::Params;
use tabcoin_core::sim::Sim;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::wire::{Message, NodeKind};

/// A raw browser on relay 0 whose `hello` claims relay 0's tip (so the relay knows it has
/// the parent of the next block).
fn synced_raw_peer(sim: &mut Sim, raw: usize, addr: &str, seed: u8) -> PeerId {
    sim.set_auto_pong(raw, true);
    let p = sim.raw_connect(raw, 0, addr);
    let tip = sim.node(0).chain().tip().clone();
    let mut hello = sim.raw_hello([seed; 32], tip.work);
    hello.best_hash = tip.hash;
    hello.best_height = tip.height;
    sim.raw_handshake_with(raw, p, [seed; 32], hello);
    p
}

fn has_block(m: &Message, hash: &tabcoin_core::primitives::BlockHash) -> bool {
    matches!(m, Message::Block(b) if b.hash() == *hash)
}

fn has_header(m: &Message, hash: &tabcoin_core::primitives::BlockHash) -> bool {
    matches!(m, Message::Headers(hs) if hs.iter().any(|h| h.hash() == *hash))
}

#[test]
fn a_peer_that_sent_sendblocks_gets_the_block_without_getdata() {
    let (mut sim, raw) = network();
    let pushy = synced_raw_peer(&mut sim, raw, "10.0.0.81", 0xb1);
    let plain = synced_raw_peer(&mut sim, raw, "10.0.0.82", 0xb2);
    sim.raw_send(raw, pushy, Message::SendBlocks.encode());
    sim.run_for(1_000);
    let b = sim.mine(0);
    sim.run_for(2_000);
    let hash = b.hash();
    // The pushing peer has the block though it never sent `getdata`, and no announcement.
    let got = sim.raw_messages(raw, pushy);
    assert!(got.iter().any(|m| has_block(m, &hash)), "{got:?}");
    assert!(!got.iter().any(|m| has_header(m, &hash)));
    // The other peer still gets the header announcement and no block it did not ask for.
    let got = sim.raw_messages(raw, plain);
    assert!(got.iter().any(|m| has_header(m, &hash)), "{got:?}");
    assert!(!got.iter().any(|m| has_block(m, &hash)));
    // A second block: still pushed, one block per new tip.
    let b2 = sim.mine(0);
    sim.run_for(2_000);
    let got = sim.raw_messages(raw, pushy);
    assert!(got.iter().any(|m| has_block(m, &b2.hash())));
    assert!(!closed(&sim, raw, pushy) && !closed(&sim, raw, plain));
    assert!(penalties(&sim, 0).is_empty(), "{:?}", penalties(&sim, 0));
}

#[test]
fn a_peer_behind_gets_headers_even_when_it_asked_for_pushes() {
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    // Claims only genesis: the relay does not know it has the parent of the next block.
    let p = handshaken(&mut sim, raw, 0, "10.0.0.83", 0xb3);
    sim.raw_send(raw, p, Message::SendBlocks.encode());
    sim.run_for(1_000);
    let b = sim.mine(0);
    sim.run_for(2_000);
    let got = sim.raw_messages(raw, p);
    assert!(got.iter().any(|m| has_header(m, &b.hash())), "{got:?}");
    assert!(!got.iter().any(|m| has_block(m, &b.hash())));
}

#[test]
fn a_browser_asks_its_relay_for_pushes_and_takes_the_pushed_block() {
    let (mut sim, _raw) = network();
    let browser = sim.add_node(
        Sim::config(NodeKind::Browser, 0x51, &[0]),
        ChangeSet::default(),
    );
    assert!(sim.run_until_for(MINUTE, |s| s.converged()));
    sim.run_for(5_000);
    let whole_blocks = |s: &Sim| s.bytes_in_by_type.get(&(browser, 9)).copied();
    let (before, rebuilt) = (whole_blocks(&sim), sim.node(browser).compact_counts().0);
    let b = sim.mine(0);
    assert!(sim.run_until_for(MINUTE, |s| s.node(browser).chain().tip().hash == b.hash()));
    sim.run_for(2_000);
    // The block came pushed, as a compact block (both sides speak them, PROTOCOL §7.5),
    // and no whole block was fetched: the relays it is linked to pushed it.
    assert_eq!(whole_blocks(&sim), before);
    assert!(sim.node(browser).compact_counts().0 > rebuilt);
    assert!(penalties(&sim, browser).is_empty());
    assert!(penalties(&sim, 0).is_empty());
    // The relay that mined and pushed the block shows its height in the browser's peers
    // table (a display-only figure that follows blocks a peer sent or fetched).
    let height = sim.node(browser).chain().tip().height;
    let peers = sim.node(browser).peers();
    let miner = peers
        .iter()
        .find(|p| p.url.as_deref() == Some(Sim::url_of(0).as_str()));
    assert_eq!(
        miner.map(|p| p.best_height),
        Some(height),
        "browser's view: {peers:?}"
    );
}

/// A browser alone with a raw endpoint that plays the relay it dials; returns the
/// simulator, the browser, the raw endpoint and the raw side's connection.
fn browser_with_raw_relay() -> (Sim, usize, usize, PeerId) {
    let mut sim = Sim::new(Params::test());
    let raw = sim.add_raw();
    let url = "ws://pusher.example/ws";
    sim.raw_listen(raw, url);
    sim.set_auto_pong(raw, true);
    let mut c = Sim::config(NodeKind::Browser, 0x53, &[]);
    c.bootstrap = vec![String::from(url)];
    let browser = sim.add_node(c, ChangeSet::default());
    assert!(sim.run_until_for(MINUTE, |s| !s.raw(raw).inbox.is_empty()));
    let p = *sim.raw(raw).inbox.keys().next().unwrap();
    let mut hello = sim.raw_hello([0xc1; 32], sim.node(browser).chain().tip().work);
    hello.kind = NodeKind::Relay;
    let now_s = sim.now_ms / 1000;
    hello.record = Some(sim.signed_record([0xc1; 32], String::from(url), now_s));
    sim.raw_handshake_with(raw, p, [0xc1; 32], hello);
    sim.run_for(1_000);
    (sim, browser, raw, p)
}

#[test]
fn a_browser_takes_a_pushed_block_on_its_tip_and_drops_others_unvalidated() {
    let (mut sim, browser, raw, p) = browser_with_raw_relay();
    let asked = sim.raw_messages(raw, p);
    assert!(
        asked.iter().any(|m| matches!(m, Message::SendBlocks)),
        "the browser did not ask its relay for pushes: {asked:?}"
    );
    let blocks = branch(&sim.params, 2, b"pushed");
    // The second block first: its parent is unknown, so it is not validated, costs the
    // sender nothing, and the browser asks for headers instead.
    let validated = sim.node(browser).stats.blocks_validated;
    let getheaders = count(&sim, raw, p, is_getheaders);
    sim.raw_send(raw, p, Message::Block(blocks[1].clone()).encode());
    sim.run_for(3_000);
    assert_eq!(sim.node(browser).stats.blocks_validated, validated);
    assert!(sim.node(browser).chain().entry(&blocks[1].hash()).is_none());
    assert!(count(&sim, raw, p, is_getheaders) > getheaders);
    // The first one extends the tip: taken without a request and without a penalty.
    sim.raw_send(raw, p, Message::Block(blocks[0].clone()).encode());
    sim.run_for(1_000);
    assert_eq!(sim.node(browser).chain().tip().hash, blocks[0].hash());
    assert!(
        penalties(&sim, browser).is_empty(),
        "{:?}",
        penalties(&sim, browser)
    );
    assert!(!closed(&sim, raw, p));
}

#[test]
fn a_peer_not_asked_for_pushes_is_still_penalised_for_an_unsolicited_block() {
    let (mut sim, raw) = network();
    let p = synced_raw_peer(&mut sim, raw, "10.0.0.84", 0xb4);
    // The relay never asks anyone for pushes (only browsers do), so this block is unasked.
    let b = next_block(&sim, 0, 96, b"unasked");
    sim.raw_send(raw, p, Message::Block(b.clone()).encode());
    sim.run_for(1_000);
    assert!(sim.node(0).chain().entry(&b.hash()).is_none());
    assert!(
        penalties(&sim, 0)
            .iter()
            .any(|(r, _)| r.contains("unsolicited block"))
    );
}
