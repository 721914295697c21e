//! Peer-to-peer hardening on the simulator: stalling and lying peers, request amplification,
//! spoofed relay URLs, discovery bookkeeping and handshake binding. Each scenario is
//! deterministic and replays identically.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeSet;

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::hash::Hash256;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::node::{Event, Input, PeerId};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHeader};
use tabcoin_core::sig::{Keypair, PublicKey};
use tabcoin_core::sim::Sim;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit::{block_with, child_of, wallet};
use tabcoin_core::units::{Amount, Height, U256, Work};
use tabcoin_core::wire::{InvItem, InvKind, Message, NodeKind, NodeRecord};

const MINUTE: u64 = 60_000;

// ---- helpers ---------------------------------------------------------------------------

/// Four relays that found each other and share a 5-block chain mined by relay 0 (paying
/// wallet 1); a raw endpoint at index 4.
fn network() -> (Sim, usize) {
    let mut sim = Sim::new(Params::test());
    for i in 0..4 {
        let boot = if i == 0 { 1 } else { i - 1 };
        let mut c = Sim::config(NodeKind::Relay, i as u8 + 1, &[boot]);
        c.target_outbound = 2;
        c.mining_key = Some(wallet(i as u8 + 1, &sim.params).public_key());
        sim.add_node(c, ChangeSet::default());
    }
    sim.run_for(2 * MINUTE);
    for _ in 0..5 {
        sim.mine(0);
        assert!(sim.run_until_for(MINUTE, |s| s.converged()));
    }
    let raw = sim.add_raw();
    (sim, raw)
}

fn penalties(sim: &Sim, node: usize) -> Vec<(String, u32)> {
    sim.sim_node(node)
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PeerPenalised { reason, score, .. } => Some((reason.clone(), *score)),
            _ => None,
        })
        .collect()
}

