//! Signed relay records, handshakes bound to the dialed URL, and version negotiation
//! (`docs/PROTOCOL.md` §3.2, §4, §5.1): forged or expired records cost their sender, a
//! byte-forwarding proxy never carries a link between two relays, and unknown message types
//! from a peer of this version are ignored.

mod common;

use common::{MINUTE, bans, closed, network, network_with_peer, penalties};
use tabcoin_core::encode::Encode;
use tabcoin_core::node::PeerId;
use tabcoin_core::params::Params;
use tabcoin_core::record::{RECORD_CLOCK_GRACE_S, RECORD_LIFETIME_S};
use tabcoin_core::sim::Sim;
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::wire::{Message, NodeKind};

fn knows(sim: &Sim, node: usize, url: &str) -> bool {
    sim.node(node).known_nodes().iter().any(|r| r.url == url)
}

// ---- signed records ----------------------------------------------------------------------

/// A record whose signature does not match is dropped and costs the sender 50; a valid one
/// from the same message is learned, stored with its signature and forwarded verbatim.
#[test]
fn a_forged_record_is_dropped_and_its_sender_penalised() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.51", 0x51, true);
    let now_s = sim.now_ms / 1000;
    let good = sim.signed_record([0x52; 32], "ws://good.example/ws".into(), now_s);
    // Someone else's record, moved to another URL: the signature no longer matches.
    let mut moved = sim.signed_record([0x53; 32], "ws://victim.example/ws".into(), now_s);
    moved.url = "ws://attacker.example/ws".into();
    // A record claiming a node id it was not signed by.
    let mut stolen = sim.signed_record([0x54; 32], "ws://stolen.example/ws".into(), now_s);
    stolen.node_id = sim.node(1).node_id();
    let list = vec![good.clone(), moved, stolen];
    sim.raw_send(raw, p, Message::Nodes(list).encode());
    sim.run_for(2_000);
    assert!(!knows(&sim, 0, "ws://attacker.example/ws"));
    assert!(!knows(&sim, 0, "ws://stolen.example/ws"));
    assert_eq!(
        penalties(&sim, 0),
        vec![("forged relay record".to_string(), 50)],
        "one penalty per message"
    );
    // The valid record is kept whole, signature included, in the node and its store, and
    // reaches the other relays byte for byte.
    let kept = sim.node(0).known_nodes();
    assert!(kept.contains(&good));
    let stored = sim.sim_node(0).store.clone().load().unwrap();
    assert_eq!(stored.nodes[&good.url], Some(good.clone()));
    assert!(
        sim.run_until_for(MINUTE, |s| s.node(1).known_nodes().contains(&good)),
        "the record was not forwarded verbatim"
    );
    // A second forgery bans it (50 + 50).
    let mut again = sim.signed_record([0x55; 32], "ws://x.example/ws".into(), now_s);
    again.last_seen += 1;
    sim.raw_send(raw, p, Message::Nodes(vec![again]).encode());
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
    assert!(
        bans(&sim, 0)
            .iter()
            .any(|r| r.contains("forged relay record"))
    );
}

/// A validly signed record that expired long ago is dropped and costs the sender 10; one
/// that expired only within the clock grace is dropped without blame.
#[test]
fn an_expired_record_is_dropped_and_its_sender_penalised() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.52", 0x56, true);
    let now_s = sim.now_ms / 1000;
    let just = sim.signed_record(
        [0x57; 32],
        "ws://just.example/ws".into(),
        now_s - RECORD_LIFETIME_S - 60,
    );
    sim.raw_send(raw, p, Message::Nodes(vec![just]).encode());
    sim.run_for(1_000);
    assert!(!knows(&sim, 0, "ws://just.example/ws"));
    assert!(penalties(&sim, 0).is_empty(), "{:?}", penalties(&sim, 0));
    let old = sim.signed_record(
        [0x58; 32],
        "ws://old.example/ws".into(),
        now_s - RECORD_LIFETIME_S - RECORD_CLOCK_GRACE_S - 1,
    );
    sim.raw_send(raw, p, Message::Nodes(vec![old]).encode());
    sim.run_for(1_000);
    assert!(!knows(&sim, 0, "ws://old.example/ws"));
    assert_eq!(
        penalties(&sim, 0),
        vec![("expired relay record".to_string(), 10)]
    );
    assert!(!closed(&sim, raw, p));
}

