#![allow(clippy::unwrap_used)]

use super::*;
use crate::store::{ChangeSet, MemStore, Store};
use alloc::format;
use alloc::vec;

const HOUR: u64 = 60 * 60 * 1000;
const SEED: [u8; 32] = [5; 32];

fn none() -> BTreeSet<String> {
    BTreeSet::new()
}

fn man() -> AddrMan {
    AddrMan::new(&SEED, DialPolicy::relay(false))
}

fn rec_url(url: &str, last_seen: u64) -> NodeRecord {
    NodeRecord {
        last_seen,
        ..NodeRecord::unsigned(String::from(url))
    }
}

fn rec(i: usize, last_seen: u64) -> NodeRecord {
    rec_url(&format!("ws://r{i}.example{}.com/ws", i % 97), last_seen)
}

/// A source address in its own /16.
fn src(g: usize) -> String {
    format!("{}.{}.7.9", 11 + g / 200, g % 200)
}

/// An address manager loaded from a store that was given `nodes` and `meta` (what
/// [`AddrMan::take_changes`] returned), read back through the ChangeSet encoding as well.
fn through_store(
    nodes: BTreeMap<String, Option<NodeRecord>>,
    meta: BTreeMap<String, Option<AddrMeta>>,
) -> AddrMan {
    let mut store = MemStore::new();
    store
        .persist(&ChangeSet {
            nodes,
            node_meta: meta,
            ..ChangeSet::default()
        })
        .unwrap();
    let loaded = ChangeSet::decode(&store.load().unwrap().encode()).unwrap();
    AddrMan::load(
        &SEED,
        DialPolicy::relay(false),
        loaded.nodes,
        loaded.node_meta,
        &[],
    )
}

fn count_from(m: &AddrMan, group: &str) -> usize {
    m.entries
        .values()
        .filter(|e| matches!(e.pos, Pos::New(_)) && source_group(&e.meta.source) == group)
        .count()
}

/// Two URLs whose tried slots are the same.
fn tried_collision(m: &AddrMan) -> (String, String) {
    let mut seen: BTreeMap<Slot, String> = BTreeMap::new();
    for i in 0.. {
        let url = format!("ws://t{i}.honest{}.org/ws", i % 7);
        let slot = m.tried_slot(&url);
        if let Some(first) = seen.insert(slot, url.clone()) {
            return (first, url);
        }
    }
    unreachable!()
}

#[test]
fn a_flood_from_33_source_groups_keeps_the_tried_relay_and_each_groups_share() {
    let mut m = man();
    let honest = rec_url("wss://honest.example.org/ws", 1);
    assert!(m.learn(honest.clone(), src(900), false, 0));
    m.dial_succeeded(&honest.url, 1_000);
    assert!(m.is_tried(&honest.url));
    // Two waves: 33 groups, then 32 more, each source sending 1,000 fresh records; the
    // honest relay is not connected and not heard of since.
    for wave in 0..2 {
        for g in 0..33 - wave {
            let g = g + 100 * wave;
            for i in 0..1_000 {
                let r = rec_url(&format!("ws://a{g}-{i}.evil{}.net/ws", i % 50), 1);
                m.learn(r, src(g), false, 10 * HOUR);
            }
            assert!(
                count_from(&m, &source_group(&src(g))) <= MAX_NODES_PER_SOURCE,
                "group {g} filled more than its share"
            );
        }
    }
    assert!(m.is_tried(&honest.url), "the flood evicted a tried relay");
    assert_eq!(m.tried_len(), 1);
    assert!(m.new_len() <= 65 * MAX_NODES_PER_SOURCE);
    // The tried relay is proven: it is told to others before any of the flood.
    let mut k = 0;
    let mut pick = |n: usize| {
        k += 1;
        k % n
    };
    assert_eq!(m.sample(10, &mut pick)[0].url, honest.url);
}

#[test]
fn one_source_group_reaches_at_most_its_buckets() {
    let mut m = man();
    // Many addresses of one /16 are one source group.
    for s in 0..50 {
        for i in 0..100 {
            m.learn(rec(s * 1000 + i, 1), format!("203.0.{s}.1"), false, 0);
        }
    }
    let n = count_from(&m, "203.0.0.0/16");
    assert!(n <= MAX_NODES_PER_SOURCE, "{n}");
    assert!(n > MAX_NODES_PER_SOURCE / 2, "{n}: buckets are barely used");
    // Another group still gets in.
    assert!(m.learn(rec(999_999, 1), String::from("198.51.100.1"), false, 0));
}

