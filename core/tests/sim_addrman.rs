//! The address manager and the dial policy against a flooding peer (issue 11, items 3 and
//! 4): records from many source groups cannot evict a relay that worked nor take more than
//! their groups' share, URLs the policy refuses are never dialed, and a restart keeps
//! where each relay was heard of.

#![allow(clippy::unwrap_used)]

mod common;

use tabcoin_core::addrman::{MAX_NODES_PER_SOURCE, source_group};
use tabcoin_core::encode::Encode;
use tabcoin_core::node::Node;
use tabcoin_core::params::Params;
use tabcoin_core::sig::Keypair;
use tabcoin_core::sim::Sim;
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::wire::{Message, NodeKind, NodeRecord};

use common::handshaken;

/// A relay record for `url`, signed (records are verified on receipt and on load).
fn record(url: &str, last_seen: u64) -> NodeRecord {
    let genesis = Params::test().genesis_hash();
    NodeRecord::sign(
        &Keypair::from_seed(&[0x33; 32]),
        &genesis,
        String::from(url),
        last_seen,
    )
}

/// Relays 0 and 1 both start from relay 2; 0 hears of 1's URL through 2 and dials it (so 1
/// is in 0's tried table), then 1 goes offline. (A relay that is already connected to a node
/// inbound does not dial it: the signed record in its hello names the same node id.)
fn tried_then_gone() -> (Sim, String) {
    let mut sim = Sim::new(Params::test());
    let a = sim.add_node(Sim::config(NodeKind::Relay, 1, &[2]), ChangeSet::default());
    let b = sim.add_node(Sim::config(NodeKind::Relay, 2, &[2]), ChangeSet::default());
    sim.add_node(Sim::config(NodeKind::Relay, 3, &[]), ChangeSet::default());
    let url_b = Sim::url_of(b);
    assert!(
        sim.run_until_for(60_000, |s| s.node(a).address_book().is_tried(&url_b)),
        "relay 0 never dialed relay 1"
    );
    sim.set_online(b, false);
    sim.run_for(1_000);
    (sim, url_b)
}

/// Connects raw endpoint `raw` from `remote`, completes a handshake and answers the node's
/// `getnodes` with `list`.
fn flood_from(sim: &mut Sim, raw: usize, remote: &str, seed: u8, list: Vec<NodeRecord>) {
    let p = handshaken(sim, raw, 0, remote, seed);
    sim.run_for(500);
    assert!(
        sim.raw_messages(raw, p)
            .iter()
            .any(|m| matches!(m, Message::GetNodes)),
        "not asked for nodes"
    );
    sim.raw_send(raw, p, Message::Nodes(list).encode());
    sim.run_for(500);
}

#[test]
fn a_flood_from_65_source_groups_cannot_evict_a_tried_relay_or_overfill_a_group() {
    let (mut sim, url_b) = tried_then_gone();
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    // Two waves, 33 source groups then 32 more, each answering with 1,000 fresh records.
    let mut remotes = Vec::new();
    for g in 0..65usize {
        let remote = format!("{}.{}.0.1", 20 + g / 100, g % 100);
        let now_s = sim.now_ms / 1000;
        let list = (0..1_000)
            .map(|i| record(&format!("ws://a{g}-{i}.evil{}.net/ws", i % 40), now_s))
            .collect();
        flood_from(&mut sim, raw, &remote, 0x40 + g as u8, list);
        remotes.push(remote);
    }
    sim.run_for(10_000);
    let book = sim.node(0).address_book();
    assert!(book.is_tried(&url_b), "the flood evicted the tried relay");
    assert!(sim.node(0).known_nodes().iter().any(|r| r.url == url_b));
    for remote in &remotes {
        let group = source_group(remote);
        let n = sim
            .node(0)
            .known_nodes()
            .iter()
            .filter(|r| {
                book.meta(&r.url)
                    .is_some_and(|m| source_group(&m.source) == group)
            })
            .count();
        assert!(n <= MAX_NODES_PER_SOURCE, "{group} holds {n} entries");
    }
    // Relay 1 comes back: relay 0 still finds it among the flood.
    sim.set_online(1, true);
    assert!(
        sim.run_until_for(15 * 60_000, |s| {
            s.node(0)
                .peers()
                .iter()
                .any(|p| p.url.as_deref() == Some(url_b.as_str()))
        }),
        "relay 0 never reconnected to the relay that worked"
    );
}

