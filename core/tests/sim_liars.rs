//! Peers that lie or withhold (issue 11, items 6–8): claims of work that are never backed
//! cannot stall mining, penalties outlast reconnecting and restarts, and announcing a
//! transaction without sending it delays it by at most one request timeout. Each scenario is
//! deterministic and replays identically.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::*;
use tabcoin_core::node::GETHEADERS_TIMEOUT_MS;
use tabcoin_core::units::{U256, Work};

// ---- 6: claims of work that are never backed -------------------------------------------

/// Three peers claim best work 2^256−1 and never answer `getheaders`. The mining node keeps
/// producing templates for each new tip (never more than one request timeout without one),
/// the liars lose their connections, and connecting again from the same addresses is refused.
#[test]
fn peers_that_only_claim_work_cannot_stall_mining() {
    let (mut sim, _) = network();
    assert!(sim.node(0).is_synced());
    let addrs = ["10.0.1.1", "10.0.2.1", "10.0.3.1"];
    let mut liars = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let raw = sim.add_raw();
        sim.set_auto_pong(raw, true);
        let p = sim.raw_connect(raw, 0, addr);
        sim.raw_handshake_claiming(raw, p, [0xe0 + i as u8; 32], Work::from_u256(U256::MAX));
        liars.push((raw, p));
    }
    // Relay 2 finds a block every 5 s for three minutes; relay 0 must keep mining on each.
    let start = sim.now_ms;
    let mut last_template_ms = start;
    let mut templates = sim.sim_node(0).templates;
    let mut worst_gap = 0;
    let mut next_block = start;
    while sim.now_ms < start + 3 * MINUTE {
        if sim.now_ms >= next_block {
            sim.mine(2);
            next_block += 5_000;
        }
        sim.run_for(100);
        let now = sim.sim_node(0).templates;
        if now > templates {
            templates = now;
            last_template_ms = sim.now_ms;
        }
        worst_gap = worst_gap.max(sim.now_ms - last_template_ms);
    }
    assert!(
        worst_gap <= GETHEADERS_TIMEOUT_MS + 5_000,
        "no template for {worst_gap} ms"
    );
    for &(raw, p) in &liars {
        assert!(closed(&sim, raw, p), "a liar kept its connection");
    }
    // Coming back from the same address does not start the game again.
    for (&(raw, _), addr) in liars.iter().zip(addrs) {
        let p = sim.raw_connect(raw, 0, addr);
        sim.run_for(1_000);
        assert!(closed(&sim, raw, p), "{addr} reconnected");
    }
}
