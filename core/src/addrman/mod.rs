//! The address manager (`docs/PROTOCOL.md` §5): relays this node knows of, in two tables
//! an attacker cannot dominate (after Bitcoin Core's addrman).
//!
//! - **new**: relays heard of. A record's bucket is chosen by a keyed hash of its *source's*
//!   network group and of its own group, so one source group reaches only
//!   [`NEW_BUCKETS_PER_SOURCE_GROUP`] of the [`NEW_BUCKETS`] buckets (at most
//!   [`MAX_NODES_PER_SOURCE`] entries). A record may take any of [`NEW_SLOT_CHOICES`] slots
//!   of its bucket (keyed too); a newcomer whose slots are all taken replaces an occupant only
//!   if that one is *terrible* (stale or failing); otherwise it is dropped.
//! - **tried**: relays we dialed and that completed a handshake. Only a successful dial
//!   moves an entry here; its bucket depends on its own group only. When its slot is taken,
//!   the occupant is tested first (test-before-evict): dialed as a feeler; it keeps its slot
//!   if it answers, and only one that fails or does not answer within [`TEST_WINDOW_MS`]
//!   is moved back to new.
//! - **fixed**: the host's bootstrap relays; never evicted or expired.
//!
//! Dials pick tried (and fixed) or new relays half the time each, so a flooded new table
//! gets at most half of the dials. The key of the hashes comes from the node's identity
//! seed: positions are secret to others, and the same across restarts and in the simulator.
//! Every change is collected for the store with its provenance ([`AddrMeta`]).

mod group;
#[cfg(test)]
mod tests;

pub use group::{ip_group, source_group, url_group};

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use crate::dial::DialPolicy;
use crate::encode::{Decode, DecodeError, Encode, Reader};
use crate::hash::sha256d_parts;
use crate::wire::{MAX_URL, NodeRecord};

/// Buckets of the new table.
pub const NEW_BUCKETS: usize = 128;
/// Buckets of the tried table.
pub const TRIED_BUCKETS: usize = 32;
/// Slots per bucket.
pub const BUCKET_SIZE: usize = 16;
/// New buckets one source group can reach.
pub const NEW_BUCKETS_PER_SOURCE_GROUP: usize = 4;
/// Tried buckets one address group can reach.
pub const TRIED_BUCKETS_PER_GROUP: usize = 4;
/// Entries one source group can have in the new table.
pub const MAX_NODES_PER_SOURCE: usize = NEW_BUCKETS_PER_SOURCE_GROUP * BUCKET_SIZE;
/// Slots of its bucket a new-table record may take, in order of preference: two relays of
/// one network group heard of from one source share a bucket, and with one slot each they
/// collided one time in [`BUCKET_SIZE`] (the later one was dropped for good). The bucket's
/// capacity, and so what one source group can fill, is the same.
pub const NEW_SLOT_CHOICES: usize = 4;
/// Relays kept (both tables; bootstrap relays come on top).
pub const MAX_KNOWN_NODES: usize = (NEW_BUCKETS + TRIED_BUCKETS) * BUCKET_SIZE;
/// A new relay not heard of for this long is forgotten (and is terrible before that).
pub const NODE_EXPIRY_MS: u64 = 3 * 60 * 60 * 1000;
/// A tried relay neither heard of nor reached for this long is forgotten.
pub const TRIED_EXPIRY_MS: u64 = 24 * 60 * 60 * 1000;
/// Longest wait between dials of a relay that keeps failing.
pub const MAX_DIAL_BACKOFF_MS: u64 = 5 * 60 * 1000;
/// A tried relay reached within this keeps its slot without a test.
pub const TRIED_FRESH_MS: u64 = 60 * 60 * 1000;
/// A tested occupant of a tried slot that does not answer within this loses it.
pub const TEST_WINDOW_MS: u64 = 60 * 1000;
/// Tried-slot collisions waiting for a test.
const MAX_COLLISIONS: usize = 16;
/// A new relay that failed this many dials in a row without ever succeeding is terrible.
const NEW_MAX_FAILURES: u32 = 3;
/// URLs found to lead to ourselves, remembered so gossip cannot make us dial them again.
const SELF_URLS: usize = 16;
/// The source of the host's bootstrap relays.
pub const SOURCE_BOOTSTRAP: &str = "bootstrap";
/// The source of relays stored without provenance (by a version before it was kept).
pub const SOURCE_STORE: &str = "store";

