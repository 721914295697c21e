//! Peer-to-peer hardening on the simulator, sync and blocks: stalling and lying peers,
//! request amplification, cheap sync bookkeeping and pending headers. (Discovery,
//! handshakes and transaction requests are in `sim_hardening_peers.rs`.) Each scenario is
//! deterministic and replays identically.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::*;
use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::node::Input;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash, BlockHeader};
use tabcoin_core::sim::Sim;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit::{long_chain, wallet};
use tabcoin_core::units::{U256, Work};
use tabcoin_core::wire::{InvId, InvItem, Message, NodeKind};

// ---- 1 and 8: stalling peers and late blocks -------------------------------------------

/// A peer that sends honest headers but ignores every `getdata` must not stall a sync.
#[test]
fn a_peer_ignoring_getdata_does_not_stall_a_2000_block_sync() {
    let params = Params::test();
    let stored = long_chain(&params, 2_000);
    let mut sim = Sim::new(params);
    sim.now_ms = (sim.params.genesis_time + 2_100 * 30) * 1000;
    let a = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), stored);
    let mut c = Sim::config(NodeKind::Relay, 3, &[a]);
    c.target_outbound = 1;
    let new = sim.add_node(c, ChangeSet::default());
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    let chain = sim.node(a).chain();
    let headers: Vec<BlockHeader> = chain.active_chain()[1..]
        .iter()
        .map(|h| chain.entry(h).unwrap().header)
        .collect();
    let p = handshaken(&mut sim, raw, new, "6.6.6.6", 0x66);
    sim.raw_send(raw, p, Message::Headers(headers).encode());
    let tip = sim.node(a).chain().tip().hash;
    let done = sim.run_until_for(3 * MINUTE, |s| s.node(new).chain().tip().hash == tip);
    assert!(
        done,
        "sync stalled at height {}",
        sim.node(new).chain().height()
    );
    // The staller was asked once, let its requests time out, and was not asked again while
    // an honest peer could serve.
    let getdata = count(&sim, raw, p, |m| matches!(m, Message::GetData(_)));
    assert!(getdata <= 2, "staller asked {getdata} times");
    assert!(
        penalties(&sim, new)
            .iter()
            .any(|(r, _)| r.contains("block requests timed out"))
    );
}

/// A block that arrives after its request timed out (and was fetched elsewhere) is late,
/// not unsolicited.
#[test]
fn a_block_arriving_after_its_timeout_is_not_penalised() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.80", 0xc1, true);
    let b = next_block(&sim, 1, 50, b"late");
    sim.raw_send(raw, p, Message::Headers(vec![b.header]).encode());
    assert!(sim.run_until_for(5_000, |s| {
        s.raw_messages(raw, p)
            .iter()
            .any(|m| getdata_for(m, b.hash()))
    }));
    // Relay 1 gets the block too and announces it; node 0's request to the raw peer is
    // outstanding, so node 0 waits for the raw peer first.
    sim.run_for(5_000);
    sim.input(1, Input::MinedBlock(b.clone()));
    // After the timeout node 0 fetches it from relay 1.
    assert!(sim.run_until_for(30_000, |s| s.node(0).chain().tip().hash == b.hash()));
    // The raw peer's copy arrives late.
    sim.raw_send(raw, p, Message::Block(b.clone()).encode());
    sim.run_for(2_000);
    let pens = penalties(&sim, 0);
    assert!(
        !pens.iter().any(|(r, _)| r.contains("unsolicited block")),
        "{pens:?}"
    );
    assert!(!closed(&sim, raw, p));
}

/// A peer that is the only source of a block and never delivers it is penalised at every
/// timeout until it is dropped.
#[test]
fn a_peer_that_never_delivers_is_eventually_dropped() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.81", 0xc2, true);
    let b = next_block(&sim, 0, 51, b"hostage");
    sim.raw_send(raw, p, Message::Headers(vec![b.header]).encode());
    // It answers `getheaders` (so only its block requests cost it anything).
    let mut seen = 0;
    for _ in 0..10 * 60 {
        sim.run_for(1_000);
        if closed(&sim, raw, p) {
            break;
        }
        if fresh(&sim, raw, p, &mut seen).iter().any(is_getheaders) {
            sim.raw_send(raw, p, Message::Headers(Vec::new()).encode());
        }
    }
    assert!(closed(&sim, raw, p), "a peer that never delivers was kept");
    assert!(
        bans(&sim, 0)
            .iter()
            .any(|r| r.contains("block requests timed out")),
        "{:?}",
        bans(&sim, 0)
    );
    // Asked again after each timeout (it is the only source), one block at a time.
    let asked = count(&sim, raw, p, |m| getdata_for(m, b.hash()));
    assert!((5..=12).contains(&asked), "asked {asked} times");
}

