//! Pruning (issue 10 item 3, PROTOCOL §3.2 and §6.5): a pruned node keeps the bodies of its
//! newest blocks only, says so in its `hello`, answers `notfound` for what it dropped,
//! restarts consistently and still follows reorgs within its kept depth; a syncing node
//! asks a pruned peer only for what it keeps and syncs fully from mixed peers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{MINUTE, closed, penalties};
use tabcoin_core::encode::Encode;
use tabcoin_core::node::{Node, NodeConfig};
use tabcoin_core::primitives::BlockHash;
use tabcoin_core::sim::Sim;
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::testkit::long_chain;
use tabcoin_core::units::Height;
use tabcoin_core::wire::{InvItem, Message, NodeKind};

const CHAIN: usize = 80;
const DEPTH: u64 = 16;
/// Type byte of `notfound` on the wire.
const NOTFOUND: u8 = 6;

fn pruned_config(seed: u8, bootstrap: &[usize]) -> NodeConfig {
    let mut c = Sim::config(NodeKind::Relay, seed, bootstrap);
    c.prune_bytes = Some(1);
    c.prune_depth = DEPTH;
    // Nothing in memory: reorgs and serving read the (pruned) store.
    c.body_cache_bytes = 0;
    c
}

/// A full relay (0) holding a chain of [`CHAIN`] blocks and a pruned relay (1) synced from
/// it.
fn pair() -> Sim {
    let mut sim = Sim::new(tabcoin_core::params::Params::test());
    let stored = long_chain(&sim.params, CHAIN);
    sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), stored);
    sim.add_node(pruned_config(2, &[0]), ChangeSet::default());
    assert!(sim.run_until_for(5 * MINUTE, |s| s.converged()
        && s.node(1).chain().height() == Height(CHAIN as u64)));
    sim
}

fn kept_from(sim: &Sim, i: usize) -> Height {
    sim.node(i).chain().prune_status().kept_from
}

fn stored_body(sim: &Sim, i: usize, hash: &BlockHash) -> bool {
    let mut store = sim.sim_node(i).store.clone();
    store.load_block(hash).unwrap().0.is_some()
}

#[test]
fn a_pruned_node_keeps_only_its_newest_bodies_and_says_so() {
    let mut sim = pair();
    let tip = CHAIN as u64;
    // It keeps exactly the prune depth (its budget is one byte).
    assert_eq!(kept_from(&sim, 1), Height(tip + 1 - DEPTH));
    let active = sim.node(1).chain().active_chain().to_vec();
    for (h, hash) in active.iter().enumerate().skip(1) {
        let kept = h as u64 >= tip + 1 - DEPTH;
        assert_eq!(stored_body(&sim, 1, hash), kept, "height {h}");
        assert_eq!(sim.node(1).chain().body_pruned(hash), !kept, "height {h}");
        // The full relay keeps everything.
        assert!(stored_body(&sim, 0, hash));
    }
    // Headers outlive pruned bodies.
    let loaded = sim.sim_node(1).store.clone().load().unwrap();
    assert_eq!(loaded.headers.len(), CHAIN);
    assert_eq!(loaded.prune_height, Some(Height(tip + 1 - DEPTH)));
    assert_eq!(sim.node(0).chain().prune_status().kept_from, Height(0));

    // A peer sees it in the handshake, gets recent blocks and `notfound` for pruned ones,
    // and is not penalised for asking.
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    let p = sim.raw_connect(raw, 1, "10.0.0.9");
    sim.raw_handshake(raw, p, [9; 32]);
    let hello = sim
        .raw_messages(raw, p)
        .into_iter()
        .find_map(|m| match m {
            Message::Hello(h) => Some(h),
            _ => None,
        })
        .unwrap();
    assert_eq!(hello.kept_from, Height(tip + 1 - DEPTH));
    let (old, recent) = (active[10], active[tip as usize - 3]);
    sim.raw_send(
        raw,
        p,
        Message::GetData(vec![InvItem::block(old), InvItem::block(recent)]).encode(),
    );
    sim.run_for(2_000);
    let got = sim.raw_messages(raw, p);
    assert!(
        got.iter()
            .any(|m| matches!(m, Message::Block(b) if b.hash() == recent))
    );
    assert!(
        got.iter()
            .any(|m| matches!(m, Message::NotFound(items) if items == &[InvItem::block(old)]))
    );
    assert!(
        !got.iter()
            .any(|m| matches!(m, Message::Block(b) if b.hash() == old))
    );
    assert!(!closed(&sim, raw, p));
    assert!(penalties(&sim, 1).is_empty(), "{:?}", penalties(&sim, 1));

    // The full relay's `hello` says it keeps everything.
    let q = sim.raw_connect(raw, 0, "10.0.0.10");
    sim.raw_handshake(raw, q, [10; 32]);
    let full = sim.raw_messages(raw, q).into_iter().find_map(|m| match m {
        Message::Hello(h) => Some(h),
        _ => None,
    });
    assert_eq!(full.unwrap().kept_from, Height(0));
}