/// What the store keeps about a relay beside its record: where it was heard of, whether a
/// dial to it worked, and how dialing it went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrMeta {
    /// Who told us: a connection's remote address or a dialed URL.
    pub source: String,
    /// In the tried table.
    pub tried: bool,
    /// Last successful dial (seconds since the epoch, 0 = never).
    pub last_success_s: u64,
    /// Failed dials in a row.
    pub failures: u32,
}

impl Encode for AddrMeta {
    fn encode_to(&self, out: &mut Vec<u8>) {
        crate::encode::put_var_bytes(out, self.source.as_bytes());
        out.push(u8::from(self.tried));
        out.extend_from_slice(&self.last_success_s.to_le_bytes());
        out.extend_from_slice(&self.failures.to_le_bytes());
    }
}

impl Decode for AddrMeta {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let source = r.string("addr source", MAX_URL)?;
        let tried = r.bool("addr tried flag")?;
        Ok(AddrMeta {
            source,
            tried,
            last_success_s: r.u64()?,
            failures: r.u32()?,
        })
    }
}

/// Where an entry sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pos {
    New(Slot),
    Tried(Slot),
    Fixed,
}

/// (bucket, slot).
type Slot = (u16, u8);

#[derive(Clone, Debug)]
struct Entry {
    record: NodeRecord,
    meta: AddrMeta,
    pos: Pos,
    next_try_ms: u64,
    /// Local time (ms) it was last heard of.
    seen_ms: u64,
    /// Local time (ms) of the last failed dial.
    failed_ms: u64,
}

impl Entry {
    /// May be replaced by a newcomer: not heard of for long, or failing without ever
    /// having worked.
    fn terrible(&self, now_ms: u64) -> bool {
        self.seen_ms.saturating_add(NODE_EXPIRY_MS) < now_ms
            || (self.meta.last_success_s == 0 && self.meta.failures >= NEW_MAX_FAILURES)
    }
}

/// The address manager.
#[derive(Clone, Debug)]
pub struct AddrMan {
    key: [u8; 32],
    policy: DialPolicy,
    entries: BTreeMap<String, Entry>,
    new: BTreeMap<Slot, String>,
    tried: BTreeMap<Slot, String>,
    /// Entries of the new table waiting for a tried slot whose occupant is tested:
    /// candidate URL → when the test began (`None` = not yet).
    collisions: BTreeMap<String, Option<u64>>,
    /// URLs whose stored state changed since the last [`AddrMan::take_changes`].
    dirty: BTreeSet<String>,
    self_urls: BTreeSet<String>,
}

/// What the store is given: records and their provenance, by URL (`None` = forget).
pub type AddrChanges = (
    BTreeMap<String, Option<NodeRecord>>,
    BTreeMap<String, Option<AddrMeta>>,
);

impl AddrMan {
    /// An empty manager whose bucket positions derive from `seed`.
    pub fn new(seed: &[u8; 32], policy: DialPolicy) -> Self {
        AddrMan {
            key: sha256d_parts(&[b"tabcoin/addrman-key", seed]).0,
            policy,
            entries: BTreeMap::new(),
            new: BTreeMap::new(),
            tried: BTreeMap::new(),
            collisions: BTreeMap::new(),
            dirty: BTreeSet::new(),
            self_urls: BTreeSet::new(),
        }
    }

