//! The address book: relays this node knows of, where it heard of them, and how dialing
//! them went. It is bounded (in total and per source), forgets relays not heard of for
//! long, backs off from ones that fail, and collects its changes for the store.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use crate::wire::{MAX_URL, NodeRecord};

/// Known relays kept.
pub const MAX_KNOWN_NODES: usize = 2_000;
/// Relays one source may have in the table at a time.
pub const MAX_NODES_PER_SOURCE: usize = 64;
/// A known relay not heard of for this long is forgotten.
pub const NODE_EXPIRY_MS: u64 = 3 * 60 * 60 * 1000;
/// Longest wait between dials of a relay that keeps failing.
pub const MAX_DIAL_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// URLs found to lead to ourselves, remembered so gossip cannot make us dial them again.
const SELF_URLS: usize = 16;

/// The source of relays loaded from the store.
const SOURCE_STORE: &str = "store";
/// The source of relays the host configured; they are never evicted or expired.
const SOURCE_BOOTSTRAP: &str = "bootstrap";

/// A known relay and how dialing it went.
#[derive(Clone, Debug)]
struct KnownNode {
    record: NodeRecord,
    source: String,
    failures: u32,
    next_try_ms: u64,
    /// Local time (ms) it was last heard of.
    seen_ms: u64,
}

/// The table of known relays.
#[derive(Clone, Debug, Default)]
pub(super) struct AddrBook {
    known: BTreeMap<String, KnownNode>,
    /// Entries of `known` per source.
    per_source: BTreeMap<String, usize>,
    /// Changes the store has not been given yet (`None` = forgotten).
    changes: BTreeMap<String, Option<NodeRecord>>,
    self_urls: BTreeSet<String>,
}

impl AddrBook {
    /// The table over what the store kept and the host's bootstrap relays. Stored relays count
    /// as heard of when their record says, not at time zero.
    pub(super) fn load(stored: BTreeMap<String, Option<NodeRecord>>, bootstrap: &[String]) -> Self {
        let mut book = AddrBook::default();
        for (url, rec) in stored {
            if let Some(rec) = rec {
                if book.known.len() >= MAX_KNOWN_NODES {
                    break;
                }
                // Heard of when the record says (seconds), not at time zero.
                let seen_ms = rec.last_seen.saturating_mul(1000);
                book.insert(
                    url,
                    KnownNode {
                        record: rec,
                        source: String::from(SOURCE_STORE),
                        failures: 0,
                        next_try_ms: 0,
                        seen_ms,
                    },
                );
            }
        }
        for url in bootstrap {
            if book.known.contains_key(url) {
                continue;
            }
            book.insert(
                url.clone(),
                KnownNode {
                    record: NodeRecord::unsigned(url.clone()),
                    source: String::from(SOURCE_BOOTSTRAP),
                    failures: 0,
                    next_try_ms: 0,
                    seen_ms: 0,
                },
            );
        }
        book
    }

    pub(super) fn len(&self) -> usize {
        self.known.len()
    }

    /// Every known record, by URL.
    pub(super) fn records(&self) -> impl Iterator<Item = &NodeRecord> {
        self.known.values().map(|k| &k.record)
    }

    /// Up to `n` records, the most recently seen first.
    pub(super) fn freshest(&self, n: usize) -> Vec<NodeRecord> {
        let mut list: Vec<NodeRecord> = self.records().cloned().collect();
        list.sort_by_key(|r| core::cmp::Reverse(r.last_seen));
        list.truncate(n);
        list
    }

    /// Relays whose backoff has passed, by URL.
    pub(super) fn dialable(&self, now_ms: u64) -> impl Iterator<Item = (&String, &NodeRecord)> {
        self.known
            .iter()
            .filter(move |(_, k)| k.next_try_ms <= now_ms)
            .map(|(url, k)| (url, &k.record))
    }

    /// What the store has not been given yet (and forgets it).
    pub(super) fn take_changes(&mut self) -> BTreeMap<String, Option<NodeRecord>> {
        core::mem::take(&mut self.changes)
    }

    fn valid_url(url: &str) -> bool {
        (url.starts_with("ws://") || url.starts_with("wss://"))
            && url.len() <= MAX_URL
            && url.len() > 6
            && !url
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    }

    fn insert(&mut self, url: String, k: KnownNode) {
        *self.per_source.entry(k.source.clone()).or_insert(0) += 1;
        if let Some(old) = self.known.insert(url, k) {
            self.uncount_source(&old.source);
        }
    }