/// Relays of one network group heard of from one source share a bucket: with one slot
/// each, two of them collided one time in 16 and the later one was dropped for good (the
/// end-to-end network-heals test saw a relay never learn a neighbour that way).
#[test]
fn relays_whose_first_slots_collide_are_both_kept_and_reloaded() {
    let mut m = man();
    let s = String::from("8.8.8.8");
    let mut first: BTreeMap<Slot, String> = BTreeMap::new();
    let (a, b) = (0..)
        .find_map(|i| {
            let u = format!("ws://n{i}.x.com/ws");
            first
                .insert(m.new_slots(&u, &s)[0], u.clone())
                .map(|earlier| (earlier, u))
        })
        .unwrap();
    assert!(m.learn(rec_url(&a, 1), s.clone(), false, 0));
    assert!(
        m.learn(rec_url(&b, 1), s.clone(), false, 0),
        "the second relay is kept"
    );
    assert!(m.meta(&a).is_some() && m.meta(&b).is_some());
    // The store's copy loads both again.
    let (nodes, meta) = m.take_changes();
    let back = through_store(nodes, meta);
    assert!(back.meta(&a).is_some() && back.meta(&b).is_some());
}

#[test]
fn a_full_set_of_new_slots_gives_way_only_to_a_terrible_occupant() {
    let mut m = man();
    let s = String::from("8.8.8.8");
    // One group from one source: one bucket. Fill it until a newcomer finds every slot it
    // may take held.
    let url = |i: usize| format!("ws://n{i}.x.com/ws");
    let mut kept = 0;
    let refused = (0..)
        .map(url)
        .find(|u| {
            let taken = m.learn(rec_url(u, 1), s.clone(), false, 0);
            kept += usize::from(taken);
            !taken
        })
        .unwrap();
    assert!((2..=BUCKET_SIZE).contains(&kept), "{kept}");
    assert!(
        !m.learn(rec_url(&refused, 1), s.clone(), false, 1_000),
        "fresh occupants lost"
    );
    // Failing without ever working makes one of its slots' occupants terrible.
    let victim = m.new[&m.new_slots(&refused, &s)[NEW_SLOT_CHOICES - 1]].clone();
    for t in 0..NEW_MAX_FAILURES {
        m.dial_failed(&victim, u64::from(t));
    }
    assert!(m.learn(rec_url(&refused, 1), s.clone(), false, 2_000));
    assert!(m.meta(&victim).is_none());
    // Staleness does too: a newcomer refused while the bucket is fresh gets in once the
    // occupants of its slots were not heard of for NODE_EXPIRY_MS.
    let late = (kept + 1..)
        .map(url)
        .find(|u| !m.learn(rec_url(u, 1), s.clone(), false, 3_000))
        .unwrap();
    // (The occupants were heard of at 0 to 3,000 ms: none is stale at NODE_EXPIRY_MS, all
    // are 3,001 ms later.)
    assert!(!m.learn(rec_url(&late, 1), s.clone(), false, NODE_EXPIRY_MS));
    assert!(m.learn(rec_url(&late, 1), s, false, 3_001 + NODE_EXPIRY_MS));
}

#[test]
fn a_tried_collision_tests_the_occupant_before_evicting_it() {
    let mut m = man();
    let (old, cand) = tried_collision(&m);
    assert!(m.learn(rec_url(&old, 1), src(1), false, 0));
    m.dial_succeeded(&old, 0);
    assert!(m.is_tried(&old));
    // While the occupant was reached recently, the newcomer stays new without a test.
    assert!(m.learn(rec_url(&cand, 1), src(2), false, 1_000));
    m.dial_succeeded(&cand, 1_000);
    assert!(!m.is_tried(&cand));
    assert_eq!(m.resolve_collisions(1_000, &none()), None);
    // Later, the occupant is tested first, and keeps its slot when it answers.
    let t = 2 * TRIED_FRESH_MS;
    m.dial_succeeded(&cand, t);
    assert_eq!(m.resolve_collisions(t, &none()), Some(old.clone()));
    assert_eq!(
        m.resolve_collisions(t + 1, &none()),
        None,
        "one test at a time"
    );
    m.dial_succeeded(&old, t + 2_000);
    assert_eq!(m.resolve_collisions(t + 3_000, &none()), None);
    assert!(m.is_tried(&old) && !m.is_tried(&cand));
    // When it fails its test it goes back to new and the newcomer takes the slot.
    let t = 4 * TRIED_FRESH_MS;
    m.dial_succeeded(&cand, t);
    assert_eq!(m.resolve_collisions(t, &none()), Some(old.clone()));
    m.dial_failed(&old, t + 500);
    assert_eq!(m.resolve_collisions(t + 1_000, &none()), None);
    assert!(m.is_tried(&cand) && !m.is_tried(&old));
    assert!(m.meta(&old).is_some(), "the demoted relay is still known");
    // A test that gets no answer within the window evicts too.
    let t = 6 * TRIED_FRESH_MS;
    m.dial_succeeded(&old, t);
    assert_eq!(m.resolve_collisions(t, &none()), Some(cand.clone()));
    assert_eq!(m.resolve_collisions(t + TEST_WINDOW_MS - 1, &none()), None);
    assert!(m.is_tried(&cand));
    m.resolve_collisions(t + TEST_WINDOW_MS, &none());
    assert!(m.is_tried(&old) && !m.is_tried(&cand));
}