/// A relay's hello carries its own record; a record in a relay's hello signed by another key
/// costs the sender, and a browser never advertises itself.
#[test]
fn hellos_carry_the_relays_own_record_and_browsers_none() {
    let (mut sim, raw) = network();
    let p = sim.raw_connect(raw, 0, "10.0.0.53");
    sim.run_for(500);
    let Some(Message::Hello(h)) = sim.raw_messages(raw, p).into_iter().next() else {
        panic!("expected a hello");
    };
    let rec = h.record.expect("a relay advertises itself");
    assert_eq!(rec.node_id, sim.node(0).node_id());
    assert_eq!(rec.url, Sim::url_of(0));
    assert_eq!(
        rec.verify(&sim.params.genesis_hash(), sim.now_ms / 1000),
        Ok(())
    );
    // A browser with a public URL configured still sends no record.
    let mut c = Sim::config(NodeKind::Browser, 0x60, &[0]);
    c.public_url = Some("ws://tab.example/ws".into());
    let tab = sim.add_node(c, ChangeSet::default());
    sim.run_for(5_000);
    assert!(!knows(&sim, 0, "ws://tab.example/ws"));
    assert!(
        sim.node(tab)
            .peers()
            .iter()
            .all(|p| p.kind == NodeKind::Relay)
    );
    // A relay hello whose record is signed by someone else.
    let q = sim.raw_connect(raw, 1, "10.0.0.54");
    let mut hello = sim.raw_hello([0x61; 32], sim.node(1).chain().tip().work);
    hello.kind = NodeKind::Relay;
    hello.record = Some(sim.signed_record([0x62; 32], "ws://r.example/ws".into(), 0));
    sim.raw_handshake_with(raw, q, [0x61; 32], hello);
    assert!(!knows(&sim, 1, "ws://r.example/ws"));
    assert_eq!(
        penalties(&sim, 1),
        vec![("forged relay record".to_string(), 50)]
    );
}

// ---- handshakes bound to the dialed URL ----------------------------------------------------

const PROXY: &str = "ws://proxy.sim/ws";
const PROXY_ADDR: &str = "10.6.6.6";

/// Relays 0 and 1, linked; relay 0 also dials a proxy that forwards every byte to relay 1.
/// Returns the simulator and the proxy.
fn proxied(rewrite: bool) -> (Sim, usize) {
    let mut sim = Sim::new(Params::test());
    let r1 = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    sim.raw_listen(raw, PROXY);
    let mut c = Sim::config(NodeKind::Relay, 2, &[r1]);
    c.bootstrap.push(PROXY.into());
    let r0 = sim.add_node(c, ChangeSet::default());
    assert_eq!((r0, r1), (2, 0));
    let dialed = sim.run_until_for(MINUTE, |s| !s.raw_inbound(raw).is_empty());
    assert!(dialed, "relay 0 never dialed the proxy");
    let a: PeerId = sim.raw_inbound(raw)[0];
    let b = sim.raw_connect(raw, r1, PROXY_ADDR);
    sim.raw_pipe(raw, a, b, rewrite.then(|| Sim::url_of(r1)));
    (sim, raw)
}

/// Whether either relay has an established connection through the proxy.
fn through_proxy(s: &Sim) -> bool {
    s.node(2).peers().iter().any(|p| p.remote == PROXY)
        || s.node(0).peers().iter().any(|p| p.remote == PROXY_ADDR)
}

