//! Issue 14, P10 at test scale: 20 relays and 180 tabs over 50–150 ms links. A block of
//! already-relayed payments and a coinbase-only block must each reach 99% of the nodes
//! within 2 s of simulated time, and with compact blocks (PROTOCOL §7.5) the payments block
//! must cost each node at most 0.35 of its size in bytes received. Deterministic: the figures printed replay exactly. The
//! full-size figure (100 relays, 900 tabs, 300 payments) is the P10 row of the bench, run in
//! release (`cargo bench -p tabcoin-core --bench core -- p10`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use tabcoin_core::sim::propagation::{Network, Shape};

const PAYMENTS: usize = 100;

#[test]
fn blocks_reach_99_percent_of_200_nodes_within_two_seconds() {
    let shape = Shape {
        relays: 20,
        tabs: 180,
        relay_outbound: 8,
        tab_outbound: 3,
        latency_ms: (50, 150),
        coins: PAYMENTS,
        compact: true,
    };
    let mut net = Network::build(shape);
    let miner = net.relays[3];
    let empty = net.mine_and_measure(miner, 60_000);
    eprintln!("P10 test scale, coinbase only: {}", empty.line());
    let txs = net.payments(PAYMENTS);
    assert!(
        net.relay_txs(&txs, 120_000),
        "payments did not reach every pool"
    );
    let full = net.mine_and_measure(net.relays[11], 60_000);
    eprintln!("P10 test scale, relayed payments: {}", full.line());
    assert_eq!(full.txs, PAYMENTS);
    assert!(full.bytes_ratio <= 0.35, "{}", full.line());
    let rebuilt: u64 = net
        .all()
        .iter()
        .map(|&i| net.sim.node(i).compact_counts().0)
        .sum();
    assert!(
        rebuilt >= net.tabs.len() as u64,
        "only {rebuilt} blocks were rebuilt from compact blocks"
    );
    for f in [empty, full] {
        assert!(
            f.ms_to_all.is_some(),
            "a node never got the block: {}",
            f.line()
        );
        assert!(f.ms_to_99.unwrap() <= 2_000, "{}", f.line());
    }
}

/// The full-size P10 network (100 relays, 900 tabs, 300 payments), compact blocks on. Slow
/// in debug (minutes): run with `--ignored`; the bench runs it in release with the
/// before/after comparison.
#[test]
#[ignore = "minutes in debug; the P10 bench runs it"]
fn p10_full_size() {
    let mut net = Network::build(Shape::p10(300));
    let empty = net.mine_and_measure(net.relays[3], 60_000);
    eprintln!("P10 full size, coinbase only: {}", empty.line());
    let txs = net.payments(300);
    assert!(
        net.relay_txs(&txs, 300_000),
        "payments did not reach every pool"
    );
    let full = net.mine_and_measure(net.relays[57], 60_000);
    eprintln!("P10 full size, 300 relayed payments: {}", full.line());
    assert!(full.bytes_ratio <= 0.35, "{}", full.line());
    assert!(
        full.ms_to_99.is_some_and(|ms| ms <= 2_000),
        "{}",
        full.line()
    );
}