#[test]
fn a_pruned_node_restarts_with_what_it_kept() {
    let sim = pair();
    let before = sim.node(1).chain().prune_status();
    assert!(before.kept_bytes > 0);
    let stored = sim.sim_node(1).store.clone().load().unwrap();
    let node = Node::new(pruned_config(2, &[0]), sim.params.clone(), stored).unwrap();
    assert_eq!(node.chain().tip().hash, sim.node(1).chain().tip().hash);
    assert_eq!(node.chain().prune_status(), before);
    assert_eq!(node.chain().utxo(), sim.node(1).chain().utxo());
}

#[test]
fn a_syncing_node_asks_a_pruned_peer_only_for_what_it_keeps() {
    let mut sim = pair();
    let notfound_before = sim.delivered.get(&NOTFOUND).copied().unwrap_or(0);
    // A fresh node that knows the pruned relay first: it must fetch old bodies from the
    // full one.
    let mut c = Sim::config(NodeKind::Relay, 3, &[1, 0]);
    c.target_outbound = 2;
    let fresh = sim.add_node(c, ChangeSet::default());
    assert!(sim.run_until_for(5 * MINUTE, |s| s.converged()
        && s.node(fresh).chain().height() == Height(CHAIN as u64)));
    assert_eq!(
        sim.node(fresh).chain().tip().hash,
        sim.node(0).chain().tip().hash
    );
    // It never asked the pruned relay for a body below what that one keeps.
    assert_eq!(
        sim.delivered.get(&NOTFOUND).copied().unwrap_or(0),
        notfound_before,
        "a pruned body was asked for"
    );
    let kept = kept_from(&sim, 1);
    let mut from_pruned = 0;
    for ((from, to, hash), n) in &sim.block_sends {
        if *from == 1 && *to == fresh && *n > 0 {
            let h = sim.node(1).chain().entry(hash).unwrap().height;
            assert!(h >= kept, "pruned relay sent block {h}");
            from_pruned += 1;
        }
    }
    let from_full = sim
        .block_sends
        .keys()
        .filter(|(from, to, _)| *from == 0 && *to == fresh)
        .count();
    assert!(from_full >= (kept.0 - 1) as usize);
    assert!(from_full + from_pruned >= CHAIN);
}

#[test]
fn a_pruned_node_follows_a_reorg_within_its_kept_depth() {
    let mut sim = pair();
    sim.partition(&[1]);
    for _ in 0..5 {
        sim.mine(1);
    }
    for _ in 0..8 {
        sim.mine(0);
    }
    let winner = sim.node(0).chain().tip().hash;
    assert_ne!(sim.node(1).chain().tip().hash, winner);
    sim.heal();
    assert!(sim.run_until_for(5 * MINUTE, |s| s.node(1).chain().tip().hash == winner));
    let tip = CHAIN as u64 + 8;
    assert_eq!(kept_from(&sim, 1), Height(tip + 1 - DEPTH));
    // The same state as the full node, which never pruned.
    assert_eq!(sim.node(1).chain().utxo(), sim.node(0).chain().utxo());
    // The losing branch's bodies are still stored (it forks above the kept height) and the
    // restart from the pruned store gives the same chain.
    let stored = sim.sim_node(1).store.clone().load().unwrap();
    let node = Node::new(pruned_config(2, &[0]), sim.params.clone(), stored).unwrap();
    assert_eq!(node.chain().tip().hash, winner);
    assert_eq!(
        node.chain().prune_status(),
        sim.node(1).chain().prune_status()
    );
}