fn linked_directly(s: &Sim) -> bool {
    let (id0, id2) = (s.node(0).node_id(), s.node(2).node_id());
    s.node(2)
        .peers()
        .iter()
        .any(|p| p.node_id == id0 && p.remote != PROXY)
        && s.node(0)
            .peers()
            .iter()
            .any(|p| p.node_id == id2 && p.remote != PROXY_ADDR)
}

/// A proxy that forwards bytes unchanged: the relay it reaches sees a URL that is not its
/// own and refuses to sign; the proxy never carries their link, the direct one stays.
#[test]
fn a_forwarded_handshake_fails_and_the_direct_link_stays() {
    let (mut sim, raw) = proxied(false);
    let carried = sim.run_until_for(5 * MINUTE, through_proxy);
    assert!(!carried, "a link was established through the proxy");
    assert!(linked_directly(&sim));
    // The dialer backs off from the proxy instead of redialing it every tick.
    let dials = sim
        .sim_node(2)
        .dials
        .iter()
        .filter(|(_, u)| u == PROXY)
        .count();
    assert!(
        dials <= 10,
        "the proxy was dialed {dials} times in 5 minutes"
    );
    let _ = raw;
}

/// A proxy that rewrites the dialed URL to the relay's own: the relay signs its own URL, but
/// the dialer checks the URL it dialed, and the relay checks the dialer's proof over the URL
/// it was told; both fail, both sides ban, and the direct link stays.
#[test]
fn a_rewritten_handshake_fails_on_both_sides() {
    let (mut sim, raw) = proxied(true);
    let carried = sim.run_until_for(2 * MINUTE, through_proxy);
    assert!(!carried, "a link was established through the proxy");
    assert!(linked_directly(&sim));
    assert!(
        bans(&sim, 2)
            .iter()
            .any(|r| r.contains("node id proof failed"))
    );
    assert!(
        bans(&sim, 0)
            .iter()
            .any(|r| r.contains("node id proof failed"))
    );
    let _ = raw;
}

// ---- version negotiation -------------------------------------------------------------------

/// Messages of unknown types from an established peer of this version are ignored and
/// counted; the connection goes on.
#[test]
fn unknown_message_types_are_ignored_and_counted() {
    let (mut sim, raw, p) = network_with_peer("10.0.0.55", 0x63, true);
    let before = sim.node(0).stats.unknown_messages;
    sim.raw_send(raw, p, vec![200, 1, 2, 3]);
    sim.raw_send(raw, p, vec![99]);
    sim.raw_send(raw, p, Message::Ping(9).encode());
    sim.run_for(1_000);
    assert!(!closed(&sim, raw, p));
    assert!(bans(&sim, 0).is_empty() && penalties(&sim, 0).is_empty());
    assert_eq!(sim.node(0).stats.unknown_messages, before + 2);
    assert!(sim.raw_messages(raw, p).contains(&Message::Pong(9)));
}

/// A peer of version 1 is closed at its hello without a ban (PROTOCOL §4.2); before any
/// handshake, a message of an unknown type is a protocol breach and bans.
#[test]
fn an_old_version_peer_is_refused_and_unknown_types_before_the_handshake_ban() {
    let (mut sim, raw) = network();
    let p = sim.raw_connect(raw, 0, "10.0.0.56");
    let mut old = sim.raw_hello([0x64; 32], sim.node(0).chain().tip().work);
    old.version = 1;
    sim.raw_send(raw, p, Message::Hello(old).encode());
    sim.run_for(1_000);
    assert!(closed(&sim, raw, p));
    assert!(bans(&sim, 0).is_empty(), "{:?}", bans(&sim, 0));
    let q = sim.raw_connect(raw, 0, "10.0.0.57");
    sim.raw_send(raw, q, vec![200]);
    sim.run_for(1_000);
    assert!(closed(&sim, raw, q));
    assert!(
        bans(&sim, 0)
            .iter()
            .any(|r| r.contains("unknown message type 200"))
    );
}
