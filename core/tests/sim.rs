//! Network behaviour on the deterministic simulator: discovery, propagation, sync,
//! partitions and adversaries. No sockets; every scenario replays identically.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeSet;

use common::MINUTE;
use tabcoin_core::chain::Chain;
use tabcoin_core::params::Params;
use tabcoin_core::sim::Sim;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit::long_chain;
use tabcoin_core::wire::NodeKind;

/// `n` relays, relay `i` started knowing only relay `i - 1` (relay 0 knows relay 1).
fn relay_network(n: usize, target: usize) -> Sim {
    let mut sim = Sim::new(Params::test());
    for i in 0..n {
        let boot = if i == 0 { 1 } else { i - 1 };
        let mut c = Sim::config(NodeKind::Relay, i as u8 + 1, &[boot]);
        c.target_outbound = target;
        sim.add_node(c, ChangeSet::default());
    }
    sim
}

fn outbound_count(sim: &Sim, i: usize) -> usize {
    sim.node(i).peers().iter().filter(|p| p.outbound).count()
}

#[test]
fn discovery_every_node_learns_every_relay_and_meets_its_target() {
    let mut sim = relay_network(20, 4);
    let all: BTreeSet<String> = (0..20).map(Sim::url_of).collect();
    let done = sim.run_until_for(10 * MINUTE, |s| {
        (0..20).all(|i| {
            let known: BTreeSet<String> =
                s.node(i).known_nodes().into_iter().map(|r| r.url).collect();
            let mut others = all.clone();
            others.remove(&Sim::url_of(i));
            known == others && outbound_count(s, i) >= 4
        })
    });
    assert!(done, "discovery did not complete in 10 simulated minutes");
    for i in 0..20 {
        // Never itself, never twice.
        assert!(
            !sim.node(i)
                .known_nodes()
                .iter()
                .any(|r| r.url == Sim::url_of(i))
        );
        let ids: Vec<_> = sim.node(i).peers().iter().map(|p| p.node_id).collect();
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(
            ids.len(),
            unique.len(),
            "node {i} has duplicate connections"
        );
    }
}

#[test]
fn propagation_reaches_all_validated_once_sent_once_per_link() {
    let mut sim = relay_network(20, 4);
    sim.run_for(5 * MINUTE);
    let before: Vec<u64> = (0..20)
        .map(|i| sim.node(i).stats.blocks_validated)
        .collect();
    let block = sim.mine(7);
    let hash = block.hash();
    let done = sim.run_until_for(MINUTE, |s| {
        (0..20).all(|i| s.node(i).chain().tip().hash == hash)
    });
    assert!(done, "block did not reach every node");
    for (i, b) in before.iter().enumerate() {
        assert_eq!(
            sim.node(i).stats.blocks_validated - b,
            1,
            "node {i} validated the block more than once"
        );
    }
    for ((from, to, h), n) in &sim.block_sends {
        if *h == hash {
            assert_eq!(*n, 1, "block sent {n} times from {from} to {to}");
        }
    }
}

#[test]
fn sync_joins_a_2000_block_chain_and_resumes_after_disconnect() {
    let params = Params::test();
    let stored = long_chain(&params, 2_000);
    let mut sim = Sim::new(params);
    // The clock must be past the chain's last block time.
    sim.now_ms = (sim.params.genesis_time + 2_100 * 30) * 1000;
    let a = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), stored.clone());
    let b = sim.add_node(Sim::config(NodeKind::Relay, 2, &[a]), stored);
    let tip = sim.node(a).chain().tip().hash;
    assert_eq!(sim.node(b).chain().tip().hash, tip);
    sim.run_for(MINUTE);
    // The newcomer knows only relay a.
    let mut c = Sim::config(NodeKind::Relay, 3, &[a]);
    c.target_outbound = 1;
    let new = sim.add_node(c, ChangeSet::default());
    let halfway = sim.run_until_for(10 * MINUTE, |s| s.node(new).chain().height().0 >= 1_000);
    if !halfway {
        let n = sim.sim_node(new);
        eprintln!(
            "height {} best header {} peers {:?}",
            n.node.chain().height(),
            n.node.chain().best_header().height,
            n.node.peers()
        );
        for e in n.events.iter().take(40) {
            eprintln!("{e:?}");
        }
        eprintln!("stats {:?}", n.node.stats);
        for e in &sim.sim_node(a).events {
            if !matches!(e, tabcoin_core::node::Event::TipChanged { .. }) {
                eprintln!("A: {e:?}");
            }
        }
    }
    assert!(halfway);
    // Its only peer disappears halfway; it finds relay b through the nodes relay a told it of.
    sim.set_online(a, false);
    let height_at_cut = sim.node(new).chain().height().0;
    assert!(height_at_cut < 2_000);
    let done = sim.run_until_for(30 * MINUTE, |s| s.node(new).chain().tip().hash == tip);
    assert!(
        done,
        "sync did not resume: height {}",
        sim.node(new).chain().height()
    );
    let n = sim.node(new);
    assert_eq!(n.chain().utxo(), sim.node(b).chain().utxo());
    // Resumed rather than restarted: each block was downloaded about once.
    assert!(
        n.stats.blocks_received <= 2_000 + 64,
        "received {}",
        n.stats.blocks_received
    );
    assert!(
        n.stats.headers_received <= 2 * 2_000 + 100,
        "headers {}",
        n.stats.headers_received
    );
}