// ---- 2 and 11: claimed work ------------------------------------------------------------

/// A peer that claims more work than it has and answers `getheaders` with nothing is asked
/// once, loses its connection, and no longer keeps the node from being synced and mining.
#[test]
fn a_peer_claiming_work_it_never_shows_is_asked_once_and_mining_goes_on() {
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    assert!(sim.node(0).is_synced());
    let p = handshaken_claiming(
        &mut sim,
        raw,
        0,
        "10.0.0.82",
        0xc3,
        Work::from_u256(U256::MAX),
    );
    // Answer every getheaders with nothing, for a minute.
    let mut seen = 0;
    for _ in 0..300 {
        for m in fresh(&sim, raw, p, &mut seen) {
            if is_getheaders(&m) {
                sim.raw_send(raw, p, Message::Headers(Vec::new()).encode());
            }
        }
        sim.run_for(200);
    }
    let asked = count(&sim, raw, p, is_getheaders);
    assert!(asked <= 3, "the liar was asked {asked} times");
    assert!(
        bans(&sim, 0)
            .iter()
            .any(|r| r.contains("claimed more work than its headers show"))
    );
    assert!(closed(&sim, raw, p), "the liar kept its connection");
    assert!(
        sim.node(0).is_synced(),
        "a refuted claim keeps the node unsynced"
    );
    let templates = sim.sim_node(0).templates;
    let b = sim.mine(2);
    assert!(sim.run_until_for(MINUTE, |s| s.node(0).chain().tip().hash == b.hash()));
    assert!(
        sim.sim_node(0).templates > templates,
        "no mining template after a new block"
    );
}

/// A peer that claims more work and never answers `getheaders` loses its connection after
/// 30 s and sync goes on with someone else; the node ends up synced.
#[test]
fn an_unanswered_getheaders_times_out_and_sync_moves_on() {
    let mut sim = Sim::new(Params::test());
    let mut c0 = Sim::config(NodeKind::Relay, 1, &[]);
    c0.mining_key = Some(wallet(1, &sim.params).public_key());
    let honest = sim.add_node(c0, ChangeSet::default());
    for _ in 0..5 {
        sim.mine(honest);
    }
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    let mut c = Sim::config(NodeKind::Relay, 2, &[honest]);
    c.target_outbound = 1;
    let new = sim.add_node(c, ChangeSet::default());
    let p = handshaken_claiming(
        &mut sim,
        raw,
        new,
        "10.0.0.83",
        0xc4,
        Work::from_u256(U256::MAX),
    );
    let tip = sim.node(honest).chain().tip().hash;
    let done = sim.run_until_for(2 * MINUTE, |s| {
        s.node(new).chain().tip().hash == tip && s.node(new).is_synced()
    });
    assert!(
        done,
        "height {} synced {}",
        sim.node(new).chain().height(),
        sim.node(new).is_synced()
    );
    assert!(
        bans(&sim, new)
            .iter()
            .any(|r| r.contains("claimed work not shown in time"))
    );
    assert_eq!(
        count(&sim, raw, p, is_getheaders),
        1,
        "a second getheaders while one is outstanding"
    );
}

// ---- 3: getdata amplification ----------------------------------------------------------