#[test]
fn the_policy_decides_what_is_learned() {
    let mut m = man();
    for url in [
        "http://a.example/",
        "ws://",
        "ws://a b",
        "ws://127.0.0.1:8080/ws",
        "ws://10.0.0.1/",
        "ws://169.254.169.254/",
        "ws://[::1]/",
        "ws://localhost/",
        "ws://a.example/?q=1",
        "ws://u@a.example/",
    ] {
        assert!(!m.learn(rec_url(url, 1), src(0), true, 0), "{url}");
    }
    assert!(m.is_empty());
    let mut local = AddrMan::new(&SEED, DialPolicy::relay(true));
    assert!(local.learn(rec_url("ws://127.0.0.1:8080/ws", 1), src(0), false, 0));
    assert!(!local.learn(rec_url("ws://169.254.169.254/", 1), src(0), false, 0));
    // A URL that led to ourselves is forgotten and never learned again.
    assert!(m.learn(rec(3, 1), src(0), false, 0));
    m.mark_self(rec(3, 1).url);
    assert!(m.is_empty());
    assert!(!m.learn(rec(3, 1), src(0), true, 0));
}

#[test]
fn a_known_relay_is_refreshed_not_added() {
    let mut m = man();
    assert!(m.learn(rec(1, 10), src(0), false, 0));
    assert!(!m.learn(rec(1, 5), src(1), false, 7));
    assert_eq!(m.records().next().unwrap().last_seen, 10);
    assert!(!m.learn(rec(1, 20), src(1), false, 8));
    assert_eq!(m.records().next().unwrap().last_seen, 20);
    // A verified record replaces the stored one whole (records are signed).
    let verified = NodeRecord {
        node_id: crate::sig::PublicKey([7; 32]),
        ..rec(1, 15)
    };
    assert!(!m.learn(verified.clone(), src(2), true, 9));
    assert_eq!(m.records().next().unwrap(), &verified);
    assert_eq!(
        m.meta(&rec(1, 0).url).unwrap().source,
        src(0),
        "provenance kept"
    );
    assert_eq!(m.len(), 1);
}

#[test]
fn bootstrap_relays_are_fixed() {
    let boot = vec![String::from("ws://boot.example/ws")];
    let mut m = AddrMan::load(
        &SEED,
        DialPolicy::relay(false),
        BTreeMap::new(),
        BTreeMap::new(),
        &boot,
    );
    for g in 0..40 {
        for i in 0..100 {
            m.learn(rec(g * 100 + i, 1), src(g), false, 0);
        }
    }
    m.dial_succeeded(&boot[0], 0);
    assert!(!m.is_tried(&boot[0]));
    m.expire(100 * HOUR, 0, &BTreeSet::new());
    assert_eq!(m.records().map(|r| r.url.clone()).collect::<Vec<_>>(), boot);
    let (nodes, _) = m.take_changes();
    assert!(
        !nodes.contains_key(&boot[0]) || nodes[&boot[0]].is_none(),
        "bootstrap is configuration, not state"
    );
}

#[test]
fn dial_backoff_doubles_to_five_minutes_and_resets_on_success() {
    let mut m = man();
    let url = rec(1, 1).url;
    assert!(m.learn(rec(1, 1), src(0), false, 0));
    let mut waits = Vec::new();
    for _ in 0..12 {
        m.dial_failed(&url, 1_000_000);
        let next = m.entries[&url].next_try_ms;
        waits.push(next - 1_000_000);
        assert_eq!(m.dialable(next - 1).count(), 0);
        assert_eq!(m.dialable(next).count(), 1);
    }
    assert_eq!(&waits[..4], &[2_000, 4_000, 8_000, 16_000]);
    assert_eq!(waits[7], 256_000);
    assert!(waits[8..].iter().all(|&w| w == MAX_DIAL_BACKOFF_MS));
    m.dial_succeeded(&url, 2_000_000);
    m.dial_failed(&url, 3_000_000);
    assert_eq!(m.entries[&url].next_try_ms, 3_002_000);
}

