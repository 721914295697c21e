//! Persistence boundary: every state change is a [`ChangeSet`]; a host's [`Store`] writes
//! one ChangeSet in one atomic transaction and can load the sum of all of them back.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;

use crate::addrman::AddrMeta;
use crate::encode::{Decode, DecodeError, Encode, Reader};
use crate::primitives::{Block, BlockHash, BlockHeader, OutPoint};
use crate::units::Height;
use crate::utxo::{BlockUndo, Coin};
use crate::wire::{MAX_URL, NodeRecord};
use alloc::string::String;

/// One atomic change of persistent state. Maps hold the final value of each key
/// (`None` = delete), so merging two sets keeps only what the later one says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Block bodies to store.
    pub blocks: Vec<Block>,
    /// Headers of stored blocks, parents first: what [`Store::load`] returns instead of
    /// bodies, so start-up reads no body. On write it holds the headers of the bodies this
    /// set prunes (`pruned`), for a host that keeps a header only beside its body; a host
    /// that stores headers on their own ignores it.
    pub headers: Vec<BlockHeader>,
    /// Stored blocks found invalid when connected.
    pub invalid: BTreeSet<BlockHash>,
    pub utxo: BTreeMap<OutPoint, Option<Coin>>,
    pub undo: BTreeMap<BlockHash, Option<BlockUndo>>,
    /// The new tip of the active chain, if it changed.
    pub tip: Option<BlockHash>,
    /// Known relays by URL (`None` = forget).
    pub nodes: BTreeMap<String, Option<NodeRecord>>,
    /// Bans by the node's ban key (an address group or a dialed URL, see
    /// `node::ban_key`): until when, in milliseconds since the epoch (`None` = lifted).
    pub bans: BTreeMap<String, Option<u64>>,
    /// Provenance of known relays by URL, kept beside `nodes` (`None` = forget): where each
    /// was heard of and how dialing it went (see `addrman`).
    pub node_meta: BTreeMap<String, Option<AddrMeta>>,
    /// Bodies (and their undo data) a pruned node deletes; their headers stay. A host
    /// applies this after `blocks` and `undo` of the same set (see `docs/STORAGE.md`).
    pub pruned: BTreeSet<BlockHash>,
    /// The lowest height from which a pruned node keeps bodies, when it changed; what
    /// [`Store::load`] returns the stored value in.
    pub prune_height: Option<Height>,
    /// Load only: the encoded size of each stored body by hash, so a pruned node knows what
    /// its kept bodies weigh without reading them (empty from a host that does not record
    /// sizes: those bodies then count as 0 bytes). Writing ignores it (a host records the
    /// size of each body it stores).
    pub sizes: BTreeMap<BlockHash, u32>,
}

impl ChangeSet {
    /// What the set costs to hold and to write, roughly: block bodies exactly, other records
    /// by a fixed allowance for keys and overhead. Hosts bound what they keep unwritten with it
    /// (the tab's write queue, the relay's merged writes).
    pub fn estimated_bytes(&self) -> usize {
        const RECORD: usize = 64;
        let blocks: usize = self.blocks.iter().map(|b| b.encoded_len() + RECORD).sum();
        let undo: usize = self
            .undo
            .values()
            .map(|u| u.as_ref().map_or(0, |u| u.spent.len() * 96) + RECORD)
            .sum();
        blocks
            + undo
            + (self.utxo.len() + self.invalid.len() + self.nodes.len() + self.bans.len())
                * (RECORD + 48)
            + RECORD
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
            && self.headers.is_empty()
            && self.invalid.is_empty()
            && self.utxo.is_empty()
            && self.undo.is_empty()
            && self.tip.is_none()
            && self.nodes.is_empty()
            && self.bans.is_empty()
            && self.node_meta.is_empty()
            && self.pruned.is_empty()
            && self.prune_height.is_none()
            && self.sizes.is_empty()
    }