    fn uncount_source(&mut self, source: &str) {
        if let Some(n) = self.per_source.get_mut(source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_source.remove(source);
            }
        }
    }

    /// Removes a relay from the table (and the store); returns whether it was there.
    pub(super) fn forget(&mut self, url: &str) -> bool {
        match self.known.remove(url) {
            Some(k) => {
                self.uncount_source(&k.source);
                self.changes.insert(String::from(url), None);
                true
            }
            None => false,
        }
    }

    /// `url` led to ourselves: forget it as a relay to dial, for good.
    pub(super) fn mark_self(&mut self, url: String) {
        self.forget(&url);
        if self.self_urls.len() >= SELF_URLS {
            self.self_urls.pop_first();
        }
        self.self_urls.insert(url);
    }

    /// Makes room in a full table by forgetting the relay we are not connected to that was
    /// heard of least recently (on a tie, the one that failed most dials).
    fn evict_stalest(&mut self, connected: &BTreeSet<&str>) -> bool {
        let victim = self
            .known
            .iter()
            .filter(|(url, k)| k.source != SOURCE_BOOTSTRAP && !connected.contains(url.as_str()))
            .min_by_key(|(url, k)| (k.seen_ms, core::cmp::Reverse(k.failures), (*url).clone()))
            .map(|(url, _)| url.clone());
        match victim {
            Some(url) => self.forget(&url),
            None => false,
        }
    }

    /// Adds or refreshes a relay record heard of from `source`; returns true if it was new.
    /// `direct` = the record was verified (we dialed its URL and the node there proved its
    /// id). `connected` names the remotes of open connections, which are never evicted to
    /// make room; it is asked only when the table is full.
    pub(super) fn learn<'a>(
        &mut self,
        rec: NodeRecord,
        source: String,
        direct: bool,
        now_ms: u64,
        connected: impl FnOnce() -> BTreeSet<&'a str>,
    ) -> bool {
        if !Self::valid_url(&rec.url) || self.self_urls.contains(&rec.url) {
            return false;
        }
        if let Some(k) = self.known.get_mut(&rec.url) {
            // Records are signed: a newer one by the same node, or a verified one, replaces
            // the stored one whole. Another key's claim to a known URL waits for a dial.
            let newer = rec.node_id == k.record.node_id && rec.last_seen > k.record.last_seen;
            if newer || direct {
                k.seen_ms = now_ms;
                if rec != k.record {
                    self.changes.insert(rec.url.clone(), Some(rec.clone()));
                    k.record = rec;
                }
            }
            return false;
        }
        if !direct && self.per_source.get(&source).copied().unwrap_or(0) >= MAX_NODES_PER_SOURCE {
            return false;
        }
        if self.known.len() >= MAX_KNOWN_NODES && !self.evict_stalest(&connected()) {
            return false;
        }
        self.changes.insert(rec.url.clone(), Some(rec.clone()));
        self.insert(
            rec.url.clone(),
            KnownNode {
                record: rec,
                source,
                failures: 0,
                next_try_ms: 0,
                seen_ms: now_ms,
            },
        );
        true
    }

    /// We dialed `url` and the node there proved its id over that URL (its record, which
    /// binds the two, is learned from its `hello`).
    pub(super) fn dial_succeeded(&mut self, url: &str, now_ms: u64) {
        if let Some(k) = self.known.get_mut(url) {
            k.failures = 0;
            k.seen_ms = now_ms;
        }
    }

    /// Backs off from a relay URL that could not be reached or did not complete a handshake:
    /// 2^min(f, 9) s after `f` failures in a row, at most 5 minutes.
    pub(super) fn dial_failed(&mut self, url: &str, now_ms: u64) {
        if let Some(k) = self.known.get_mut(url) {
            k.failures = k.failures.saturating_add(1);
            let backoff = 1_000u64 << k.failures.min(9);
            k.next_try_ms = now_ms + backoff.min(MAX_DIAL_BACKOFF_MS);
        }
    }

    /// Forgets relays not heard of for [`NODE_EXPIRY_MS`] (never `connected` ones or the
    /// bootstrap relays). Nothing counts as heard of before `started_ms`, so relays loaded
    /// from the store get the full time after a restart.
    pub(super) fn expire(&mut self, now_ms: u64, started_ms: u64, connected: &BTreeSet<String>) {
        let expired: Vec<String> = self
            .known
            .iter()
            .filter(|(url, k)| {
                k.seen_ms.max(started_ms).saturating_add(NODE_EXPIRY_MS) < now_ms
                    && !connected.contains(*url)
                    && k.source != SOURCE_BOOTSTRAP
            })
            .map(|(u, _)| u.clone())
            .collect();
        for url in expired {
            self.forget(&url);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::sig::PublicKey;
    use alloc::format;
    use alloc::vec;

    const HOUR: u64 = 60 * 60 * 1000;

    fn rec(i: usize, last_seen: u64) -> NodeRecord {
        NodeRecord {
            last_seen,
            ..NodeRecord::unsigned(format!("ws://r{i}.example/ws"))
        }
    }

    fn none<'a>() -> BTreeSet<&'a str> {
        BTreeSet::new()
    }

    fn urls(book: &AddrBook) -> Vec<String> {
        book.records().map(|r| r.url.clone()).collect()
    }

    /// A full table with relay `i` heard of at `i` ms, all from distinct sources.
    fn full() -> AddrBook {
        let mut book = AddrBook::default();
        for i in 0..MAX_KNOWN_NODES {
            let src = format!("src{}", i / MAX_NODES_PER_SOURCE);
            assert!(book.learn(rec(i, 1), src, false, i as u64, none));
        }
        book
    }

    #[test]
    fn one_source_is_capped_unless_verified() {
        let mut book = AddrBook::default();
        let learned = (0..100)
            .filter(|&i| book.learn(rec(i, 1), String::from("a"), false, 0, none))
            .count();
        assert_eq!(learned, MAX_NODES_PER_SOURCE);
        // Another source, and a verified record from the capped one, still get in.
        assert!(book.learn(rec(200, 1), String::from("b"), false, 0, none));
        assert!(book.learn(rec(201, 1), String::from("a"), true, 0, none));
        assert_eq!(book.len(), MAX_NODES_PER_SOURCE + 2);
    }

    #[test]
    fn a_source_whose_records_left_may_add_again() {
        let mut book = AddrBook::default();
        for i in 0..MAX_NODES_PER_SOURCE {
            assert!(book.learn(rec(i, 1), String::from("a"), false, 0, none));
        }
        assert!(!book.learn(rec(500, 1), String::from("a"), false, 0, none));
        assert!(book.forget(&rec(0, 1).url));
        assert!(!book.forget(&rec(0, 1).url), "forgotten twice");
        assert!(book.learn(rec(500, 1), String::from("a"), false, 0, none));
    }

    #[test]
    fn a_known_relay_is_refreshed_not_added() {
        let mut book = AddrBook::default();
        assert!(book.learn(rec(1, 10), String::from("a"), false, 0, none));
        // An older record changes nothing; a newer one moves last_seen forward.
        assert!(!book.learn(rec(1, 5), String::from("b"), false, 7, none));
        assert_eq!(book.records().next().unwrap().last_seen, 10);
        assert!(!book.learn(rec(1, 20), String::from("b"), false, 8, none));
        assert_eq!(book.records().next().unwrap().last_seen, 20);
        // A verified record replaces the stored one whole (records are signed).
        let id = PublicKey([7; 32]);
        let verified = NodeRecord {
            node_id: id,
            ..rec(1, 15)
        };
        assert!(!book.learn(verified.clone(), String::from("c"), true, 9, none));
        assert_eq!(book.records().next().unwrap(), &verified);
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn bad_and_own_urls_are_refused() {
        let mut book = AddrBook::default();
        for url in ["http://a.example/", "ws://", "ws://a b", "ws://a\n", ""] {
            let r = NodeRecord {
                url: String::from(url),
                ..rec(0, 1)
            };
            assert!(!book.learn(r, String::from("a"), true, 0, none), "{url:?}");
        }
        let long = NodeRecord {
            url: format!("ws://{}", "a".repeat(MAX_URL)),
            ..rec(0, 1)
        };
        assert!(!book.learn(long, String::from("a"), true, 0, none));
        // A URL that led to ourselves is forgotten and never learned again.
        assert!(book.learn(rec(3, 1), String::from("a"), false, 0, none));
        book.mark_self(rec(3, 1).url);
        assert_eq!(book.len(), 0);
        assert!(!book.learn(rec(3, 1), String::from("a"), true, 0, none));
    }

    #[test]
    fn a_full_table_evicts_the_stalest_unconnected_relay() {
        let mut book = full();
        // Relay 0 is the stalest, but connected: relay 1 goes.
        let url0 = rec(0, 1).url;
        let connected = || BTreeSet::from([url0.as_str()]);
        assert!(book.learn(rec(9_000, 1), String::from("new"), false, 10_000, connected));
        assert_eq!(book.len(), MAX_KNOWN_NODES);
        let have = urls(&book);
        assert!(have.contains(&rec(0, 1).url));
        assert!(!have.contains(&rec(1, 1).url));
        assert!(have.contains(&rec(9_000, 1).url));
        // On a tie of staleness the relay that failed most goes.
        book.dial_failed(&rec(3, 1).url, 0);
        book.learn(rec(2, 1), String::from("x"), true, 3, none); // relay 2 now as stale as 3
        assert!(book.learn(rec(9_001, 1), String::from("new"), false, 10_000, none));
        let have = urls(&book);
        assert!(!have.contains(&rec(0, 1).url), "relay 0 is the stalest now");
        assert!(book.learn(rec(9_002, 1), String::from("new"), false, 10_000, none));
        let have = urls(&book);
        assert!(!have.contains(&rec(3, 1).url));
        assert!(have.contains(&rec(2, 1).url));
    }

    #[test]
    fn bootstrap_relays_are_never_evicted_or_expired() {
        let boot = vec![String::from("ws://boot.example/ws")];
        let mut book = AddrBook::load(BTreeMap::new(), &boot);
        for i in 0..MAX_KNOWN_NODES - 1 {
            let src = format!("src{}", i / MAX_NODES_PER_SOURCE);
            assert!(book.learn(rec(i, 1), src, false, 1 + i as u64, none));
        }
        assert!(book.learn(rec(9_000, 1), String::from("new"), false, 10_000, none));
        assert!(urls(&book).contains(&boot[0]));
        book.expire(100 * HOUR, 0, &BTreeSet::new());
        assert_eq!(urls(&book), boot);
    }

    #[test]
    fn a_full_table_of_connected_relays_refuses_newcomers() {
        let mut book = full();
        let all = urls(&book);
        let connected = || all.iter().map(String::as_str).collect();
        assert!(!book.learn(rec(9_000, 1), String::from("new"), false, 0, connected));
        assert_eq!(book.len(), MAX_KNOWN_NODES);
    }

    #[test]
    fn dial_backoff_doubles_to_five_minutes_and_resets_on_success() {
        let mut book = AddrBook::default();
        let url = rec(1, 1).url;
        assert!(book.learn(rec(1, 1), String::from("a"), false, 0, none));
        let mut waits = Vec::new();
        for _ in 0..12 {
            book.dial_failed(&url, 1_000_000);
            let next = book.known[&url].next_try_ms;
            waits.push(next - 1_000_000);
            assert_eq!(book.dialable(next - 1).count(), 0);
            assert_eq!(book.dialable(next).count(), 1);
        }
        assert_eq!(&waits[..4], &[2_000, 4_000, 8_000, 16_000]);
        assert_eq!(waits[7], 256_000);
        assert!(waits[8..].iter().all(|&w| w == MAX_DIAL_BACKOFF_MS));
        book.dial_succeeded(&url, 2_000_000);
        book.dial_failed(&url, 3_000_000);
        assert_eq!(book.known[&url].next_try_ms, 3_002_000);
    }

    #[test]
    fn relays_not_heard_of_expire_unless_connected() {
        let mut book = AddrBook::default();
        for i in 0..3 {
            assert!(book.learn(rec(i, 1), String::from("a"), false, 0, none));
        }
        book.learn(rec(2, 2), String::from("a"), false, HOUR, none);
        let connected = BTreeSet::from([rec(1, 1).url]);
        book.expire(3 * HOUR, 0, &connected);
        assert_eq!(book.len(), 3, "expired too early");
        book.expire(3 * HOUR + 1, 0, &connected);
        assert_eq!(urls(&book), vec![rec(1, 1).url, rec(2, 1).url]);
        // After a restart at `started_ms`, nothing counts as heard of earlier.
        book.expire(3 * HOUR + HOUR, 2 * HOUR, &BTreeSet::new());
        assert_eq!(urls(&book), vec![rec(1, 1).url, rec(2, 1).url]);
        book.expire(5 * HOUR + 1, 2 * HOUR, &BTreeSet::new());
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn changes_collect_learned_and_forgotten_relays_once() {
        let mut stored = BTreeMap::new();
        stored.insert(rec(1, 5).url, Some(rec(1, 5)));
        stored.insert(rec(2, 5).url, None);
        let mut book = AddrBook::load(stored, &[]);
        assert_eq!(book.len(), 1);
        assert!(book.take_changes().is_empty(), "loading is no change");
        assert!(book.learn(rec(3, 6), String::from("a"), false, 0, none));
        book.forget(&rec(1, 5).url);
        let changes = book.take_changes();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[&rec(3, 6).url], Some(rec(3, 6)));
        assert_eq!(changes[&rec(1, 5).url], None);
        assert!(book.take_changes().is_empty());
    }

    #[test]
    fn freshest_lists_the_most_recently_seen_first() {
        let mut book = AddrBook::default();
        for (i, t) in [(1, 30), (2, 10), (3, 20)] {
            assert!(book.learn(rec(i, t), String::from("a"), false, 0, none));
        }
        let list: Vec<u64> = book.freshest(2).iter().map(|r| r.last_seen).collect();
        assert_eq!(list, vec![30, 20]);
    }

    #[test]
    fn loading_keeps_at_most_the_table_size() {
        let stored: BTreeMap<String, Option<NodeRecord>> = (0..MAX_KNOWN_NODES + 10)
            .map(|i| (rec(i, 1).url, Some(rec(i, 1))))
            .collect();
        let book = AddrBook::load(stored, &[String::from("ws://boot.example/ws")]);
        assert_eq!(book.len(), MAX_KNOWN_NODES + 1);
    }
}
