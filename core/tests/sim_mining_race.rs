//! Clock-paced miners that keep mining on the test network (issue 15 step 2). Difficulty
//! stays at the limit there, so a branch grows only as fast as its median time past lets a
//! miner stamp blocks: about six blocks per clock second, reached within milliseconds of
//! each second. Two sides that split (a partition, a relay that died) then both reach that
//! cap every second and stay at equal work; each keeps the equal-work tip it saw first, and
//! a miner always sees its own block first. These tests let miners run on both sides and
//! require the network to settle on one branch anyway.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeSet;

use common::MINUTE;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::BlockHash;
use tabcoin_core::sim::Sim;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit::wallet;
use tabcoin_core::wire::NodeKind;

/// A tab's round trip to its mining workers and back (a relay's threads are faster).
const TAB_SOLVE_MS: u64 = 4;
const RELAY_SOLVE_MS: u64 = 1;

/// Two relays (0 mines) and two mining tabs, tab 2 started on relay 0 and tab 3 on relay 1,
/// each tab linked to both relays once it learned of them.
fn network() -> Sim {
    let mut sim = Sim::new(Params::test());
    sim.latency_ms = 10;
    sim.jitter_ms = 10;
    let mut r0 = Sim::config(NodeKind::Relay, 1, &[1]);
    r0.mining_key = Some(wallet(1, &sim.params).public_key());
    sim.add_node(r0, ChangeSet::default());
    sim.add_node(Sim::config(NodeKind::Relay, 2, &[0]), ChangeSet::default());
    for (seed, relay) in [(3, 0), (4, 1)] {
        let mut c = Sim::config(NodeKind::Browser, seed, &[relay]);
        c.target_outbound = 2;
        c.mining_key = Some(wallet(seed, &sim.params).public_key());
        sim.add_node(c, ChangeSet::default());
    }
    sim.run_for(2 * MINUTE);
    for tab in [2, 3] {
        assert_eq!(
            sim.node(tab).peers().len(),
            2,
            "tab {tab} is linked to both relays"
        );
    }
    sim
}

fn start_miners(sim: &mut Sim) {
    sim.start_miner(0, RELAY_SOLVE_MS);
    sim.start_miner(2, TAB_SOLVE_MS);
    sim.start_miner(3, TAB_SOLVE_MS);
}

fn tips(sim: &Sim) -> BTreeSet<BlockHash> {
    sim.node_indices()
        .into_iter()
        .map(|i| sim.node(i).chain().tip().hash)
        .collect()
}

