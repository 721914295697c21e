//! Peers that lie or withhold (issue 11, items 6–8): claims of work that are never backed
//! cannot stall mining, penalties outlast reconnecting and restarts, and announcing a
//! transaction without sending it delays it by at most one request timeout. Each scenario is
//! deterministic and replays identically.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::*;
use tabcoin_core::encode::Encode;
use tabcoin_core::node::{BAN_MS, GETHEADERS_TIMEOUT_MS, SCORE_DECAY_MS, TX_REQUEST_TIMEOUT_MS};
use tabcoin_core::store::Store;
use tabcoin_core::units::{U256, Work};
use tabcoin_core::wire::Message;

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
        let p = handshaken_claiming(
            &mut sim,
            raw,
            0,
            addr,
            0xe0 + i as u8,
            Work::from_u256(U256::MAX),
        );
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

// ---- 7: scores that decay, bans that last ----------------------------------------------

/// A ban is persisted through the host's store and survives a restart; it covers the whole
/// IPv6 /64 and lifts after an hour.
#[test]
fn bans_survive_a_restart_and_cover_the_ipv6_64() {
    let (mut sim, raw) = network();
    let p = sim.raw_connect(raw, 0, "2001:db8:1:2::5");
    sim.raw_send(raw, p, vec![0xff, 1, 2, 3]);
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
    assert_eq!(bans(&sim, 0).len(), 1);
    // Restart relay 0 from what it persisted.
    let stored = sim.sim_node(0).store.clone().load().unwrap();
    assert_eq!(
        stored.bans.keys().collect::<Vec<_>>(),
        ["2001:db8:1:2::/64"],
        "the ban was not persisted by its /64"
    );
    let config = sim.node(0).config().clone();
    sim.set_online(0, false);
    let restarted = sim.add_node(config, stored);
    sim.run_for(1_000);
    // Another address of the same /64 is refused at connect; another /64 is not.
    let same = sim.raw_connect(raw, restarted, "2001:db8:1:2:ffff::9");
    sim.run_for(1_000);
    assert!(
        closed(&sim, raw, same),
        "the ban did not survive the restart"
    );
    let other = handshaken(&mut sim, raw, restarted, "2001:db8:1:3::5", 0xe7);
    assert!(!closed(&sim, raw, other), "a neighbouring /64 was banned");
    // After an hour the ban has run out, and the store forgot it.
    sim.run_for(BAN_MS);
    let again = handshaken(&mut sim, raw, restarted, "2001:db8:1:2::5", 0xe8);
    assert!(!closed(&sim, raw, again), "the ban outlasted its hour");
    assert!(
        sim.sim_node(restarted)
            .store
            .clone()
            .load()
            .unwrap()
            .bans
            .is_empty()
    );
}

/// Scores decay (one point per `SCORE_DECAY_MS`): a peer that misbehaves a little now and
/// then is not banned for it in the long run, while a burst still bans.
#[test]
fn scores_decay_over_time() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.90", 0xe9, true);
    let pushy = next_block(&sim, 0, 98, b"pushy");
    // An unsolicited block (20 points) every 15 minutes for two hours: 160 points in all,
    // but 25 decay between two.
    // (It answers the node's periodic `getheaders` as an empty-handed peer does.)
    let mut seen = 0;
    for _ in 0..8 {
        sim.raw_send(raw, p, Message::Block(pushy.clone()).encode());
        for _ in 0..15 * 60 {
            sim.run_for(1_000);
            if fresh(&sim, raw, p, &mut seen).iter().any(is_getheaders) {
                sim.raw_send(raw, p, Message::Headers(Vec::new()).encode());
            }
        }
    }
    assert!(!closed(&sim, raw, p), "occasional misbehaviour was banned");
    let scores: Vec<u32> = penalties(&sim, 0)
        .iter()
        .filter(|(r, _)| r.contains("unsolicited block"))
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(scores, [20; 8], "{SCORE_DECAY_MS} ms per point");
    // Five in a burst still ban.
    for _ in 0..5 {
        sim.raw_send(raw, p, Message::Block(pushy.clone()).encode());
    }
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
}

// ---- 8: transactions can't be withheld -------------------------------------------------

/// Four attacker connections announce a transaction first and never send it; an honest
/// announcer's copy still reaches the pool within one request timeout (the first request
/// goes to a random announcer, the rest are asked in parallel after a short timeout).
#[test]
fn silent_announcers_delay_a_transaction_by_one_timeout_at_most() {
    let (mut sim, _) = network();
    let tx = small_payment(&sim, 0);
    let txid = tx.txid();
    let mut conns = Vec::new();
    for i in 0..5u8 {
        let raw = sim.add_raw();
        sim.set_auto_pong(raw, true);
        let p = handshaken(&mut sim, raw, 0, &format!("10.0.9.{i}"), 0xf0 + i);
        conns.push((raw, p));
    }
    // The attackers (the first four) announce first, the honest peer (the last) after them.
    for &(raw, p) in &conns {
        sim.raw_send(raw, p, tx_inv(txid).encode());
        sim.run_for(200);
    }
    let (honest, hp) = conns[4];
    let start = sim.now_ms;
    let mut seen = 0;
    while !sim.node(0).mempool().contains(&txid) && sim.now_ms < start + 10 * MINUTE {
        sim.run_for(100);
        if fresh(&sim, honest, hp, &mut seen)
            .iter()
            .any(|m| getdata_for(m, txid))
        {
            sim.raw_send(honest, hp, Message::Tx(tx.clone()).encode());
        }
    }
    let took = sim.now_ms - start;
    assert!(sim.node(0).mempool().contains(&txid), "never arrived");
    assert!(took <= TX_REQUEST_TIMEOUT_MS, "arrived after {took} ms");
    // Nobody was asked twice.
    for &(raw, p) in &conns {
        assert!(count(&sim, raw, p, |m| getdata_for(m, txid)) <= 1);
    }
}