    /// The manager over what the store kept and the host's bootstrap relays. Stored tried
    /// relays are placed first; records the policy refuses, and records whose slot is taken,
    /// are dropped (and their deletion is a change for the store). Stored relays count as
    /// heard of when their record says. A record stored without provenance counts as heard
    /// of from [`SOURCE_STORE`], one source group.
    pub fn load(
        seed: &[u8; 32],
        policy: DialPolicy,
        nodes: BTreeMap<String, Option<NodeRecord>>,
        mut meta: BTreeMap<String, Option<AddrMeta>>,
        bootstrap: &[String],
    ) -> Self {
        let mut man = AddrMan::new(seed, policy);
        let mut stored: Vec<(NodeRecord, AddrMeta)> = nodes
            .into_iter()
            .filter_map(|(url, rec)| {
                let m = meta.remove(&url).flatten().unwrap_or_else(|| AddrMeta {
                    source: String::from(SOURCE_STORE),
                    ..AddrMeta::default()
                });
                rec.filter(|r| r.url == url).map(|r| (r, m))
            })
            .collect();
        // Tried first: they worked, so they get their slots before anything heard of.
        stored.sort_by_key(|(_, m)| !m.tried);
        for (rec, m) in stored {
            let url = rec.url.clone();
            if bootstrap.contains(&url) || !man.place_stored(rec, m) {
                man.dirty.insert(url);
            }
        }
        for url in bootstrap {
            if man.entries.contains_key(url) || policy.check_url(url).is_err() {
                continue;
            }
            man.entries.insert(
                url.clone(),
                Entry {
                    record: NodeRecord::unsigned(url.clone()),
                    meta: AddrMeta {
                        source: String::from(SOURCE_BOOTSTRAP),
                        ..AddrMeta::default()
                    },
                    pos: Pos::Fixed,
                    next_try_ms: 0,
                    seen_ms: 0,
                    failed_ms: 0,
                },
            );
        }
        man
    }

    fn place_stored(&mut self, rec: NodeRecord, mut meta: AddrMeta) -> bool {
        if self.policy.check_url(&rec.url).is_err() || self.entries.contains_key(&rec.url) {
            return false;
        }
        let url = rec.url.clone();
        let seen_ms = rec.last_seen.saturating_mul(1000);
        let pos = if meta.tried {
            let slot = self.tried_slot(&url);
            if self.tried.contains_key(&slot) {
                meta.tried = false;
                self.dirty.insert(url.clone());
                let Some(slot) = self.first_free(&self.new_slots(&url, &meta.source)) else {
                    return false;
                };
                Pos::New(slot)
            } else {
                Pos::Tried(slot)
            }
        } else {
            let Some(slot) = self.first_free(&self.new_slots(&url, &meta.source)) else {
                return false;
            };
            Pos::New(slot)
        };
        self.put(
            url,
            Entry {
                record: rec,
                meta,
                pos,
                next_try_ms: 0,
                seen_ms,
                failed_ms: 0,
            },
        );
        true
    }