fn describe(sim: &Sim) -> String {
    sim.node_indices()
        .into_iter()
        .map(|i| {
            let tip = sim.node(i).chain().tip();
            format!(
                "node {i}: height {} tip {} mined {}",
                tip.height,
                &tip.hash.to_string()[..12],
                sim.mined_by(i)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs up to `max_ms` until every node has the same tip.
fn settle(sim: &mut Sim, max_ms: u64) -> Option<u64> {
    let start = sim.now_ms;
    sim.run_until_for(max_ms, Sim::converged)
        .then(|| sim.now_ms - start)
}

#[test]
fn miners_on_both_sides_of_a_healed_partition_settle_on_one_branch() {
    let mut sim = network();
    start_miners(&mut sim);
    sim.run_for(5_000);
    // Relay 0 and tab 2 against relay 1 and tab 3, both sides mining.
    sim.partition(&[0, 2]);
    sim.run_for(10_000);
    assert_eq!(tips(&sim).len(), 2, "each side mined its own branch");
    sim.heal();
    let took = settle(&mut sim, 30_000);
    assert!(
        took.is_some(),
        "no single tip within 30 s of the heal: {}",
        describe(&sim)
    );
    // It stays one network: a minute on, every node again agrees within seconds, on a chain
    // that kept growing.
    let height = sim.node(0).chain().height().0;
    sim.run_for(MINUTE);
    assert!(
        settle(&mut sim, 5_000).is_some(),
        "split again a minute after the heal: {}",
        describe(&sim)
    );
    assert!(
        sim.node(0).chain().height().0 >= height + 60,
        "mining went on: {}",
        describe(&sim)
    );
    eprintln!(
        "settled {} ms after the heal; {}",
        took.unwrap(),
        describe(&sim)
    );
}

/// Left alone, the three miners mine on one chain most of the time: it grows about six
/// blocks a second (the cap), and the network is on one tip again within seconds whenever
/// two miners' blocks of one second crossed.
#[test]
fn three_miners_share_one_chain() {
    let mut sim = network();
    start_miners(&mut sim);
    let mut split_seconds = 0;
    for _ in 0..60 {
        sim.run_for(1_000);
        if !sim.converged() {
            split_seconds += 1;
        }
    }
    assert!(
        settle(&mut sim, 10_000).is_some(),
        "no single tip: {}",
        describe(&sim)
    );
    let height = sim.node(1).chain().height().0;
    eprintln!(
        "{split_seconds} of 60 seconds ended split; height {height}; {}",
        describe(&sim)
    );
    // Before miners waited a random time after the clock passed the MTP, every second
    // ended split (three branches at equal work for good); now about one in five does, and
    // the next one or two seconds settle them.
    assert!(
        split_seconds < 20,
        "split at the end of {split_seconds} of 60 seconds"
    );
    assert!(
        height >= 5 * 60,
        "the chain grew {height} blocks in a minute"
    );
}

/// The wait after the clock passes the MTP costs a lone miner nothing: a tab mining alone
/// behind a relay still reaches the cap every second.
#[test]
fn a_lone_miner_keeps_its_pace() {
    let mut sim = Sim::new(Params::test());
    sim.latency_ms = 10;
    sim.jitter_ms = 10;
    sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let mut c = Sim::config(NodeKind::Browser, 2, &[0]);
    c.mining_key = Some(wallet(2, &sim.params).public_key());
    let tab = sim.add_node(c, ChangeSet::default());
    sim.run_for(MINUTE);
    sim.start_miner(tab, TAB_SOLVE_MS);
    // One second to reach the pace: from the genesis time a burst is allowed first.
    sim.run_for(10_000);
    let h0 = sim.node(tab).chain().height().0;
    sim.run_for(MINUTE);
    let mined = sim.node(tab).chain().height().0 - h0;
    eprintln!("a lone tab mined {mined} blocks in a minute");
    // Six a second is the cap of an 11-block median time past.
    assert!(mined >= 6 * 60 - 6, "mined {mined} in a minute");
}

/// KNOWN FAILURE, kept to reproduce it (the network-heals scenario's step 2 failed this way
/// in one of three runs beside a CPU hog). When blocks take longer than about a second to
/// cross, clock-paced miners on both sides of a split do not converge: every branch grows at
/// the same cap (about six blocks a second), each miner hears of the others' branches later
/// than its own grows, and the relays between the tabs fall tens of blocks behind them, so
/// every tab keeps seeing its own branch as the longest. Two rules were tried and not kept
/// (2026-12-02): sitting out random seconds while an equal-work rival exists (never
/// triggered: the branches are a few blocks apart, not tied), and while any branch within 12
/// blocks of the tip had been announced in the last 3 s (the relay's miner sat out, the tabs
/// did not: what they hear of is staler than 12 blocks; the other tests here moved within
/// noise: 8 → 6 split seconds of 60, 355 → 345 blocks a minute). What would work needs
/// branch growth that differs at random, as non-trivial proof of work gives.
#[test]
#[ignore = "known failure: clock-paced miners do not converge over links slower than ~1 s"]
fn miners_settle_even_when_blocks_take_longer_than_a_second_to_cross() {
    let mut sim = network();
    start_miners(&mut sim);
    sim.run_for(5_000);
    sim.partition(&[0, 2]);
    sim.run_for(10_000);
    assert_eq!(tips(&sim).len(), 2, "each side mined its own branch");
    // Every message now takes 1.2–1.6 s.
    sim.latency_ms = 1_200;
    sim.jitter_ms = 400;
    sim.heal();
    // Nodes a second and more behind never share a tip while mining goes on; what must hold
    // is what the end-to-end test asks: every node has the same block some height above the
    // heal (as the network-heals scenario asks of block hk + 3 after a kill).
    let h = sim
        .node_indices()
        .into_iter()
        .map(|i| sim.node(i).chain().height().0)
        .max()
        .unwrap()
        + 30;
    let agree = |sim: &Sim| {
        let at: BTreeSet<Option<BlockHash>> = sim
            .node_indices()
            .into_iter()
            .map(|i| sim.node(i).chain().hash_at(tabcoin_core::units::Height(h)))
            .collect();
        at.len() == 1 && at.iter().next().unwrap().is_some()
    };
    let start = sim.now_ms;
    let agreed = sim.run_until_for(60_000, agree);
    assert!(
        agreed,
        "no block at height {h} that every node has within 60 s of the heal: {}",
        describe(&sim)
    );
    eprintln!(
        "slow links: every node has one block at height {h} {} ms after the heal; {}",
        sim.now_ms - start,
        describe(&sim)
    );
}