#[test]
fn getdata_is_deduplicated_and_capped() {
    let (mut sim, raw) = network();
    for _ in 0..20 {
        sim.mine(0);
    }
    sim.run_for(5_000);
    let p = handshaken(&mut sim, raw, 0, "10.0.0.84", 0xc5);
    let chain = sim.node(0).chain();
    let tip = chain.tip().hash;
    let all: Vec<BlockHash> = chain.active_chain()[1..].to_vec();
    assert_eq!(all.len(), 25);
    let same = vec![InvItem::block(tip); 1_000];
    let mut seen = 0;
    fresh(&sim, raw, p, &mut seen);
    sim.raw_send(raw, p, Message::GetData(same).encode());
    sim.run_for(1_000);
    let got = fresh(&sim, raw, p, &mut seen);
    let blocks = got
        .iter()
        .filter(|m| matches!(m, Message::Block(_)))
        .count();
    assert_eq!(blocks, 1, "a repeated item was served {blocks} times");
    let items = all.iter().map(|&hash| InvItem::block(hash)).collect();
    sim.raw_send(raw, p, Message::GetData(items).encode());
    sim.run_for(1_000);
    let got = fresh(&sim, raw, p, &mut seen);
    let blocks = got
        .iter()
        .filter(|m| matches!(m, Message::Block(_)))
        .count();
    assert_eq!(blocks, 16);
    let notfound: usize = got
        .iter()
        .map(|m| match m {
            Message::NotFound(items) => items.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(notfound, 9, "the rest is answered with notfound");
}

// ---- 4: cheap sync bookkeeping ---------------------------------------------------------

/// `inv`s of unknown blocks and non-connecting headers make at most one `getheaders` per
/// rate-limit interval, and none while one is outstanding.
#[test]
fn unknown_block_announcements_cannot_force_a_getheaders_each() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.85", 0xc6, true);
    let before = count(&sim, raw, p, is_getheaders);
    for i in 0..200u8 {
        sim.raw_send(raw, p, block_inv(BlockHash::from_bytes([i; 32])).encode());
    }
    let far = branch(&sim.params, 8, b"far");
    for _ in 0..5 {
        sim.raw_send(raw, p, Message::Headers(vec![far[7].header]).encode());
    }
    sim.run_for(5_000);
    let asked = count(&sim, raw, p, is_getheaders) - before;
    assert!(asked <= 1, "{asked} getheaders for 205 announcements");
}

/// The height index of the best-header chain answers like a walk of the tree would, through
/// reorganisations of the best header.
#[test]
fn best_header_index_matches_a_walk_of_the_tree() {
    let params = Params::test();
    let mut chain = Chain::new(params.clone());
    let main = branch(&params, 40, b"main");
    let side = branch(&params, 45, b"side");
    let now = side.last().unwrap().header.time + 60;
    let naive_ancestor = |c: &Chain, a: &BlockHash, d: &BlockHash| {
        let (Some(a), Some(mut d)) = (c.entry(a), c.entry(d)) else {
            return false;
        };
        while d.height > a.height {
            d = c.entry(&d.header.prev).unwrap();
        }
        d.hash == a.hash
    };
    let naive_missing = |c: &Chain| {
        let mut out = Vec::new();
        let mut cursor = c.best_header().hash;
        while !c.is_active(&cursor) {
            let e = c.entry(&cursor).unwrap();
            if !c.has_block(&cursor) {
                out.push(cursor);
            }
            cursor = e.header.prev;
        }
        out.reverse();
        out
    };
    let check = |c: &Chain| {
        assert_eq!(c.missing_blocks(usize::MAX), naive_missing(c));
        let best = c.best_header().hash;
        let loc = c.best_header_locator(64);
        assert_eq!(
            loc.first(),
            Some(&best).filter(|_| c.best_header().height.0 > 0)
        );
        assert_eq!(loc.last(), Some(&c.genesis_hash()));
        for w in loc.windows(2) {
            assert!(naive_ancestor(c, &w[1], &w[0]));
        }
        let sample: Vec<BlockHash> = main
            .iter()
            .step_by(3)
            .chain(side.iter().step_by(4))
            .map(Block::hash)
            .filter(|h| c.entry(h).is_some())
            .collect();
        for a in &sample {
            for d in &sample {
                assert_eq!(c.is_ancestor(a, d), naive_ancestor(c, a, d));
            }
        }
    };
    // Main chain headers, half of its bodies (out of order), then a heavier side branch,
    // then more main headers making main the best again.
    for b in &main[..30] {
        chain.accept_header(&b.header, now).unwrap();
    }
    check(&chain);
    for b in main[..20].iter().step_by(2).chain(main[..10].iter()) {
        chain.accept_block(b, now).unwrap();
    }
    check(&chain);
    for b in &side {
        chain.accept_header(&b.header, now).unwrap();
    }
    assert_eq!(chain.best_header().hash, side[44].hash());
    check(&chain);
    for b in &main[30..] {
        chain.accept_header(&b.header, now).unwrap();
    }
    check(&chain);
    for b in &side[..5] {
        chain.accept_block(b, now).unwrap();
    }
    check(&chain);
}

// ---- 10: pending headers across peers --------------------------------------------------

#[test]
fn pending_headers_are_capped_across_peers() {
    let params = Params::test();
    // The node's best header chain: 34,000 headers from an honest peer.
    let main = branch(&params, 34_000, b"main");
    // A branch of equal work: held pending, never committed.
    let fork = branch(&params, 34_000, b"fork");
    let mut sim = Sim::new(params);
    sim.now_ms = (main.last().unwrap().header.time + 60) * 1000;
    let n = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let raws: Vec<usize> = (0..4).map(|_| sim.add_raw()).collect();
    for &r in &raws {
        sim.set_auto_pong(r, true);
    }
    let h = handshaken_claiming(
        &mut sim,
        raws[0],
        n,
        "10.0.1.1",
        0xd0,
        Work::from_u256(U256::MAX),
    );
    for chunk in main.chunks(2_000) {
        sim.raw_send(raws[0], h, Message::Headers(headers_of(chunk)).encode());
    }
    sim.run_for(2_000);
    assert_eq!(sim.node(n).chain().best_header().height.0, 34_000);
    // Three peers each deliver 34,000 headers of a branch without more work, in full
    // batches (so each looks unfinished).
    let mut conns = Vec::new();
    for (k, &r) in raws[1..].iter().enumerate() {
        let p = handshaken(&mut sim, r, n, &format!("10.0.2.{k}"), 0xd1 + k as u8);
        conns.push((r, p));
    }
    for (r, p) in &conns {
        for chunk in fork.chunks(2_000) {
            sim.raw_send(*r, *p, Message::Headers(headers_of(chunk)).encode());
        }
        sim.run_for(1_000);
    }
    // 3 x 34,000 is over 100,000 held at once: the newest connection holding some goes.
    let (r, p) = conns[2];
    assert!(closed(&sim, r, p), "pending headers are not capped overall");
    for &(r, p) in &conns[..2] {
        assert!(!closed(&sim, r, p));
    }
    assert!(bans(&sim, n).is_empty(), "eviction is not a ban");
    assert_eq!(sim.node(n).chain().tree_len(), 34_001);
}

// ---- 14: headers from a peer ahead -----------------------------------------------------

/// An announcement of several headers that do not connect (the peer is ahead of us) is
/// answered with `getheaders`, not penalised.
#[test]
fn non_connecting_announcements_are_answered_not_penalised() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.89", 0xca, true);
    // The raw peer is six blocks ahead.
    let mut ahead = sim.node(0).chain().clone();
    let key = wallet(60, &sim.params).public_key();
    let mut extra = Vec::new();
    for _ in 0..6 {
        let t = (sim.now_ms / 1000).max(ahead.tip().header.time + 1);
        let pool = Mempool::new(1_000_000, 0);
        let template = tabcoin_core::miner::build_template(&ahead, &pool, key, t, b"ahead");
        let b = tabcoin_core::miner::mine(template.block).unwrap();
        ahead.accept_block(&b, t).unwrap();
        extra.push(b);
    }
    let mut seen = 0;
    fresh(&sim, raw, p, &mut seen);
    sim.raw_send(raw, p, Message::Headers(headers_of(&extra[3..5])).encode());
    let mut served = false;
    for _ in 0..100 {
        sim.run_for(100);
        for m in fresh(&sim, raw, p, &mut seen) {
            match m {
                Message::GetHeaders { locator, .. } => {
                    let fork = ahead.find_fork(&locator);
                    let hs = ahead.headers_after(&fork, 2_000);
                    sim.raw_send(raw, p, Message::Headers(hs).encode());
                }
                Message::GetData(items) => {
                    for i in items {
                        let InvId::Block(hash) = i.id() else {
                            continue;
                        };
                        if let Some(b) = ahead.block(&hash) {
                            sim.raw_send(raw, p, Message::Block(b.clone()).encode());
                            served = true;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    assert!(served);
    assert_eq!(sim.node(0).chain().tip().hash, ahead.tip().hash);
    assert!(penalties(&sim, 0).is_empty(), "{:?}", penalties(&sim, 0));
}

/// A peer mining on a branch with less work than ours announces each block it finds; we do
/// not keep low-work headers, so between two of our (rate-limited) requests its announcements
/// connect to nothing. That is an honest race, not an offence: no penalty, however fast.
#[test]
fn a_fast_race_on_a_lower_work_branch_is_not_penalised() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.90", 0xcb, true);
    for _ in 0..30 {
        sim.mine(0);
        assert!(sim.run_until_for(60_000, |s| s.converged()));
    }
    // Its branch from genesis: 25 blocks, less work than the node's 35.
    let theirs = branch(&sim.params, 25, b"race");
    let mut seen = 0;
    for i in 0..theirs.len() {
        for m in fresh(&sim, raw, p, &mut seen) {
            if is_getheaders(&m) {
                // It answers with its whole branch so far (it forks at genesis).
                let hs = headers_of(&theirs[..i]);
                sim.raw_send(raw, p, Message::Headers(hs).encode());
            }
        }
        sim.raw_send(
            raw,
            p,
            Message::Headers(headers_of(&theirs[i..=i])).encode(),
        );
        sim.run_for(150);
    }
    sim.run_for(3_000);
    assert!(penalties(&sim, 0).is_empty(), "{:?}", penalties(&sim, 0));
    assert!(!closed(&sim, raw, p));
}

// ---- 18: the simulator -----------------------------------------------------------------

/// Messages on one link arrive in the order they were sent, whatever the jitter.
#[test]
fn links_deliver_in_order() {
    let (mut sim, raw) = network();
    sim.jitter_ms = 500;
    let p = handshaken(&mut sim, raw, 0, "10.0.0.93", 0xcc);
    for n in 0..50u64 {
        sim.raw_send(raw, p, Message::Ping(1_000 + n).encode());
    }
    sim.run_for(3_000);
    let pongs: Vec<u64> = sim
        .raw_messages(raw, p)
        .into_iter()
        .filter_map(|m| match m {
            Message::Pong(n) => Some(n),
            _ => None,
        })
        .collect();
    let expected: Vec<u64> = (0..50).map(|n| 1_000 + n).collect();
    assert_eq!(pongs, expected);
}

/// The number of `getdata` messages a fresh tab sends to sync 400 small blocks from a relay.
fn getdata_to_sync_400_blocks() -> u64 {
    let params = Params::test();
    let stored = long_chain(&params, 400);
    let mut sim = Sim::new(params);
    sim.now_ms = (sim.params.genesis_time + 500 * 30) * 1000;
    let relay = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), stored);
    let tab = sim.add_node(
        Sim::config(NodeKind::Browser, 2, &[relay]),
        ChangeSet::default(),
    );
    let tip = sim.node(relay).chain().tip().hash;
    assert!(sim.run_until_for(5 * MINUTE, |s| s.node(tab).chain().tip().hash == tip));
    sim.delivered.get(&5).copied().unwrap_or(0)
}

/// Initial sync asks for blocks in batches: far fewer getdata messages than blocks, so a
/// relay's per-peer message rate limit never mistakes a syncing tab for a flooder.
#[test]
fn initial_sync_requests_blocks_in_batches() {
    let getdata = getdata_to_sync_400_blocks();
    assert!(
        getdata * 4 <= 400,
        "{getdata} getdata messages for 400 blocks"
    );
}

/// With small blocks the initial-sync window grows past 16 (`docs/PROTOCOL.md` §6.5): a
/// window of 16 refilled 8 at a time needs about 50 `getdata` for 400 blocks; the wider
/// window asks 16 at a time once the relay has shown its blocks are small.
#[test]
fn initial_sync_widens_the_window_for_small_blocks() {
    let getdata = getdata_to_sync_400_blocks();
    assert!(
        getdata * 12 <= 400,
        "{getdata} getdata messages for 400 blocks"
    );
}