fn bans(sim: &Sim, node: usize) -> Vec<String> {
    sim.sim_node(node)
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PeerBanned { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn closed(sim: &Sim, raw: usize, peer: PeerId) -> bool {
    sim.raw(raw).closed.contains(&peer)
}

/// Messages `raw` received on `peer` since `seen` (which is advanced).
fn fresh(sim: &Sim, raw: usize, peer: PeerId, seen: &mut usize) -> Vec<Message> {
    let all = sim.raw_messages(raw, peer);
    let out = all[(*seen).min(all.len())..].to_vec();
    *seen = all.len();
    out
}

fn count<F: Fn(&Message) -> bool>(sim: &Sim, raw: usize, peer: PeerId, f: F) -> usize {
    sim.raw_messages(raw, peer).iter().filter(|m| f(m)).count()
}

fn is_getheaders(m: &Message) -> bool {
    matches!(m, Message::GetHeaders { .. })
}

/// A chain of `n` blocks as a store would hold it.
fn long_chain(params: &Params, n: usize) -> ChangeSet {
    let mut chain = Chain::new(params.clone());
    let key = wallet(42, params).public_key();
    let mut all = ChangeSet::default();
    for _ in 0..n {
        let block = block_with(&chain, &[], key, b"long");
        all.merge(
            chain
                .accept_block(&block, block.header.time)
                .unwrap()
                .changes,
        );
    }
    all
}

/// `n` sealed blocks on genesis (each only its coinbase), built without a chain.
fn branch(params: &Params, n: usize, extra: &[u8]) -> Vec<Block> {
    let key = wallet(77, params).public_key();
    let mut parent = params.genesis_block();
    let mut out: Vec<Block> = Vec::with_capacity(n);
    for h in 0..n as u64 {
        let b = child_of(params, &parent, Height(h), key, extra);
        out.push(b.clone());
        parent = b;
    }
    out
}

fn headers_of(blocks: &[Block]) -> Vec<BlockHeader> {
    blocks.iter().map(|b| b.header).collect()
}

fn block_inv(hash: Hash256) -> Message {
    Message::Inv(vec![InvItem {
        kind: InvKind::Block,
        hash,
    }])
}

fn tx_inv(hash: Hash256) -> Message {
    Message::Inv(vec![InvItem {
        kind: InvKind::Tx,
        hash,
    }])
}

fn getdata_for(m: &Message, hash: &Hash256) -> bool {
    matches!(m, Message::GetData(items) if items.iter().any(|i| i.hash == *hash))
}

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
    let p = sim.raw_connect(raw, new, "6.6.6.6");
    sim.raw_handshake(raw, p, [0x66; 32]);
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
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    let p = sim.raw_connect(raw, 0, "10.0.0.80");
    sim.raw_handshake(raw, p, [0xc1; 32]);
    let b = block_with(
        sim.node(1).chain(),
        &[],
        wallet(50, &sim.params).public_key(),
        b"late",
    );
    sim.raw_send(raw, p, Message::Headers(vec![b.header]).encode());
    assert!(sim.run_until_for(5_000, |s| {
        s.raw_messages(raw, p)
            .iter()
            .any(|m| getdata_for(m, &b.hash()))
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
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    let p = sim.raw_connect(raw, 0, "10.0.0.81");
    sim.raw_handshake(raw, p, [0xc2; 32]);
    let b = block_with(
        sim.node(0).chain(),
        &[],
        wallet(51, &sim.params).public_key(),
        b"hostage",
    );
    sim.raw_send(raw, p, Message::Headers(vec![b.header]).encode());
    let dropped = sim.run_until_for(10 * MINUTE, |s| closed(s, raw, p));
    assert!(dropped, "a peer that never delivers was kept");
    assert!(
        bans(&sim, 0)
            .iter()
            .any(|r| r.contains("block requests timed out")),
        "{:?}",
        bans(&sim, 0)
    );
    // Asked again after each timeout (it is the only source), one block at a time.
    let asked = count(&sim, raw, p, |m| getdata_for(m, &b.hash()));
    assert!((5..=12).contains(&asked), "asked {asked} times");
}

// ---- 2 and 11: claimed work ------------------------------------------------------------

/// A peer that claims more work than it has and answers `getheaders` with nothing is asked
/// once, penalised, and no longer keeps the node from being synced and mining.
#[test]
fn a_peer_claiming_work_it_never_shows_is_asked_once_and_mining_goes_on() {
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    assert!(sim.node(0).is_synced());
    let p = sim.raw_connect(raw, 0, "10.0.0.82");
    sim.raw_handshake_claiming(raw, p, [0xc3; 32], Work::from_u256(U256::MAX));
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
        penalties(&sim, 0)
            .iter()
            .any(|(r, _)| r.contains("claimed more work than its headers show"))
    );
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

/// A peer that never answers `getheaders` is given up after 30 s and sync goes on with
/// someone else; the node ends up synced.
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
    let p = sim.raw_connect(raw, new, "10.0.0.83");
    sim.raw_handshake_claiming(raw, p, [0xc4; 32], Work::from_u256(U256::MAX));
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
        penalties(&sim, new)
            .iter()
            .any(|(r, _)| r.contains("headers request timed out"))
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
    let p = sim.raw_connect(raw, 0, "10.0.0.84");
    sim.raw_handshake(raw, p, [0xc5; 32]);
    let chain = sim.node(0).chain();
    let tip = chain.tip().hash;
    let all: Vec<Hash256> = chain.active_chain()[1..].to_vec();
    assert_eq!(all.len(), 25);
    let same = vec![
        InvItem {
            kind: InvKind::Block,
            hash: tip
        };
        1_000
    ];
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
    let items = all
        .iter()
        .map(|&hash| InvItem {
            kind: InvKind::Block,
            hash,
        })
        .collect();
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
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    let p = sim.raw_connect(raw, 0, "10.0.0.85");
    sim.raw_handshake(raw, p, [0xc6; 32]);
    let before = count(&sim, raw, p, is_getheaders);
    for i in 0..200u8 {
        sim.raw_send(raw, p, block_inv(Hash256([i; 32])).encode());
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
    let naive_ancestor = |c: &Chain, a: &Hash256, d: &Hash256| {
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
        let sample: Vec<Hash256> = main
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

// ---- 5: spoofed relay URLs -------------------------------------------------------------

/// An inbound peer advertising an honest relay's URL neither keeps us from dialing it, nor
/// gets it bound to its own id, banned or forgotten.
#[test]
fn an_inbound_peer_cannot_hijack_an_honest_relay_url() {
    let mut sim = Sim::new(Params::test());
    let b = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    let mut c = Sim::config(NodeKind::Relay, 2, &[b]);
    c.target_outbound = 1;
    let a = sim.add_node(c, ChangeSet::default());
    let b_url = Sim::url_of(b);
    let b_id = sim.node(b).node_id();
    let to_b = |s: &Sim| {
        s.node(a)
            .peers()
            .iter()
            .any(|p| p.outbound && p.remote == Sim::url_of(b))
    };
    assert!(sim.run_until_for(10_000, to_b));
    // The impostor connects to A claiming to be relay B.
    let p = sim.raw_connect(raw, a, "6.6.6.7");
    let mut hello = sim.raw_hello([0x99; 32], sim.node(a).chain().tip().work);
    hello.kind = NodeKind::Relay;
    hello.url = Some(b_url.clone());
    sim.raw_handshake_with(raw, p, [0x99; 32], hello);
    let record = |s: &Sim| {
        s.node(a)
            .known_nodes()
            .into_iter()
            .find(|r| r.url == Sim::url_of(b))
    };
    assert_eq!(record(&sim).map(|r| r.node_id), Some(b_id));
    // While it is connected, A still dials B when the link to B drops.
    sim.cut(a, b);
    assert!(
        sim.run_until_for(2 * MINUTE, to_b),
        "the impostor kept A from dialing B"
    );
    // It misbehaves and is banned: B's URL is neither banned nor forgotten.
    sim.raw_send(raw, p, vec![0xff]);
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
    assert_eq!(record(&sim).map(|r| r.node_id), Some(b_id));
    sim.cut(a, b);
    assert!(
        sim.run_until_for(2 * MINUTE, to_b),
        "B's URL was banned with the impostor"
    );
}

// ---- 6: transaction requests -----------------------------------------------------------

/// A transaction asked of a peer that never answers is asked of another announcer after a
/// timeout; requests per peer are capped.
#[test]
fn tx_requests_time_out_fall_back_and_are_capped() {
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    let raw2 = sim.add_raw();
    sim.set_auto_pong(raw2, true);
    let a = sim.raw_connect(raw, 0, "10.0.0.86");
    sim.raw_handshake(raw, a, [0xc7; 32]);
    let b = sim.raw_connect(raw2, 0, "10.0.0.87");
    sim.raw_handshake(raw2, b, [0xc8; 32]);
    let tx = {
        let n = sim.node(0);
        wallet(1, &sim.params)
            .pay(
                n.chain(),
                n.mempool(),
                wallet(2, &sim.params).public_key(),
                Amount::from_units(5_000).unwrap(),
                2_000,
                None,
            )
            .unwrap()
    };
    let txid = tx.txid();
    sim.raw_send(raw, a, tx_inv(txid).encode());
    sim.run_for(500);
    sim.raw_send(raw2, b, tx_inv(txid).encode());
    sim.run_for(500);
    assert_eq!(count(&sim, raw, a, |m| getdata_for(m, &txid)), 1);
    assert_eq!(count(&sim, raw2, b, |m| getdata_for(m, &txid)), 0);
    // The silent announcer floods announcements: at most 100 requests are outstanding.
    let fakes: Vec<InvItem> = (0..1_000u32)
        .map(|i| {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_le_bytes());
            h[31] = 0xfa;
            InvItem {
                kind: InvKind::Tx,
                hash: Hash256(h),
            }
        })
        .collect();
    sim.raw_send(raw, a, Message::Inv(fakes).encode());
    sim.run_for(1_000);
    let requested: usize = sim
        .raw_messages(raw, a)
        .iter()
        .map(|m| match m {
            Message::GetData(items) => items.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(requested, 100, "requests per peer are not capped");
    // After the timeout the other announcer is asked, and its answer is taken.
    assert!(sim.run_until_for(45_000, |s| {
        s.raw_messages(raw2, b)
            .iter()
            .any(|m| getdata_for(m, &txid))
    }));
    sim.raw_send(raw2, b, Message::Tx(tx).encode());
    sim.run_for(1_000);
    assert!(sim.node(0).mempool().contains(&txid));
}

// ---- 7: discovery penalties ------------------------------------------------------------

/// A one-record forward crossing the answer to `getnodes` does not make the answer look
/// unsolicited.
#[test]
fn a_forward_crossing_the_nodes_answer_is_not_penalised() {
    let (mut sim, raw) = network();
    let p = sim.raw_connect(raw, 0, "10.0.0.88");
    sim.raw_handshake(raw, p, [0xc9; 32]);
    assert!(count(&sim, raw, p, |m| matches!(m, Message::GetNodes)) >= 1);
    let rec = |i: u32| NodeRecord {
        node_id: PublicKey([0; 32]),
        url: format!("ws://cross{i}.example/ws"),
        last_seen: 1,
    };
    sim.raw_send(raw, p, Message::Nodes(vec![rec(0)]).encode());
    sim.raw_send(raw, p, Message::Nodes((1..21).map(rec).collect()).encode());
    sim.run_for(1_000);
    assert!(penalties(&sim, 0).is_empty(), "{:?}", penalties(&sim, 0));
    let known = sim.node(0).known_nodes();
    assert!(known.iter().any(|r| r.url == "ws://cross20.example/ws"));
}

/// Honest relays gossiping for an hour never penalise each other.
#[test]
fn an_hour_of_discovery_penalises_nobody() {
    let mut sim = Sim::new(Params::test());
    for i in 0..20usize {
        let boot = if i == 0 { 1 } else { i - 1 };
        let mut c = Sim::config(NodeKind::Relay, i as u8 + 1, &[boot]);
        c.target_outbound = 4;
        sim.add_node(c, ChangeSet::default());
    }
    sim.run_for(60 * MINUTE);
    for i in sim.node_indices() {
        assert!(
            penalties(&sim, i).is_empty(),
            "node {i}: {:?}",
            penalties(&sim, i)
        );
        assert!(bans(&sim, i).is_empty(), "node {i}: {:?}", bans(&sim, i));
    }
}

// ---- 9: stored relays ------------------------------------------------------------------

#[test]
fn stored_relays_survive_the_first_tick_and_are_dialed() {
    let mut sim = Sim::new(Params::test());
    let now_s = sim.now_ms / 1000;
    let mut stored = ChangeSet::default();
    for i in 0..5u64 {
        let url = format!("ws://stored{i}.example/ws");
        let rec = NodeRecord {
            node_id: Keypair::from_seed(&[50 + i as u8; 32]).public_key(),
            url: url.clone(),
            // One heard of a minute ago, the oldest five hours ago (the node was off).
            last_seen: now_s - 60 - i * 3_600,
        };
        stored.nodes.insert(url, Some(rec));
    }
    let n = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), stored.clone());
    sim.run_for(3_000);
    let known = sim.node(n).known_nodes();
    assert_eq!(known.len(), 5, "stored relays were forgotten: {known:?}");
    for r in &known {
        assert_eq!(Some(r), stored.nodes[&r.url].as_ref(), "last_seen changed");
    }
    let dialed: BTreeSet<String> = sim
        .sim_node(n)
        .dials
        .iter()
        .map(|(_, u)| u.clone())
        .collect();
    assert_eq!(dialed.len(), 5);
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
    let h = sim.raw_connect(raws[0], n, "10.0.1.1");
    sim.raw_handshake_claiming(raws[0], h, [0xd0; 32], Work::from_u256(U256::MAX));
    for chunk in main.chunks(2_000) {
        sim.raw_send(raws[0], h, Message::Headers(headers_of(chunk)).encode());
    }
    sim.run_for(2_000);
    assert_eq!(sim.node(n).chain().best_header().height.0, 34_000);
    // Three peers each deliver 34,000 headers of a branch without more work, in full
    // batches (so each looks unfinished).
    let mut conns = Vec::new();
    for (k, &r) in raws[1..].iter().enumerate() {
        let p = sim.raw_connect(r, n, &format!("10.0.2.{k}"));
        sim.raw_handshake(r, p, [0xd1 + k as u8; 32]);
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

// ---- 12 and 17: discovery bookkeeping --------------------------------------------------

/// When the table is full the stalest relay makes room, per-source counts fall as records
/// leave, and a full relay's answer still holds its own record.
#[test]
fn a_full_relay_table_evicts_the_stalest_and_answers_with_itself() {
    let mut sim = Sim::new(Params::test());
    let n = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    let own = Sim::url_of(n);
    let rec = |src: usize, i: usize, t: u64| NodeRecord {
        node_id: PublicKey([0; 32]),
        url: format!("ws://s{src}-{i}.example/ws"),
        last_seen: t,
    };
    let mut first = None;
    for src in 0..33usize {
        let p = sim.raw_connect(raw, n, &format!("10.0.3.{src}"));
        sim.raw_handshake(raw, p, [0x80 + src as u8; 32]);
        if src == 0 {
            first = Some(p);
        }
        let now_s = sim.now_ms / 1000;
        let list: Vec<NodeRecord> = (0..64).map(|i| rec(src, i, now_s)).collect();
        sim.raw_send(raw, p, Message::Nodes(list).encode());
        sim.run_for(1_000);
    }
    let known = sim.node(n).known_nodes();
    assert_eq!(known.len(), 2_000);
    // The newest source got in (the oldest records made room).
    assert!(known.iter().any(|r| r.url == "ws://s32-63.example/ws"));
    assert!(!known.iter().any(|r| r.url == "ws://s0-0.example/ws"));
    // The first source's records left, so it may introduce relays again.
    let p0 = first.unwrap();
    let now_s = sim.now_ms / 1000;
    let small: Vec<NodeRecord> = (100..105).map(|i| rec(0, i, now_s)).collect();
    sim.raw_send(raw, p0, Message::Nodes(small).encode());
    sim.run_for(1_000);
    assert!(
        sim.node(n)
            .known_nodes()
            .iter()
            .any(|r| r.url == "ws://s0-104.example/ws"),
        "a source whose records left is still counted"
    );
    // Asked for relays, a full relay still names itself.
    sim.raw_send(raw, p0, Message::GetNodes.encode());
    sim.run_for(1_000);
    let answer = sim
        .raw_messages(raw, p0)
        .into_iter()
        .filter_map(|m| match m {
            Message::Nodes(list) if list.len() > 10 => Some(list),
            _ => None,
        })
        .next_back()
        .expect("an answer");
    assert_eq!(answer.len(), 1_000);
    assert!(answer.iter().any(|r| r.url == own), "own record missing");
}

/// A relay URL whose handshake never completes is backed off like one that cannot be
/// reached.
#[test]
fn a_url_whose_handshake_fails_is_backed_off() {
    let mut sim = Sim::new(Params::test());
    let raw = sim.add_raw();
    let url = "ws://silent.example/ws";
    sim.raw_listen(raw, url);
    let mut c = Sim::config(NodeKind::Relay, 1, &[]);
    c.bootstrap = vec![String::from(url)];
    c.target_outbound = 1;
    let n = sim.add_node(c, ChangeSet::default());
    sim.run_for(10 * MINUTE);
    let dials = sim
        .sim_node(n)
        .dials
        .iter()
        .filter(|(_, u)| u == url)
        .count();
    assert!(
        (5..=12).contains(&dials),
        "{dials} dials of a relay that never completes a handshake"
    );
}

/// The dial backoff grows to its documented 5-minute cap.
#[test]
fn dial_backoff_reaches_five_minutes() {
    let mut sim = Sim::new(Params::test());
    let mut c = Sim::config(NodeKind::Relay, 1, &[]);
    c.bootstrap = vec![String::from("ws://nowhere.example/ws")];
    let n = sim.add_node(c, ChangeSet::default());
    sim.run_for(40 * MINUTE);
    let times: Vec<u64> = sim.sim_node(n).dials.iter().map(|(t, _)| *t).collect();
    let longest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        (300_000..303_000).contains(&longest),
        "longest wait between dials {longest} ms"
    );
}

// ---- 13: duplicate connections ---------------------------------------------------------

/// A connection that has only claimed a node id cannot keep that node's real connection
/// out.
#[test]
fn an_unproven_node_id_cannot_block_the_real_node() {
    let mut sim = Sim::new(Params::test());
    let a = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let raw = sim.add_raw();
    let b_id = Keypair::from_seed(&[2; 32]).public_key();
    let p = sim.raw_connect(raw, a, "6.6.6.8");
    let mut hello = sim.raw_hello([0x42; 32], sim.node(a).chain().tip().work);
    hello.node_id = b_id;
    sim.raw_send(raw, p, Message::Hello(hello).encode());
    let mut cb = Sim::config(NodeKind::Relay, 2, &[a]);
    cb.target_outbound = 1;
    let b = sim.add_node(cb, ChangeSet::default());
    assert_eq!(sim.node(b).node_id(), b_id);
    let joined = sim.run_until_for(3_000, |s| {
        s.node(a).peers().iter().any(|p| p.node_id == b_id)
    });
    assert!(joined, "the real node was refused as a duplicate");
}

/// Two relays dialing each other at once end with one connection, the one opened by the
/// node with the smaller id, and keep it.
#[test]
fn simultaneous_dials_settle_on_one_connection() {
    for (sa, sb) in [(1u8, 2u8), (2, 1), (7, 3)] {
        let mut sim = Sim::new(Params::test());
        sim.jitter_ms = 60;
        let mut ca = Sim::config(NodeKind::Relay, sa, &[1]);
        ca.target_outbound = 1;
        let a = sim.add_node(ca, ChangeSet::default());
        let mut cb = Sim::config(NodeKind::Relay, sb, &[0]);
        cb.target_outbound = 1;
        let b = sim.add_node(cb, ChangeSet::default());
        sim.run_for(5 * MINUTE);
        let pa = sim.node(a).peers();
        let pb = sim.node(b).peers();
        assert_eq!(pa.len(), 1, "{pa:?}");
        assert_eq!(pb.len(), 1, "{pb:?}");
        let smaller = if sim.node(a).node_id() < sim.node(b).node_id() {
            a
        } else {
            b
        };
        let opener_ok = if smaller == a {
            pa[0].outbound && !pb[0].outbound
        } else {
            pb[0].outbound && !pa[0].outbound
        };
        assert!(opener_ok, "kept the connection opened by the larger id");
        let churn = sim
            .sim_node(a)
            .events
            .iter()
            .filter(|e| matches!(e, Event::PeerConnected { .. }))
            .count();
        assert!(churn <= 2, "{churn} connections in 5 minutes");
    }
}

// ---- 14: headers from a peer ahead -----------------------------------------------------

/// An announcement of several headers that do not connect (the peer is ahead of us) is
/// answered with `getheaders`, not penalised.
#[test]
fn non_connecting_announcements_are_answered_not_penalised() {
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    let p = sim.raw_connect(raw, 0, "10.0.0.89");
    sim.raw_handshake(raw, p, [0xca; 32]);
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
                        if let Some(b) = ahead.block(&i.hash) {
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

// ---- 15: rejected transactions ---------------------------------------------------------

/// A transaction refused because its parent is not known yet is fetched again once it is.
#[test]
fn a_transaction_refused_for_a_missing_parent_is_fetched_again() {
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    let p = sim.raw_connect(raw, 0, "10.0.0.90");
    sim.raw_handshake(raw, p, [0xcb; 32]);
    let params = sim.params.clone();
    let (parent, child) = {
        let n = sim.node(0);
        let parent = wallet(1, &params)
            .pay(
                n.chain(),
                n.mempool(),
                wallet(3, &params).public_key(),
                Amount::from_units(100_000).unwrap(),
                2_000,
                None,
            )
            .unwrap();
        let mut pool = Mempool::new(1_000_000, 0);
        pool.add(parent.clone(), n.chain()).unwrap();
        let child = wallet(3, &params)
            .pay(
                n.chain(),
                &pool,
                wallet(4, &params).public_key(),
                Amount::from_units(10_000).unwrap(),
                2_000,
                None,
            )
            .unwrap();
        (parent, child)
    };
    let deliver = |sim: &mut Sim, tx: &tabcoin_core::primitives::Transaction| {
        let txid = tx.txid();
        let before = count(sim, raw, p, |m| getdata_for(m, &txid));
        sim.raw_send(raw, p, tx_inv(txid).encode());
        let asked = sim.run_until_for(5_000, |s| {
            count(s, raw, p, |m| getdata_for(m, &txid)) > before
        });
        if asked {
            sim.raw_send(raw, p, Message::Tx(tx.clone()).encode());
            sim.run_for(1_000);
        }
        asked
    };
    assert!(deliver(&mut sim, &child));
    assert!(!sim.node(0).mempool().contains(&child.txid()));
    assert!(deliver(&mut sim, &parent));
    assert!(
        deliver(&mut sim, &child),
        "a child refused for its missing parent is never fetched again"
    );
    assert!(sim.node(0).mempool().contains(&child.txid()));
}

// ---- 16: handshake binding -------------------------------------------------------------

/// An `auth` signature obtained on one connection does not prove the signer's id on
/// another.
#[test]
fn an_auth_signature_cannot_be_replayed_on_another_connection() {
    let (mut sim, raw) = network();
    // The victim: a relay nobody knows, so it has no connection to relay 1.
    let victim = sim.add_node(Sim::config(NodeKind::Relay, 9, &[]), ChangeSet::default());
    // Connection A to the victim: note its challenge.
    let a = sim.raw_connect(raw, victim, "10.0.0.91");
    sim.run_for(500);
    let hello0 = match sim.raw_messages(raw, a).into_iter().next() {
        Some(Message::Hello(h)) => h,
        other => panic!("expected a hello, got {other:?}"),
    };
    // Connection B to relay 1, as the attacker itself, offering the victim's challenge.
    let b = sim.raw_connect(raw, 1, "10.0.0.92");
    let mut mine = sim.raw_hello([0xee; 32], hello0.best_work);
    mine.challenge = hello0.challenge;
    sim.raw_send(raw, b, Message::Hello(mine).encode());
    sim.run_for(500);
    let msgs = sim.raw_messages(raw, b);
    let hello1 = msgs
        .iter()
        .find_map(|m| match m {
            Message::Hello(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    let sig1 = msgs
        .iter()
        .find_map(|m| match m {
            Message::Auth(s) => Some(*s),
            _ => None,
        })
        .expect("relay 1 proves its id");
    // Replay relay 1's proof on connection A, claiming to be relay 1.
    let mut fake = hello1.clone();
    fake.challenge = [5; 32];
    sim.raw_send(raw, a, Message::Hello(fake).encode());
    sim.raw_send(raw, a, Message::Auth(sig1).encode());
    sim.run_for(1_000);
    let impostors = sim
        .node(victim)
        .peers()
        .iter()
        .filter(|p| p.node_id == hello1.node_id)
        .count();
    assert_eq!(impostors, 0, "the replayed proof was accepted");
    assert!(closed(&sim, raw, a));
    assert!(
        bans(&sim, victim)
            .iter()
            .any(|r| r.contains("node id proof failed"))
    );
}

// ---- 18: the simulator -----------------------------------------------------------------

/// Messages on one link arrive in the order they were sent, whatever the jitter.
#[test]
fn links_deliver_in_order() {
    let (mut sim, raw) = network();
    sim.jitter_ms = 500;
    let p = sim.raw_connect(raw, 0, "10.0.0.93");
    sim.raw_handshake(raw, p, [0xcc; 32]);
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

/// A browser that asked its relay for known nodes before the relay heard of another relay
/// learns the other one within a couple of minutes, not ten.
#[test]
fn a_newcomer_that_knows_too_few_relays_asks_again_soon() {
    use tabcoin_core::sim::Sim;
    use tabcoin_core::store::ChangeSet;
    use tabcoin_core::wire::NodeKind;
    let mut sim = Sim::new(tabcoin_core::params::Params::test());
    let r1 = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let mut c = Sim::config(NodeKind::Browser, 2, &[r1]);
    c.target_outbound = 2;
    let tab = sim.add_node(c, ChangeSet::default());
    sim.run_for(10_000);
    assert_eq!(sim.node(tab).known_nodes().len(), 1, "only relay 1 so far");
    // Relay 2 appears later and links to relay 1.
    let r2 = sim.add_node(Sim::config(NodeKind::Relay, 3, &[r1]), ChangeSet::default());
    let url2 = Sim::url_of(r2);
    let learned = sim.run_until_for(3 * 60_000, |s| {
        s.node(tab).known_nodes().iter().any(|r| r.url == url2)
    });
    assert!(learned, "the tab did not learn relay 2 within 3 minutes");
}

/// Initial sync asks for blocks in batches: far fewer getdata messages than blocks, so a
/// relay's per-peer message rate limit never mistakes a syncing tab for a flooder.
#[test]
fn initial_sync_requests_blocks_in_batches() {
    use tabcoin_core::chain::Chain;
    use tabcoin_core::sim::Sim;
    use tabcoin_core::store::ChangeSet;
    use tabcoin_core::wire::NodeKind;
    let params = tabcoin_core::params::Params::test();
    let mut chain = Chain::new(params.clone());
    let key = tabcoin_core::testkit::wallet(42, &params).public_key();
    let mut stored = ChangeSet::default();
    for _ in 0..400 {
        let b = tabcoin_core::testkit::block_with(&chain, &[], key, b"batch");
        stored.merge(chain.accept_block(&b, b.header.time).unwrap().changes);
    }
    let mut sim = Sim::new(params);
    sim.now_ms = (sim.params.genesis_time + 500 * 30) * 1000;
    let relay = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), stored);
    let tab = sim.add_node(
        Sim::config(NodeKind::Browser, 2, &[relay]),
        ChangeSet::default(),
    );
    let tip = sim.node(relay).chain().tip().hash;
    assert!(sim.run_until_for(5 * 60_000, |s| s.node(tab).chain().tip().hash == tip));
    let getdata = sim.delivered.get(&5).copied().unwrap_or(0);
    assert!(
        getdata * 4 <= 400,
        "{getdata} getdata messages for 400 blocks"
    );
}