    /// Folds a later change into this one.
    pub fn merge(&mut self, later: ChangeSet) {
        // A body stored again after it was pruned (downloaded anew) is kept.
        for b in &later.blocks {
            self.pruned.remove(&b.hash());
        }
        self.blocks.extend(later.blocks);
        self.headers.extend(later.headers);
        self.invalid.extend(later.invalid);
        self.utxo.extend(later.utxo);
        self.undo.extend(later.undo);
        if later.tip.is_some() {
            self.tip = later.tip;
        }
        self.nodes.extend(later.nodes);
        self.bans.extend(later.bans);
        self.node_meta.extend(later.node_meta);
        self.pruned.extend(later.pruned);
        if later.prune_height.is_some() {
            self.prune_height = later.prune_height;
        }
        self.sizes.extend(later.sizes);
    }
}

const MAX_CHANGESET_ITEMS: usize = 1 << 24;

impl Encode for ChangeSet {
    fn encode_to(&self, out: &mut Vec<u8>) {
        use crate::encode::put_varint;
        put_varint(out, self.blocks.len() as u64);
        for b in &self.blocks {
            b.encode_to(out);
        }
        put_varint(out, self.headers.len() as u64);
        for h in &self.headers {
            h.encode_to(out);
        }
        put_varint(out, self.invalid.len() as u64);
        for h in &self.invalid {
            out.extend_from_slice(h.as_bytes());
        }
        put_varint(out, self.utxo.len() as u64);
        for (op, c) in &self.utxo {
            op.encode_to(out);
            match c {
                Some(c) => {
                    out.push(1);
                    c.encode_to(out);
                }
                None => out.push(0),
            }
        }
        put_varint(out, self.undo.len() as u64);
        for (h, u) in &self.undo {
            out.extend_from_slice(h.as_bytes());
            match u {
                Some(u) => {
                    out.push(1);
                    u.encode_to(out);
                }
                None => out.push(0),
            }
        }
        match &self.tip {
            Some(h) => {
                out.push(1);
                out.extend_from_slice(h.as_bytes());
            }
            None => out.push(0),
        }
        put_varint(out, self.nodes.len() as u64);
        for (url, rec) in &self.nodes {
            crate::encode::put_var_bytes(out, url.as_bytes());
            match rec {
                Some(r) => {
                    out.push(1);
                    r.encode_to(out);
                }
                None => out.push(0),
            }
        }
        put_varint(out, self.bans.len() as u64);
        for (key, until) in &self.bans {
            crate::encode::put_var_bytes(out, key.as_bytes());
            match until {
                Some(t) => {
                    out.push(1);
                    out.extend_from_slice(&t.to_le_bytes());
                }
                None => out.push(0),
            }
        }
        put_varint(out, self.node_meta.len() as u64);
        for (url, meta) in &self.node_meta {
            crate::encode::put_var_bytes(out, url.as_bytes());
            match meta {
                Some(m) => {
                    out.push(1);
                    m.encode_to(out);
                }
                None => out.push(0),
            }
        }
        put_varint(out, self.pruned.len() as u64);
        for h in &self.pruned {
            out.extend_from_slice(h.as_bytes());
        }
        match self.prune_height {
            Some(h) => {
                out.push(1);
                put_varint(out, h.0);
            }
            None => out.push(0),
        }
        put_varint(out, self.sizes.len() as u64);
        for (h, n) in &self.sizes {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn read_option<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    if r.bool(field)? {
        Ok(Some(f(r)?))
    } else {
        Ok(None)
    }
}

/// Reads keyed entries that must be strictly increasing, so the encoding stays canonical.
fn read_sorted<K: Ord + Clone, V>(
    r: &mut Reader<'_>,
    field: &'static str,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<(K, V), DecodeError>,
) -> Result<BTreeMap<K, V>, DecodeError> {
    let n = r.len(field, MAX_CHANGESET_ITEMS)?;
    let mut map = BTreeMap::new();
    let mut last: Option<K> = None;
    for _ in 0..n {
        let (k, v) = item(r)?;
        if last.as_ref().is_some_and(|l| *l >= k) {
            return Err(DecodeError::OutOfRange { field });
        }
        last = Some(k.clone());
        map.insert(k, v);
    }
    Ok(map)
}

impl Decode for ChangeSet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let blocks = r.list("changeset blocks", MAX_CHANGESET_ITEMS, Block::decode_from)?;
        let headers = r.list(
            "changeset headers",
            MAX_CHANGESET_ITEMS,
            BlockHeader::decode_from,
        )?;
        let invalid = read_sorted(r, "changeset invalid", |r| {
            Ok((BlockHash::from_bytes(r.array()?), ()))
        })?
        .into_keys()
        .collect();
        let utxo = read_sorted(r, "changeset utxo", |r| {
            Ok((
                OutPoint::decode_from(r)?,
                read_option(r, "coin flag", Coin::decode_from)?,
            ))
        })?;
        let undo = read_sorted(r, "changeset undo", |r| {
            Ok((
                BlockHash::from_bytes(r.array()?),
                read_option(r, "undo flag", BlockUndo::decode_from)?,
            ))
        })?;
        let tip = read_option(r, "tip flag", |r| Ok(BlockHash::from_bytes(r.array()?)))?;
        let nodes = read_sorted(r, "changeset nodes", |r| {
            let url = r.string("node url", MAX_URL)?;
            let rec = read_option(r, "node flag", NodeRecord::decode_from)?;
            Ok((url, rec))
        })?;
        let bans = read_sorted(r, "changeset bans", |r| {
            let key = r.string("ban key", MAX_URL)?;
            Ok((key, read_option(r, "ban flag", |r| r.u64())?))
        })?;
        let node_meta = read_sorted(r, "changeset node meta", |r| {
            let url = r.string("node url", MAX_URL)?;
            Ok((
                url,
                read_option(r, "node meta flag", AddrMeta::decode_from)?,
            ))
        })?;
        let pruned = read_sorted(r, "changeset pruned", |r| {
            Ok((BlockHash::from_bytes(r.array()?), ()))
        })?
        .into_keys()
        .collect();
        let prune_height = read_option(r, "prune height flag", |r| Ok(Height(r.varint()?)))?;
        let sizes = read_sorted(r, "changeset sizes", |r| {
            Ok((BlockHash::from_bytes(r.array()?), r.u32()?))
        })?;
        Ok(ChangeSet {
            pruned,
            prune_height,
            sizes,
            blocks,
            headers,
            invalid,
            utxo,
            undo,
            tip,
            nodes,
            bans,
            node_meta,
        })
    }
}