#[test]
fn records_the_policy_refuses_are_never_learned_nor_dialed() {
    let mut sim = Sim::new(Params::test());
    sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), ChangeSet::default());
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    let bad = [
        "ws://127.0.0.1:8080/ws",
        "ws://10.0.0.1/ws",
        "ws://192.168.1.1:22/",
        "ws://169.254.169.254/latest/meta-data",
        "ws://100.64.0.1/ws",
        "ws://[::1]:6379/",
        "ws://[fd00::1]/ws",
        "ws://[::ffff:10.1.1.1]/ws",
        "ws://0.0.0.0:80/",
        "ws://localhost:5432/",
        "ws://2130706433/ws",
        "ws://relay.example.com/ws?x=1",
        "ws://user:pw@relay.example.com/ws",
        "ws://relay.example.com/ws#frag",
        "http://relay.example.com/ws",
    ];
    let now_s = sim.now_ms / 1000;
    let mut list: Vec<NodeRecord> = bad.iter().map(|u| record(u, now_s)).collect();
    list.push(record("ws://good.example.com/ws", now_s));
    flood_from(&mut sim, raw, "203.0.113.5", 0x31, list);
    sim.run_for(5 * 60_000);
    let known: Vec<String> = sim
        .node(0)
        .known_nodes()
        .into_iter()
        .map(|r| r.url)
        .collect();
    assert!(
        known.contains(&String::from("ws://good.example.com/ws")),
        "{known:?}"
    );
    let dials: Vec<&String> = sim.sim_node(0).dials.iter().map(|(_, u)| u).collect();
    assert!(dials.iter().any(|u| *u == "ws://good.example.com/ws"));
    for url in bad {
        assert!(!known.iter().any(|u| u == url), "learned {url}");
        assert!(!dials.iter().any(|u| *u == url), "dialed {url}");
    }
    // Stored records are checked again when loaded.
    let mut stored = ChangeSet::default();
    for url in bad {
        stored
            .nodes
            .insert(String::from(url), Some(record(url, now_s)));
    }
    let mut sim = Sim::new(Params::test());
    let n = sim.add_node(Sim::config(NodeKind::Relay, 1, &[]), stored);
    sim.run_for(60_000);
    assert!(sim.node(n).known_nodes().is_empty());
    assert!(sim.sim_node(n).dials.is_empty());
}

#[test]
fn a_restart_keeps_the_tables_and_where_each_relay_was_heard_of() {
    let (mut sim, url_b) = tried_then_gone();
    let raw = sim.add_raw();
    sim.set_auto_pong(raw, true);
    let now_s = sim.now_ms / 1000;
    flood_from(
        &mut sim,
        raw,
        "198.51.100.77",
        0x22,
        vec![
            record("wss://heard.example.org/ws", now_s),
            record("wss://also.example.org/ws", now_s),
        ],
    );
    let before = sim.node(0).address_book().clone();
    let meta_b = before.meta(&url_b).unwrap().clone();
    assert!(meta_b.tried && meta_b.last_success_s > 0);
    let heard = before.meta("wss://heard.example.org/ws").unwrap().clone();
    assert_eq!(heard.source, "198.51.100.77");
    // Restart from the store.
    let stored = sim.sim_node(0).store.clone().load().unwrap();
    let restarted = Node::new(
        Sim::config(NodeKind::Relay, 1, &[2]),
        Params::test(),
        stored,
    )
    .unwrap();
    let after = restarted.address_book();
    assert!(after.is_tried(&url_b));
    assert_eq!(after.meta(&url_b), Some(&meta_b));
    assert_eq!(after.meta("wss://heard.example.org/ws"), Some(&heard));
    assert_eq!(after.len(), before.len());
}