#[test]
fn new_relays_expire_after_three_hours_tried_after_a_day() {
    let mut m = man();
    for i in 0..3 {
        assert!(m.learn(rec(i, 1), src(i), false, 0));
    }
    m.dial_succeeded(&rec(0, 1).url, 0);
    let connected = BTreeSet::from([rec(1, 1).url]);
    m.expire(3 * HOUR, 0, &connected);
    assert_eq!(m.len(), 3, "expired too early");
    m.expire(3 * HOUR + 1, 0, &connected);
    assert_eq!(m.len(), 2);
    assert!(m.meta(&rec(2, 1).url).is_none());
    m.expire(24 * HOUR + 1, 0, &BTreeSet::new());
    assert!(m.is_empty());
}

#[test]
fn persistence_keeps_provenance_and_tables() {
    let mut m = man();
    assert!(m.learn(rec(1, 50), src(1), false, 0));
    assert!(m.learn(rec(2, 60), src(2), false, 0));
    m.dial_succeeded(&rec(2, 0).url, 70_000);
    assert!(m.learn(rec(3, 80), src(3), false, 0));
    m.dial_failed(&rec(3, 0).url, 90_000);
    assert!(m.learn(rec(4, 80), src(4), false, 0));
    m.forget(&rec(4, 0).url);
    let (nodes, meta) = m.take_changes();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes[&rec(4, 0).url], None);
    let back = through_store(nodes, meta);
    assert_eq!(back.len(), 3);
    for url in [rec(1, 0).url, rec(2, 0).url, rec(3, 0).url] {
        assert_eq!(back.meta(&url), m.meta(&url), "{url}");
        assert_eq!(back.entries[&url].pos, m.entries[&url].pos, "{url}");
        assert_eq!(back.entries[&url].record, m.entries[&url].record, "{url}");
    }
    assert!(back.is_tried(&rec(2, 0).url));
    assert_eq!(back.meta(&rec(2, 0).url).unwrap().last_success_s, 70);
    assert_eq!(back.meta(&rec(3, 0).url).unwrap().failures, 1);
    assert_eq!(back.meta(&rec(1, 0).url).unwrap().source, src(1));
}

#[test]
fn records_without_provenance_load_as_one_source_group_and_refused_ones_are_dropped() {
    let mut nodes = BTreeMap::new();
    for i in 0..500 {
        nodes.insert(rec(i, 1).url, Some(rec(i, 1)));
    }
    nodes.insert(
        String::from("ws://10.0.0.1/"),
        Some(rec_url("ws://10.0.0.1/", 1)),
    );
    let mut m = AddrMan::load(&SEED, DialPolicy::relay(false), nodes, BTreeMap::new(), &[]);
    assert!(m.len() <= MAX_NODES_PER_SOURCE);
    let (gone, _) = m.take_changes();
    assert_eq!(gone.len(), 501 - m.len());
    assert!(gone.values().all(Option::is_none));
    assert_eq!(gone[&String::from("ws://10.0.0.1/")], None);
}

#[test]
fn addr_meta_round_trips() {
    let meta = AddrMeta {
        source: String::from("203.0.113.9"),
        tried: true,
        last_success_s: 1_700_000_000,
        failures: 3,
    };
    assert_eq!(AddrMeta::decode(&meta.encode()).unwrap(), meta);
    let mut bad = meta.encode();
    let flag = 1 + meta.source.len();
    bad[flag] = 2;
    assert!(AddrMeta::decode(&bad).is_err());
}

#[test]
fn a_connected_occupant_is_never_tested_out_of_its_slot() {
    let mut m = man();
    let (old, cand) = tried_collision(&m);
    assert!(m.learn(rec_url(&old, 1), src(1), false, 0));
    m.dial_succeeded(&old, 0);
    assert!(m.learn(rec_url(&cand, 1), src(2), false, 0));
    let t = 2 * TRIED_FRESH_MS;
    m.dial_succeeded(&cand, t);
    let connected = BTreeSet::from([old.clone()]);
    assert_eq!(m.resolve_collisions(t, &connected), None);
    assert_eq!(m.resolve_collisions(t + TEST_WINDOW_MS, &none()), None);
    assert!(m.is_tried(&old) && !m.is_tried(&cand));
}