/// A host's persistent storage. `persist` must apply a whole ChangeSet or nothing.
pub trait Store {
    type Error: fmt::Debug + fmt::Display;

    /// What rebuilds the state, as one ChangeSet: headers (not bodies), invalid marks, the
    /// UTXO set, the tip, nodes and bans. Undo data and bodies are read one block at a time
    /// with [`Store::load_block`] when the chain asks for them.
    fn load(&mut self) -> Result<ChangeSet, Self::Error>;

    /// The stored body of `hash` and its undo data (stored for active blocks only).
    fn load_block(
        &mut self,
        hash: &BlockHash,
    ) -> Result<(Option<Block>, Option<BlockUndo>), Self::Error>;

    fn persist(&mut self, changes: &ChangeSet) -> Result<(), Self::Error>;
}

/// An in-memory store for tests and the simulator.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    blocks: BTreeMap<BlockHash, Block>,
    /// Headers of every stored block (they outlive pruned bodies).
    headers: BTreeMap<BlockHash, BlockHeader>,
    order: Vec<BlockHash>,
    prune_height: Option<Height>,
    invalid: BTreeSet<BlockHash>,
    utxo: BTreeMap<OutPoint, Coin>,
    undo: BTreeMap<BlockHash, BlockUndo>,
    tip: Option<BlockHash>,
    nodes: BTreeMap<String, NodeRecord>,
    bans: BTreeMap<String, u64>,
    node_meta: BTreeMap<String, AddrMeta>,
    /// Number of ChangeSets persisted (one write transaction each).
    pub writes: usize,
    /// Number of bodies read back with `load_block`.
    pub loads: usize,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
}

/// MemStore cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Infallible {}

impl fmt::Display for Infallible {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl core::error::Error for Infallible {}

impl Store for MemStore {
    type Error = Infallible;