/// Relays with mining keys from wallets, discovered and converged.
fn funded_network(n: usize) -> (Sim, Vec<tabcoin_core::wallet::Wallet>) {
    let params = Params::test();
    let wallets: Vec<_> = (0..n)
        .map(|i| tabcoin_core::testkit::wallet(i as u8 + 1, &params))
        .collect();
    let mut sim = Sim::new(params);
    for (i, w) in wallets.iter().enumerate() {
        let boot = if i == 0 { 1 } else { i - 1 };
        let mut c = Sim::config(NodeKind::Relay, i as u8 + 1, &[boot]);
        c.target_outbound = 3;
        c.mining_key = Some(w.public_key());
        sim.add_node(c, ChangeSet::default());
    }
    sim.run_for(3 * MINUTE);
    (sim, wallets)
}

fn replay_equals(sim: &Sim, i: usize) {
    let chain = sim.node(i).chain();
    let mut fresh = Chain::new(sim.params.clone());
    for h in &chain.active_chain()[1..] {
        let b = chain.block(h).unwrap();
        fresh.accept_block(b, u64::MAX / 2).unwrap();
    }
    assert_eq!(fresh.tip().hash, chain.tip().hash);
    assert_eq!(
        fresh.utxo(),
        chain.utxo(),
        "node {i}: UTXO differs from a replay from genesis"
    );
}

#[test]
fn partition_heals_onto_most_work_and_losing_transactions_return() {
    let (mut sim, wallets) = funded_network(10);
    for _ in 0..4 {
        sim.mine(0);
        assert!(sim.run_until_for(MINUTE, |s| s.converged()));
    }
    let side_a: Vec<usize> = (0..5).collect();
    sim.partition(&side_a);
    sim.run_for(10_000);
    // Side A: wallet 0 pays wallet 9, mined into A's two blocks.
    let pay = {
        let n = sim.node(0);
        wallets[0]
            .pay(
                n.chain(),
                n.mempool(),
                wallets[9].public_key(),
                tabcoin_core::units::Amount::from_units(777_000).unwrap(),
                2_000,
                None,
            )
            .unwrap()
    };
    let txid = pay.txid();
    sim.submit(0, pay);
    sim.run_for(5_000);
    assert!(
        sim.node(3).mempool().contains(&txid),
        "tx did not spread on side A"
    );
    assert!(
        !sim.node(7).mempool().contains(&txid),
        "tx crossed the partition"
    );
    sim.mine(1);
    sim.run_for(5_000);
    sim.mine(2);
    // Side B mines three blocks: more work.
    for _ in 0..3 {
        sim.mine(6);
        sim.run_for(5_000);
    }
    sim.run_for(20_000);
    assert!(
        !sim.node(0).mempool().contains(&txid),
        "tx should be mined on side A"
    );
    let a_tip = sim.node(0).chain().tip().hash;
    let b_tip = sim.node(9).chain().tip().hash;
    assert_ne!(a_tip, b_tip);
    sim.heal();
    let done = sim.run_until_for(10 * MINUTE, |s| {
        s.converged() && s.node(0).chain().tip().hash == b_tip
    });
    if !done {
        for i in sim.node_indices() {
            let n = sim.node(i);
            eprintln!(
                "node {i}: height {} best header {} work {} peers {:?} known {}",
                n.chain().height(),
                n.chain().best_header().height,
                n.chain().tip().work,
                n.peers()
                    .iter()
                    .map(|p| (p.remote.clone(), p.outbound, p.best_height.0))
                    .collect::<Vec<_>>(),
                n.known_nodes().len()
            );
        }
        for e in sim.sim_node(0).events.iter() {
            if !matches!(
                e,
                tabcoin_core::node::Event::PeerConnected { .. }
                    | tabcoin_core::node::Event::PeerDisconnected { .. }
            ) {
                eprintln!("{e:?}");
            }
        }
        eprintln!("stats {:?}", sim.node(0).stats);
        eprintln!("delivered by type {:?}", sim.delivered);
    }
    assert!(done, "did not converge on the most-work tip after healing");
    // The returned transaction is re-announced and relayed to the winning side.
    sim.run_for(10_000);
    for i in sim.node_indices() {
        replay_equals(&sim, i);
        assert!(
            sim.node(i).mempool().contains(&txid),
            "node {i}: losing-side tx did not return to the pool"
        );
    }
    // And it confirms on the winning chain.
    sim.mine(8);
    assert!(sim.run_until_for(MINUTE, |s| s.converged()));
    assert!(!sim.node(0).mempool().contains(&txid));
    let b = wallets[9].balance(sim.node(0).chain(), sim.node(0).mempool());
    assert!(b.confirmed.units() >= 777_000 || b.immature.units() > 0);
}

#[test]
fn the_simulator_replays_identically() {
    let run = || {
        let mut sim = relay_network(8, 3);
        sim.run_for(2 * MINUTE);
        sim.mine(3);
        sim.run_for(MINUTE);
        (0..8)
            .map(|i| (sim.node(i).chain().tip().hash, sim.node(i).stats.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn lossy_links_still_converge() {
    let mut sim = relay_network(8, 3);
    sim.loss_ppm = 20_000; // 2% of messages lost
    sim.run_for(3 * MINUTE);
    for i in [1, 5, 2] {
        sim.mine(i);
        sim.run_for(20_000);
    }
    assert!(
        sim.run_until_for(10 * MINUTE, |s| s.converged()),
        "lossy network did not converge"
    );
}