    /// A keyed hash of `parts`, as a number.
    fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        all.push(&self.key);
        all.extend_from_slice(parts);
        let h = sha256d_parts(&all);
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.0[..8]);
        u64::from_le_bytes(b)
    }

    fn slot_in(&self, table: &[u8], bucket: u64, url: &str) -> Slot {
        let slot = self.hash(&[b"slot", table, &bucket.to_le_bytes(), url.as_bytes()])
            % BUCKET_SIZE as u64;
        (bucket as u16, slot as u8)
    }

    /// The new-table slots `url` heard of from `source` may take, in order of preference
    /// (the first is the slot of versions before [`NEW_SLOT_CHOICES`]; they may repeat).
    fn new_slots(&self, url: &str, source: &str) -> [Slot; NEW_SLOT_CHOICES] {
        let src = source_group(source);
        let grp = url_group(url).unwrap_or_default();
        let k = self.hash(&[b"new1", grp.as_bytes(), b"|", src.as_bytes()])
            % NEW_BUCKETS_PER_SOURCE_GROUP as u64;
        let bucket = self.hash(&[b"new2", src.as_bytes(), &k.to_le_bytes()]) % NEW_BUCKETS as u64;
        let first = self.slot_in(b"new", bucket, url);
        let mut slots = [first; NEW_SLOT_CHOICES];
        for (i, s) in slots.iter_mut().enumerate().skip(1) {
            let n = self.hash(&[b"slot+", &bucket.to_le_bytes(), &[i as u8], url.as_bytes()])
                % BUCKET_SIZE as u64;
            *s = (bucket as u16, n as u8);
        }
        slots
    }

    /// The first of `slots` not held in the new table.
    fn first_free(&self, slots: &[Slot]) -> Option<Slot> {
        slots.iter().copied().find(|s| !self.new.contains_key(s))
    }

    /// The tried-table slot of `url`.
    fn tried_slot(&self, url: &str) -> Slot {
        let grp = url_group(url).unwrap_or_default();
        let k = self.hash(&[b"tried1", url.as_bytes()]) % TRIED_BUCKETS_PER_GROUP as u64;
        let bucket =
            self.hash(&[b"tried2", grp.as_bytes(), &k.to_le_bytes()]) % TRIED_BUCKETS as u64;
        self.slot_in(b"tried", bucket, url)
    }

    fn put(&mut self, url: String, e: Entry) {
        match e.pos {
            Pos::New(s) => {
                self.new.insert(s, url.clone());
            }
            Pos::Tried(s) => {
                self.tried.insert(s, url.clone());
            }
            Pos::Fixed => {}
        }
        self.entries.insert(url, e);
    }

    fn take(&mut self, url: &str) -> Option<Entry> {
        let e = self.entries.remove(url)?;
        match e.pos {
            Pos::New(s) => {
                self.new.remove(&s);
            }
            Pos::Tried(s) => {
                self.tried.remove(&s);
            }
            Pos::Fixed => {}
        }
        self.collisions.remove(url);
        Some(e)
    }

    /// Relays known (both tables and the bootstrap ones).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Relays in the new table.
    pub fn new_len(&self) -> usize {
        self.new.len()
    }

    /// Relays in the tried table.
    pub fn tried_len(&self) -> usize {
        self.tried.len()
    }

    /// Whether `url` is in the tried table.
    pub fn is_tried(&self, url: &str) -> bool {
        self.entries
            .get(url)
            .is_some_and(|e| matches!(e.pos, Pos::Tried(_)))
    }

    /// When `url` may be dialed again (ms since the epoch), if it is a known relay.
    pub fn next_try_ms(&self, url: &str) -> Option<u64> {
        self.entries.get(url).map(|e| e.next_try_ms)
    }

    /// The provenance kept for `url`.
    pub fn meta(&self, url: &str) -> Option<&AddrMeta> {
        self.entries.get(url).map(|e| &e.meta)
    }

    /// Every known record, by URL.
    pub fn records(&self) -> impl Iterator<Item = &NodeRecord> {
        self.entries.values().map(|e| &e.record)
    }

    /// Up to `n` records to tell a peer: every tried relay and every bootstrap relay that
    /// worked first (they are proven), then new ones chosen with `pick` (a random index
    /// below its argument, from the node's generator). Attacker-fresh `last_seen` values
    /// cannot crowd the proven relays out.
    pub fn sample(&self, n: usize, pick: &mut dyn FnMut(usize) -> usize) -> Vec<NodeRecord> {
        let mut out: Vec<NodeRecord> = self
            .entries
            .values()
            .filter(|e| match e.pos {
                Pos::Tried(_) => true,
                Pos::Fixed => e.meta.last_success_s > 0,
                Pos::New(_) => false,
            })
            .map(|e| e.record.clone())
            .collect();
        out.truncate(n);
        let mut rest: Vec<&String> = self.new.values().collect();
        while out.len() < n && !rest.is_empty() {
            let url = rest.swap_remove(pick(rest.len()));
            out.push(self.entries[url].record.clone());
        }
        out
    }

    /// Relays whose backoff has passed: (url, record, proven) where proven = tried, or a
    /// bootstrap relay.
    pub fn dialable(&self, now_ms: u64) -> impl Iterator<Item = (&String, &NodeRecord, bool)> {
        self.entries
            .iter()
            .filter(move |(_, e)| e.next_try_ms <= now_ms)
            .map(|(url, e)| (url, &e.record, !matches!(e.pos, Pos::New(_))))
    }

    /// What the store has not been given yet (and forgets it).
    pub fn take_changes(&mut self) -> AddrChanges {
        let mut nodes = BTreeMap::new();
        let mut meta = BTreeMap::new();
        for url in core::mem::take(&mut self.dirty) {
            match self.entries.get(&url) {
                Some(e) if e.pos != Pos::Fixed => {
                    nodes.insert(url.clone(), Some(e.record.clone()));
                    meta.insert(url, Some(e.meta.clone()));
                }
                _ => {
                    nodes.insert(url.clone(), None);
                    meta.insert(url, None);
                }
            }
        }
        (nodes, meta)
    }

    /// Removes a relay (and tells the store); returns whether it was there.
    pub fn forget(&mut self, url: &str) -> bool {
        match self.take(url) {
            Some(_) => {
                self.dirty.insert(String::from(url));
                true
            }
            None => false,
        }
    }

    /// `url` led to ourselves: forget it as a relay to dial, for good.
    pub fn mark_self(&mut self, url: String) {
        self.forget(&url);
        if self.self_urls.len() >= SELF_URLS {
            self.self_urls.pop_first();
        }
        self.self_urls.insert(url);
    }

    /// Adds or refreshes a relay record heard of from `source`; returns true if it was new.
    /// `direct` = the record was verified (we dialed its URL and the node there proved its
    /// id). A URL the dial policy refuses is never learned.
    pub fn learn(&mut self, rec: NodeRecord, source: String, direct: bool, now_ms: u64) -> bool {
        if self.self_urls.contains(&rec.url) || self.policy.check_url(&rec.url).is_err() {
            return false;
        }
        if let Some(e) = self.entries.get_mut(&rec.url) {
            // Records are signed: a newer one by the same node, or a verified one, replaces
            // the stored one whole. Another key's claim to a known URL waits for a dial.
            let newer = rec.node_id == e.record.node_id && rec.last_seen > e.record.last_seen;
            if newer || direct {
                e.seen_ms = now_ms;
                if rec != e.record {
                    let url = rec.url.clone();
                    e.record = rec;
                    self.dirty.insert(url);
                }
            }
            return false;
        }
        let slots = self.new_slots(&rec.url, &source);
        let slot = match self.first_free(&slots) {
            Some(free) => free,
            None => {
                // Every slot it may take is held: only a terrible occupant gives way (any
                // occupant, for a record we verified ourselves).
                let Some(slot) = slots
                    .into_iter()
                    .find(|s| direct || self.entries[&self.new[s]].terrible(now_ms))
                else {
                    return false;
                };
                let occupant = self.new[&slot].clone();
                self.forget(&occupant);
                slot
            }
        };
        let url = rec.url.clone();
        self.dirty.insert(url.clone());
        self.put(
            url.clone(),
            Entry {
                record: rec.clone(),
                meta: AddrMeta {
                    source,
                    ..AddrMeta::default()
                },
                pos: Pos::New(slot),
                next_try_ms: 0,
                seen_ms: now_ms,
                failed_ms: 0,
            },
        );
        if direct {
            self.dial_succeeded(&url, now_ms);
        }
        true
    }

    /// We dialed `url` and the node there proved its id over that URL (its signed record,
    /// which binds the two, is learned from its `hello`); the relay moves to the tried table
    /// (after a test of the slot's occupant, if the slot is taken by one not reached for
    /// [`TRIED_FRESH_MS`]).
    pub fn dial_succeeded(&mut self, url: &str, now_ms: u64) {
        let Some(e) = self.entries.get_mut(url) else {
            return;
        };
        e.meta.failures = 0;
        e.meta.last_success_s = now_ms / 1000;
        e.seen_ms = now_ms;
        e.next_try_ms = 0;
        let pos = e.pos;
        if pos != Pos::Fixed {
            self.dirty.insert(String::from(url));
        }
        if let Pos::New(_) = pos {
            self.make_tried(url, now_ms);
        }
    }

    /// Moves a new entry to its tried slot, or queues a collision.
    fn make_tried(&mut self, url: &str, now_ms: u64) {
        let slot = self.tried_slot(url);
        match self.tried.get(&slot) {
            None => self.move_to_tried(url, slot),
            Some(occupant) => {
                let fresh = self.entries[occupant]
                    .meta
                    .last_success_s
                    .saturating_mul(1000)
                    .saturating_add(TRIED_FRESH_MS)
                    >= now_ms;
                if !fresh
                    && self.collisions.len() < MAX_COLLISIONS
                    && !self.collisions.contains_key(url)
                {
                    self.collisions.insert(String::from(url), None);
                }
            }
        }
    }

    fn move_to_tried(&mut self, url: &str, slot: Slot) {
        let Some(mut e) = self.take(url) else {
            return;
        };
        e.pos = Pos::Tried(slot);
        e.meta.tried = true;
        self.put(String::from(url), e);
        self.dirty.insert(String::from(url));
    }

    /// Moves a tried entry back to the new table: to a free slot of those its source gives
    /// it, or else to the first of them, whose occupant is forgotten.
    fn demote(&mut self, url: &str) {
        let Some(mut e) = self.take(url) else {
            return;
        };
        let slots = self.new_slots(url, &e.meta.source);
        let slot = self.first_free(&slots).unwrap_or(slots[0]);
        if let Some(occupant) = self.new.get(&slot).cloned() {
            self.forget(&occupant);
        }
        e.pos = Pos::New(slot);
        e.meta.tried = false;
        self.put(String::from(url), e);
        self.dirty.insert(String::from(url));
    }

    /// Settles tried-slot collisions (test-before-evict); returns the URL of an occupant
    /// the node should dial now as a test (a feeler), if any. An occupant that answered
    /// since its test began, or was reached within [`TRIED_FRESH_MS`], keeps its slot; one
    /// whose test dial failed, or that did not answer within [`TEST_WINDOW_MS`], goes back
    /// to the new table and the candidate takes the slot. An occupant in `connected` (the
    /// URLs of open connections we dialed) is reachable and keeps its slot.
    pub fn resolve_collisions(
        &mut self,
        now_ms: u64,
        connected: &BTreeSet<String>,
    ) -> Option<String> {
        let mut to_test = None;
        let list: Vec<(String, Option<u64>)> = self
            .collisions
            .iter()
            .map(|(u, t)| (u.clone(), *t))
            .collect();
        for (cand, started) in list {
            let Some(Pos::New(_)) = self.entries.get(&cand).map(|e| e.pos) else {
                self.collisions.remove(&cand);
                continue;
            };
            let slot = self.tried_slot(&cand);
            let Some(occupant) = self.tried.get(&slot).cloned() else {
                self.collisions.remove(&cand);
                self.move_to_tried(&cand, slot);
                continue;
            };
            let occ = &self.entries[&occupant];
            let success_ms = occ.meta.last_success_s.saturating_mul(1000);
            let keep = connected.contains(&occupant)
                || match started {
                    None => success_ms.saturating_add(TRIED_FRESH_MS) >= now_ms,
                    // Reached since its test began (times kept in seconds).
                    Some(t) => success_ms >= t / 1000 * 1000,
                };
            match started {
                _ if keep => {
                    self.collisions.remove(&cand);
                }
                Some(t) if occ.failed_ms >= t || now_ms >= t + TEST_WINDOW_MS => {
                    self.collisions.remove(&cand);
                    self.demote(&occupant);
                    self.move_to_tried(&cand, slot);
                }
                Some(_) => {}
                None => {
                    if to_test.is_none() {
                        self.collisions.insert(cand, Some(now_ms));
                        to_test = Some(occupant);
                    }
                }
            }
        }
        to_test
    }

    /// Backs off from a relay URL that could not be reached or did not complete a handshake:
    /// 2^min(f, 9) s after `f` failures in a row, at most 5 minutes.
    pub fn dial_failed(&mut self, url: &str, now_ms: u64) {
        if let Some(e) = self.entries.get_mut(url) {
            e.meta.failures = e.meta.failures.saturating_add(1);
            e.failed_ms = now_ms;
            let backoff = 1_000u64 << e.meta.failures.min(9);
            e.next_try_ms = now_ms + backoff.min(MAX_DIAL_BACKOFF_MS);
            if e.pos != Pos::Fixed {
                self.dirty.insert(String::from(url));
            }
        }
    }

    /// Forgets new relays not heard of for [`NODE_EXPIRY_MS`] and tried ones neither heard
    /// of nor reached for [`TRIED_EXPIRY_MS`] (never `connected` ones or the bootstrap
    /// relays). Nothing counts as heard of before `started_ms`, so relays loaded from the
    /// store get the full time after a restart.
    pub fn expire(&mut self, now_ms: u64, started_ms: u64, connected: &BTreeSet<String>) {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(url, e)| {
                let last = e
                    .seen_ms
                    .max(e.meta.last_success_s.saturating_mul(1000))
                    .max(started_ms);
                let ttl = match e.pos {
                    Pos::New(_) => NODE_EXPIRY_MS,
                    Pos::Tried(_) => TRIED_EXPIRY_MS,
                    Pos::Fixed => return false,
                };
                last.saturating_add(ttl) < now_ms && !connected.contains(*url)
            })
            .map(|(u, _)| u.clone())
            .collect();
        for url in expired {
            self.forget(&url);
        }
    }
}