    fn load(&mut self) -> Result<ChangeSet, Infallible> {
        Ok(ChangeSet {
            headers: self.order.iter().map(|h| self.headers[h]).collect(),
            sizes: self
                .blocks
                .iter()
                .map(|(h, b)| (*h, u32::try_from(b.encoded_len()).unwrap_or(u32::MAX)))
                .collect(),
            prune_height: self.prune_height,
            invalid: self.invalid.clone(),
            utxo: self.utxo.iter().map(|(k, v)| (*k, Some(*v))).collect(),
            tip: self.tip,
            nodes: self
                .nodes
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            bans: self
                .bans
                .iter()
                .map(|(k, v)| (k.clone(), Some(*v)))
                .collect(),
            node_meta: self
                .node_meta
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            ..ChangeSet::default()
        })
    }

    fn persist(&mut self, cs: &ChangeSet) -> Result<(), Infallible> {
        for b in &cs.blocks {
            let h = b.hash();
            self.blocks.insert(h, b.clone());
            if self.headers.insert(h, b.header).is_none() {
                self.order.push(h);
            }
        }
        self.invalid.extend(cs.invalid.iter().copied());
        for (op, c) in &cs.utxo {
            match c {
                Some(c) => self.utxo.insert(*op, *c),
                None => self.utxo.remove(op),
            };
        }
        for (h, u) in &cs.undo {
            match u {
                Some(u) => self.undo.insert(*h, u.clone()),
                None => self.undo.remove(h),
            };
        }
        if cs.tip.is_some() {
            self.tip = cs.tip;
        }
        for h in &cs.pruned {
            self.blocks.remove(h);
            self.undo.remove(h);
        }
        if cs.prune_height.is_some() {
            self.prune_height = cs.prune_height;
        }
        for (url, rec) in &cs.nodes {
            match rec {
                Some(r) => self.nodes.insert(url.clone(), r.clone()),
                None => self.nodes.remove(url),
            };
        }
        for (key, until) in &cs.bans {
            match until {
                Some(t) => self.bans.insert(key.clone(), *t),
                None => self.bans.remove(key),
            };
        }
        for (url, meta) in &cs.node_meta {
            match meta {
                Some(m) => self.node_meta.insert(url.clone(), m.clone()),
                None => self.node_meta.remove(url),
            };
        }
        self.writes += 1;
        Ok(())
    }

