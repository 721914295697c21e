//! Peer-to-peer hardening on the simulator, peers: spoofed relay URLs, discovery
//! bookkeeping and penalties, stored relays, duplicate connections, handshake binding and
//! transaction requests. (Sync and blocks are in `sim_hardening.rs`.) Each scenario is
//! deterministic and replays identically.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::collections::BTreeSet;

use common::*;
use tabcoin_core::addrman::{AddrMeta, MAX_NODES_PER_SOURCE, source_group};
use tabcoin_core::encode::Encode;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::node::Event;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::Txid;
use tabcoin_core::sig::Keypair;
use tabcoin_core::sim::Sim;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit::wallet;
use tabcoin_core::units::Amount;
use tabcoin_core::wire::{InvItem, Message, NodeKind, NodeRecord};

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
    // Its record claims B's URL, signed with its own key (it cannot sign with B's).
    hello.record = Some(sim.signed_record([0x99; 32], b_url.clone(), sim.now_ms / 1000));
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
    sim.raw_send(raw, p, vec![11]);
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

/// A transaction asked of a peer that never answers is asked of the other announcer after a
/// short timeout; requests per peer are capped.
#[test]
fn tx_requests_time_out_fall_back_and_are_capped() {
    let (mut sim, raw) = network();
    sim.set_auto_pong(raw, true);
    let raw2 = sim.add_raw();
    sim.set_auto_pong(raw2, true);
    let a = handshaken(&mut sim, raw, 0, "10.0.0.86", 0xc7);
    let b = handshaken(&mut sim, raw2, 0, "10.0.0.87", 0xc8);
    let tx = small_payment(&sim, 0);
    let txid = tx.txid();
    sim.raw_send(raw, a, tx_inv(txid).encode());
    sim.run_for(200);
    sim.raw_send(raw2, b, tx_inv(txid).encode());
    sim.run_for(1_500);
    // One of the two announcers, at random, is asked first.
    let asked_a = count(&sim, raw, a, |m| getdata_for(m, txid));
    let asked_b = count(&sim, raw2, b, |m| getdata_for(m, txid));
    assert_eq!(
        asked_a + asked_b,
        1,
        "asked a {asked_a} times and b {asked_b}"
    );
    let ((raw, a), (raw2, b)) = if asked_a == 1 {
        ((raw, a), (raw2, b))
    } else {
        ((raw2, b), (raw, a))
    };
    // The silent announcer floods announcements: at most 100 requests are outstanding.
    let fakes: Vec<InvItem> = (0..1_000u32)
        .map(|i| {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_le_bytes());
            h[31] = 0xfa;
            InvItem::tx(Txid::from_bytes(h))
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
    // After the short timeout the other announcer is asked, and its answer is taken.
    assert!(sim.run_until_for(10_000, |s| {
        s.raw_messages(raw2, b).iter().any(|m| getdata_for(m, txid))
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
    let (mut sim, raw, p) = network_with_peer("10.0.0.88", 0xc9, false);
    assert!(count(&sim, raw, p, |m| matches!(m, Message::GetNodes)) >= 1);
    let now_s = sim.now_ms / 1000;
    let rec = |i: u32| sim.signed_record([0x31; 32], format!("ws://cross{i}.example/ws"), now_s);
    let (one, many) = (vec![rec(0)], (1..21).map(rec).collect::<Vec<_>>());
    sim.raw_send(raw, p, Message::Nodes(one).encode());
    sim.raw_send(raw, p, Message::Nodes(many).encode());
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

/// A browser that asked its relay for known nodes before the relay heard of another relay
/// learns the other one within a couple of minutes, not ten.
#[test]
fn a_newcomer_that_knows_too_few_relays_asks_again_soon() {
    let mut sim = Sim::new(Params::test());
    let r1 = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let mut c = Sim::config(NodeKind::Browser, 2, &[r1]);
    c.target_outbound = 2;
    let tab = sim.add_node(c, ChangeSet::default());
    sim.run_for(10_000);
    assert_eq!(sim.node(tab).known_nodes().len(), 1, "only relay 1 so far");
    // Relay 2 appears later and links to relay 1.
    let r2 = sim.add_node(Sim::config(NodeKind::Relay, 3, &[r1]), ChangeSet::default());
    let url2 = Sim::url_of(r2);
    let learned = sim.run_until_for(3 * MINUTE, |s| {
        s.node(tab).known_nodes().iter().any(|r| r.url == url2)
    });
    assert!(learned, "the tab did not learn relay 2 within 3 minutes");
}

// ---- 9: stored relays ------------------------------------------------------------------

#[test]
fn stored_relays_survive_the_first_tick_and_are_dialed() {
    let mut sim = Sim::new(Params::test());
    let now_s = sim.now_ms / 1000;
    let mut stored = ChangeSet::default();
    for i in 0..5u64 {
        let url = format!("ws://stored{i}.example/ws");
        // One heard of a minute ago, the oldest five hours ago (the node was off).
        let rec = sim.signed_record([50 + i as u8; 32], url.clone(), now_s - 60 - i * 3_600);
        // Each heard of from its own source group, as a store written with provenance says
        // (records stored without it all count as one source group).
        stored.node_meta.insert(
            url.clone(),
            Some(AddrMeta {
                source: format!("198.{}.0.1", 10 + i),
                ..AddrMeta::default()
            }),
        );
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

// ---- 12 and 17: discovery bookkeeping --------------------------------------------------

/// Many sources fill the table only up to their groups' shares (the address manager), a
/// source whose slots are taken cannot push in, and a full relay's answer still holds its
/// own record.
#[test]
fn a_full_relay_table_keeps_each_source_group_to_its_share_and_answers_with_itself() {
    let mut sim = Sim::new(Params::test());
    let n = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    let own = Sim::url_of(n);
    let rec = |sim: &Sim, src: usize, i: usize, t: u64| {
        sim.signed_record(
            [0x40; 32],
            format!("ws://s{src}-{i}.example{}.com/ws", i % 8),
            t,
        )
    };
    let mut first = None;
    // 10.0.3.x are one /16: one source group however many addresses it uses.
    for src in 0..40usize {
        let remote = if src < 8 {
            format!("10.0.3.{src}")
        } else {
            format!("{}.{}.0.1", 20 + src, src)
        };
        let p = handshaken(&mut sim, raw, n, &remote, 0x80 + src as u8);
        if src == 0 {
            first = Some(p);
        }
        let now_s = sim.now_ms / 1000;
        let list: Vec<NodeRecord> = (0..200).map(|i| rec(&sim, src, i, now_s)).collect();
        sim.raw_send(raw, p, Message::Nodes(list).encode());
        sim.run_for(1_000);
    }
    let book = sim.node(n).address_book();
    let from = |group: &str| {
        sim.node(n)
            .known_nodes()
            .iter()
            .filter(|r| {
                book.meta(&r.url)
                    .is_some_and(|m| source_group(&m.source) == group)
            })
            .count()
    };
    assert!(from("10.0.0.0/16") <= MAX_NODES_PER_SOURCE);
    assert!(from("10.0.0.0/16") > 0);
    assert!(from("28.8.0.0/16") <= MAX_NODES_PER_SOURCE);
    assert!(sim.node(n).known_nodes().len() > 20 * MAX_NODES_PER_SOURCE / 2);
    let p0 = first.unwrap();
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

// ---- 15: rejected transactions ---------------------------------------------------------

/// A transaction refused because its parent is not known yet is fetched again once it is.
#[test]
fn a_transaction_refused_for_a_missing_parent_is_fetched_again() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.90", 0xcb, true);
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
        let before = count(sim, raw, p, |m| getdata_for(m, txid));
        sim.raw_send(raw, p, tx_inv(txid).encode());
        let asked = sim.run_until_for(5_000, |s| {
            count(s, raw, p, |m| getdata_for(m, txid)) > before
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
    mine.dialed = Some(Sim::url_of(1));
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
    fake.dialed = Some(Sim::url_of(victim));
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