    fn load_block(
        &mut self,
        hash: &BlockHash,
    ) -> Result<(Option<Block>, Option<BlockUndo>), Infallible> {
        self.loads += 1;
        Ok((self.blocks.get(hash).cloned(), self.undo.get(hash).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::primitives::Txid;
    use crate::testkit::{extend_empty, wallet};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        #[test]
        fn changeset_round_trip(blocks in 0usize..4, deletes in proptest::collection::vec(any::<[u8; 32]>(), 0..4)) {
            let params = Params::test();
            let mut chain = crate::chain::Chain::new(params.clone());
            let mut cs = ChangeSet::default();
            for b in extend_empty(&mut chain, blocks, wallet(1, &params).public_key(), b"") {
                let out = chain.accept_block(&b, b.header.time).unwrap();
                prop_assert!(out.duplicate);
            }
            // Rebuild the union of changes from genesis for a realistic set.
            let mut fresh = crate::chain::Chain::new(params.clone());
            for h in &chain.active_chain()[1..] {
                let b = chain.block(h).unwrap().clone();
                cs.merge(fresh.accept_block(&b, b.header.time).unwrap().changes);
            }
            for d in &deletes {
                cs.utxo.insert(OutPoint { txid: Txid::from_bytes(*d), vout: 1 }, None);
                cs.undo.insert(BlockHash::from_bytes(*d), None);
                cs.invalid.insert(BlockHash::from_bytes(*d));
                cs.pruned.insert(BlockHash::from_bytes(*d));
                cs.sizes.insert(BlockHash::from_bytes(*d), u32::from_le_bytes(d[..4].try_into().unwrap()));
                cs.prune_height = Some(Height(u64::from(d[2]) << (d[3] % 56)));
                let url = alloc::format!("ws://{}/ws", crate::hash::Hash256(*d));
                cs.nodes.insert(url.clone(), Some(NodeRecord { node_id: crate::sig::PublicKey(*d), last_seen: 7, expires: 9, signature: crate::sig::Signature([d[1]; 64]), ..NodeRecord::unsigned(url) }));
                let ban = alloc::format!("{}::/64", crate::hash::Hash256(*d));
                cs.bans.insert(ban, if d[0] % 2 == 0 { Some(u64::from_le_bytes(d[..8].try_into().unwrap())) } else { None });
            }
            let bytes = cs.encode();
            prop_assert_eq!(ChangeSet::decode(&bytes).unwrap(), cs);
        }
    }

    #[test]
    fn merge_keeps_the_later_value() {
        let op = OutPoint {
            txid: Txid::from_bytes([1; 32]),
            vout: 0,
        };
        let coin = crate::utxo::Coin {
            output: crate::primitives::TxOut {
                amount: crate::units::Amount::from_units(1).unwrap(),
                key: crate::sig::PublicKey([2; 32]),
            },
            height: crate::units::Height(1),
            coinbase: false,
        };
        let mut a = ChangeSet::default();
        a.utxo.insert(op, Some(coin));
        let mut b = ChangeSet::default();
        b.utxo.insert(op, None);
        a.merge(b);
        assert_eq!(a.utxo.get(&op), Some(&None));
        let mut store = MemStore::new();
        store.persist(&a).unwrap();
        assert!(store.load().unwrap().utxo.is_empty());
    }

    #[test]
    fn unsorted_changeset_is_not_canonical() {
        let mut cs = ChangeSet::default();
        cs.invalid.insert(BlockHash::from_bytes([1; 32]));
        cs.invalid.insert(BlockHash::from_bytes([2; 32]));
        let mut bytes = cs.encode();
        // Swap the two hashes: same set, non-canonical order.
        let start = 3; // after the empty block and header lists and the count
        let (a, b) = bytes[start..start + 64].split_at_mut(32);
        a.swap_with_slice(b);
        prop_assert_is_err(ChangeSet::decode(&bytes));
    }

    #[test]
    fn bans_round_trip_and_lifts_apply() {
        let mut cs = ChangeSet::default();
        cs.bans.insert(String::from("10.0.0.1"), Some(1_000));
        cs.bans
            .insert(String::from("2001:db8:1:2::/64"), Some(u64::MAX));
        cs.bans.insert(String::from("ws://x.test/ws"), None);
        let bytes = cs.encode();
        assert_eq!(ChangeSet::decode(&bytes).unwrap(), cs);
        // The tail is the bans: count, then each key, flag and little-endian time.
        let mut tail = alloc::vec![3u8];
        for (k, v) in &cs.bans {
            tail.push(k.len() as u8);
            tail.extend_from_slice(k.as_bytes());
            match v {
                Some(t) => {
                    tail.push(1);
                    tail.extend_from_slice(&t.to_le_bytes());
                }
                None => tail.push(0),
            }
        }
        tail.extend_from_slice(&[0, 0, 0, 0]); // no node meta, pruned, prune height, sizes
        assert!(bytes.ends_with(&tail));
        let mut store = MemStore::new();
        store.persist(&cs).unwrap();
        let mut lift = ChangeSet::default();
        lift.bans.insert(String::from("10.0.0.1"), None);
        store.persist(&lift).unwrap();
        let loaded = store.load().unwrap().bans;
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded.get("2001:db8:1:2::/64"), Some(&Some(u64::MAX)));
    }

    #[test]
    fn unsorted_bans_are_not_canonical() {
        let mut cs = ChangeSet::default();
        cs.bans.insert(String::from("a"), None);
        cs.bans.insert(String::from("b"), None);
        let mut bytes = cs.encode();
        // Before the empty node meta and pruning fields, the last 6 bytes are
        // [1, 'a', 0, 1, 'b', 0]: swap the keys.
        let n = bytes.len() - 4;
        bytes[n - 5] = b'b';
        bytes[n - 2] = b'a';
        prop_assert_is_err(ChangeSet::decode(&bytes));
    }

    fn prop_assert_is_err<T: core::fmt::Debug>(r: Result<T, DecodeError>) {
        assert!(matches!(r, Err(DecodeError::OutOfRange { .. })), "{r:?}");
    }
}
