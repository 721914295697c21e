//! The compact in-memory UTXO set.
//!
//! Layout (docs/STORAGE.md, "UTXO set in memory"): a `base` vector of packed 56-byte
//! entries sorted by outpoint, a small `delta` map of recent changes over it, and a table
//! of the distinct 32-byte keys that the base entries point into. Lookups are a delta probe
//! plus a binary search: O(log n) in the worst case whatever ids an attacker picks (there
//! is no hash to flood), and iteration merges both in outpoint order, so it is the same
//! order as a `BTreeMap<OutPoint, Coin>`. The delta is folded into the base in place once it
//! holds more than 1/64 of the set, which bounds its memory to a few bytes per coin and the
//! amortised cost of a change to ~64 entry moves.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

use super::{Coin, UtxoView};
use crate::hash::{Hash256, sha256d};
use crate::primitives::{OutPoint, TxOut, Txid};
use crate::sig::PublicKey;
use crate::units::{Amount, Height};

/// The delta is folded into the base once it holds more than `len / DELTA_DIVISOR` entries
/// (and more than [`DELTA_MIN`]).
const DELTA_DIVISOR: usize = 64;
const DELTA_MIN: usize = if cfg!(test) { 3 } else { 1024 };

/// The top bit of a packed amount is the coinbase flag (amounts are at most
/// `MAX_MONEY` < 2^55).
const COINBASE_BIT: u64 = 1 << 63;

/// One coin of the base: the full outpoint, the amount with the coinbase flag, the height
/// and the index of its key in [`Keys`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packed {
    txid: [u8; 32],
    vout: u32,
    key: u32,
    amount: u64,
    height: u64,
}

impl Packed {
    fn cmp_outpoint(&self, op: &OutPoint) -> Ordering {
        self.txid
            .cmp(op.txid.as_bytes())
            .then(self.vout.cmp(&op.vout))
    }

    fn outpoint(&self) -> OutPoint {
        OutPoint {
            txid: Txid::from_bytes(self.txid),
            vout: self.vout,
        }
    }

    fn coin(&self, keys: &Keys) -> Coin {
        Coin {
            output: TxOut {
                amount: Amount::from_units(self.amount & !COINBASE_BIT)
                    .expect("packed from an Amount, which is at most MAX_MONEY"),
                key: PublicKey(keys.get(self.key)),
            },
            height: Height(self.height),
            coinbase: self.amount & COINBASE_BIT != 0,
        }
    }
}

/// Distinct keys of the base entries, each stored once with a reference count. The map is
/// ordered (no hash to flood); freed slots are reused.
#[derive(Clone, Default)]
struct Keys {
    keys: Vec<[u8; 32]>,
    refs: Vec<u32>,
    index: BTreeMap<[u8; 32], u32>,
    free: Vec<u32>,
}

impl Keys {
    fn get(&self, i: u32) -> [u8; 32] {
        self.keys[i as usize]
    }

    fn intern(&mut self, key: &[u8; 32]) -> u32 {
        if let Some(&i) = self.index.get(key) {
            self.refs[i as usize] += 1;
            return i;
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.keys[i as usize] = *key;
                self.refs[i as usize] = 1;
                i
            }
            None => {
                let i = u32::try_from(self.keys.len())
                    .expect("fewer than 2^32 distinct keys fit in memory");
                self.keys.push(*key);
                self.refs.push(1);
                i
            }
        };
        self.index.insert(*key, i);
        i
    }

    fn release(&mut self, i: u32) {
        let r = &mut self.refs[i as usize];
        *r -= 1;
        if *r == 0 {
            self.index.remove(&self.keys[i as usize]);
            self.free.push(i);
        }
    }

    fn pack(&mut self, op: &OutPoint, coin: &Coin) -> Packed {
        Packed {
            txid: *op.txid.as_bytes(),
            vout: op.vout,
            key: self.intern(&coin.output.key.0),
            amount: coin.output.amount.units() | if coin.coinbase { COINBASE_BIT } else { 0 },
            height: coin.height.0,
        }
    }

    /// Gives back trailing freed slots and spare capacity (called when the delta is
    /// folded, so at most once per `len / 64` changes).
    fn shrink(&mut self) {
        if self.free.len() > self.keys.len() / 4 {
            // Renumbering would touch every entry; dropping only trailing free slots is
            // cheap and keeps the indices stable.
            self.free.sort_unstable();
            while let Some(&last) = self.free.last() {
                if last as usize + 1 != self.keys.len() {
                    break;
                }
                self.free.pop();
                self.keys.pop();
                self.refs.pop();
            }
        }
        if self.keys.capacity() > self.keys.len() + self.keys.len() / 8 + 64 {
            self.keys.shrink_to_fit();
            self.refs.shrink_to_fit();
        }
        if self.free.capacity() > self.free.len() * 2 + 64 {
            self.free.shrink_to_fit();
        }
    }
}

/// The unspent outputs at the tip of the active chain.
#[derive(Clone, Default)]
pub struct UtxoSet {
    /// Sorted by outpoint, no duplicates.
    base: Vec<Packed>,
    /// Overrides the base: `Some` adds or replaces, `None` deletes a base entry (a `None`
    /// is only kept for an outpoint the base holds).
    delta: BTreeMap<OutPoint, Option<Coin>>,
    keys: Keys,
    len: usize,
}

impl fmt::Debug for UtxoSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Equal when they hold the same coins, whatever their internal layout.
impl PartialEq for UtxoSet {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for UtxoSet {}

impl UtxoView for UtxoSet {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        match self.delta.get(outpoint) {
            Some(c) => *c,
            None => self
                .find(outpoint)
                .ok()
                .map(|i| self.base[i].coin(&self.keys)),
        }
    }
}

impl FromIterator<(OutPoint, Coin)> for UtxoSet {
    /// Builds the set in one sort (start-up loads every coin this way); a later duplicate
    /// outpoint replaces an earlier one, as with repeated [`UtxoSet::insert`].
    fn from_iter<I: IntoIterator<Item = (OutPoint, Coin)>>(iter: I) -> Self {
        let mut set = UtxoSet::new();
        let iter = iter.into_iter();
        set.base.reserve_exact(iter.size_hint().0);
        for (op, coin) in iter {
            let p = set.keys.pack(&op, &coin);
            set.base.push(p);
        }
        // Reversed then stably sorted: of equal outpoints the last inserted comes first,
        // and dedup keeps the first of a run.
        set.base.reverse();
        set.base
            .sort_by(|a, b| a.txid.cmp(&b.txid).then(a.vout.cmp(&b.vout)));
        let keys = &mut set.keys;
        set.base.dedup_by(|later, kept| {
            let dup = later.txid == kept.txid && later.vout == kept.vout;
            if dup {
                keys.release(later.key);
            }
            dup
        });
        set.base.shrink_to_fit();
        set.len = set.base.len();
        set
    }
}

impl UtxoSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn find(&self, outpoint: &OutPoint) -> Result<usize, usize> {
        self.base.binary_search_by(|p| p.cmp_outpoint(outpoint))
    }

    /// Every coin in outpoint order (txid bytes, then vout): the order of a
    /// `BTreeMap<OutPoint, Coin>`, independent of the history of changes.
    pub fn iter(&self) -> impl Iterator<Item = (OutPoint, Coin)> + '_ {
        Merge {
            base: self.base.iter().peekable(),
            delta: self.delta.iter().peekable(),
            keys: &self.keys,
        }
    }

    pub fn insert(&mut self, outpoint: OutPoint, coin: Coin) {
        if self.coin(&outpoint).is_none() {
            self.len += 1;
        }
        self.delta.insert(outpoint, Some(coin));
        self.maybe_fold();
    }

    pub fn remove(&mut self, outpoint: &OutPoint) -> Option<Coin> {
        let coin = self.coin(outpoint)?;
        self.len -= 1;
        if self.find(outpoint).is_ok() {
            self.delta.insert(*outpoint, None);
        } else {
            self.delta.remove(outpoint);
        }
        self.maybe_fold();
        Some(coin)
    }

    /// Sum of every unspent amount (u128: a corrupt set could pass the cap).
    pub fn total_value(&self) -> u128 {
        self.iter()
            .map(|(_, c)| u128::from(c.output.amount.units()))
            .sum()
    }

    /// Coins locked to `key`, in outpoint order.
    pub fn coins_of<'a>(
        &'a self,
        key: &'a PublicKey,
    ) -> impl Iterator<Item = (OutPoint, Coin)> + 'a {
        self.iter().filter(move |(_, c)| &c.output.key == key)
    }

    /// SHA-256d over the canonical encoding of every entry in order: two sets are equal
    /// exactly when their digests are.
    pub fn digest(&self) -> Hash256 {
        use crate::encode::Encode;
        let mut buf = Vec::with_capacity(self.len * 90);
        for (op, coin) in self.iter() {
            op.encode_to(&mut buf);
            coin.encode_to(&mut buf);
        }
        sha256d(&buf)
    }

    /// Applies an overlay's changes.
    pub fn apply(&mut self, changes: &BTreeMap<OutPoint, Option<Coin>>) {
        for (op, c) in changes {
            match c {
                Some(c) => self.insert(*op, *c),
                None => {
                    self.remove(op);
                }
            }
        }
    }

    fn maybe_fold(&mut self) {
        if self.delta.len() > DELTA_MIN.max(self.len / DELTA_DIVISOR) {
            self.fold();
        }
    }

    /// Folds the delta into the base in place (no second copy of the base): deletions and
    /// replacements in one forward pass, then new entries merged from the back.
    fn fold(&mut self) {
        let delta = core::mem::take(&mut self.delta);
        // Forward pass: drop deleted entries, replace changed ones, count the new ones.
        let mut fresh = 0usize;
        let mut changes = delta.iter().peekable();
        let mut w = 0usize;
        for r in 0..self.base.len() {
            let entry = self.base[r];
            let mut keep = Some(entry);
            while let Some((op, c)) = changes.peek() {
                match entry.cmp_outpoint(op) {
                    Ordering::Greater => {
                        if c.is_some() {
                            fresh += 1;
                        }
                        changes.next();
                    }
                    Ordering::Equal => {
                        self.keys.release(entry.key);
                        keep = c.map(|c| self.keys.pack(op, &c));
                        changes.next();
                        break;
                    }
                    Ordering::Less => break,
                }
            }
            if let Some(e) = keep {
                self.base[w] = e;
                w += 1;
            }
        }
        fresh += changes.filter(|(_, c)| c.is_some()).count();
        self.base.truncate(w);
        // Backward pass: merge the new entries in from the end.
        if fresh > 0 {
            let old = self.base.len();
            self.base.reserve_exact(fresh);
            let filler = self.base.first().copied().unwrap_or(Packed {
                txid: [0; 32],
                vout: 0,
                key: 0,
                amount: 0,
                height: 0,
            });
            self.base.resize(old + fresh, filler);
            let mut i = old; // entries [0, i) of the old base are still to place
            let mut k = old + fresh; // slots [k, end) are final
            for (op, c) in delta.iter().rev() {
                let Some(c) = c else { continue };
                while i > 0 && self.base[i - 1].cmp_outpoint(op) == Ordering::Greater {
                    self.base[k - 1] = self.base[i - 1];
                    i -= 1;
                    k -= 1;
                }
                if i > 0 && self.base[i - 1].cmp_outpoint(op) == Ordering::Equal {
                    continue; // a replacement, done in the forward pass
                }
                self.base[k - 1] = self.keys.pack(op, c);
                k -= 1;
            }
            debug_assert_eq!(i, k, "every new entry was placed");
        }
        if self.base.capacity() > self.base.len() + self.base.len() / 8 + 64 {
            self.base.shrink_to_fit();
        }
        self.keys.shrink();
        debug_assert_eq!(self.base.len(), self.len);
    }
}

/// Merges the sorted base with the sorted delta.
struct Merge<
    'a,
    B: Iterator<Item = &'a Packed>,
    D: Iterator<Item = (&'a OutPoint, &'a Option<Coin>)>,
> {
    base: core::iter::Peekable<B>,
    delta: core::iter::Peekable<D>,
    keys: &'a Keys,
}

impl<'a, B, D> Iterator for Merge<'a, B, D>
where
    B: Iterator<Item = &'a Packed>,
    D: Iterator<Item = (&'a OutPoint, &'a Option<Coin>)>,
{
    type Item = (OutPoint, Coin);

    fn next(&mut self) -> Option<(OutPoint, Coin)> {
        loop {
            let order = match (self.base.peek(), self.delta.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(b), Some((op, _))) => b.cmp_outpoint(op),
            };
            match order {
                Ordering::Less => {
                    let b = self.base.next().expect("peeked");
                    return Some((b.outpoint(), b.coin(self.keys)));
                }
                Ordering::Equal => {
                    self.base.next();
                    let (op, c) = self.delta.next().expect("peeked");
                    if let Some(c) = c {
                        return Some((*op, *c));
                    }
                }
                Ordering::Greater => {
                    let (op, c) = self.delta.next().expect("peeked");
                    if let Some(c) = c {
                        return Some((*op, *c));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The compact set against a plain `BTreeMap` under random changes. In unit tests the
    //! delta folds after 3 entries, so folds happen all the time.
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, Coin),
        Remove(u8),
        /// Applies a batch of overlay changes.
        Apply(Vec<(u8, Option<Coin>)>),
        /// Reverts the last n changes from the undo log.
        Undo(u8),
    }

    /// Few distinct outpoints (so changes hit the same coins) with txids spread over the
    /// whole order, and few keys (so keys are shared and freed).
    fn outpoint(i: u8) -> OutPoint {
        let mut txid = [0u8; 32];
        txid[0] = i.wrapping_mul(37);
        txid[31] = i;
        OutPoint {
            txid: Txid::from_bytes(txid),
            vout: u32::from(i % 3),
        }
    }

    fn arb_coin() -> impl Strategy<Value = Coin> {
        (
            0..=crate::units::MAX_MONEY,
            0u8..4,
            prop_oneof![0u64..10, Just(u64::MAX)],
            any::<bool>(),
        )
            .prop_map(|(a, k, h, coinbase)| Coin {
                output: TxOut {
                    amount: Amount::from_units(a).expect("within the cap"),
                    key: PublicKey([k; 32]),
                },
                height: Height(h),
                coinbase,
            })
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..40, arb_coin()).prop_map(|(i, c)| Op::Insert(i, c)),
            3 => (0u8..40).prop_map(Op::Remove),
            1 => proptest::collection::vec((0u8..40, proptest::option::of(arb_coin())), 0..8)
                .prop_map(Op::Apply),
            1 => (0u8..10).prop_map(Op::Undo),
        ]
    }

    fn reference_digest(map: &BTreeMap<OutPoint, Coin>) -> Hash256 {
        use crate::encode::Encode;
        let mut buf = Vec::new();
        for (op, coin) in map {
            op.encode_to(&mut buf);
            coin.encode_to(&mut buf);
        }
        sha256d(&buf)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn behaves_like_a_btreemap(ops in proptest::collection::vec(arb_op(), 0..200)) {
            let mut set = UtxoSet::new();
            let mut reference = BTreeMap::new();
            let mut log: Vec<(OutPoint, Option<Coin>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(i, c) => {
                        let o = outpoint(i);
                        log.push((o, reference.insert(o, c)));
                        set.insert(o, c);
                    }
                    Op::Remove(i) => {
                        let o = outpoint(i);
                        let old = reference.remove(&o);
                        if old.is_some() {
                            log.push((o, old));
                        }
                        prop_assert_eq!(set.remove(&o), old);
                    }
                    Op::Apply(changes) => {
                        let changes: BTreeMap<OutPoint, Option<Coin>> =
                            changes.into_iter().map(|(i, c)| (outpoint(i), c)).collect();
                        for (o, c) in &changes {
                            let old = match c {
                                Some(c) => reference.insert(*o, *c),
                                None => reference.remove(o),
                            };
                            log.push((*o, old));
                        }
                        set.apply(&changes);
                    }
                    Op::Undo(n) => {
                        for _ in 0..n {
                            let Some((o, old)) = log.pop() else { break };
                            match old {
                                Some(c) => {
                                    reference.insert(o, c);
                                    set.insert(o, c);
                                }
                                None => {
                                    reference.remove(&o);
                                    set.remove(&o);
                                }
                            }
                        }
                    }
                }
                prop_assert_eq!(set.len(), reference.len());
                for i in 0..40 {
                    prop_assert_eq!(set.coin(&outpoint(i)), reference.get(&outpoint(i)).copied());
                }
            }
            let listed: Vec<(OutPoint, Coin)> = set.iter().collect();
            let expected: Vec<(OutPoint, Coin)> = reference.iter().map(|(o, c)| (*o, *c)).collect();
            prop_assert_eq!(&listed, &expected);
            prop_assert_eq!(set.digest(), reference_digest(&reference));
            let total: u128 = reference.values().map(|c| u128::from(c.output.amount.units())).sum();
            prop_assert_eq!(set.total_value(), total);
            let key = PublicKey([1; 32]);
            let mine: Vec<OutPoint> = set.coins_of(&key).map(|(o, _)| o).collect();
            let expected_mine: Vec<OutPoint> =
                reference.iter().filter(|(_, c)| c.output.key == key).map(|(o, _)| *o).collect();
            prop_assert_eq!(mine, expected_mine);
            // The same coins built in one go compare equal, whatever the layout.
            let rebuilt: UtxoSet = listed.iter().copied().collect();
            prop_assert_eq!(&rebuilt, &set);
            set.fold();
            prop_assert_eq!(&rebuilt, &set);
            // Every key still referenced is interned exactly once with its true count.
            let mut refs: BTreeMap<[u8; 32], u32> = BTreeMap::new();
            for p in &set.base {
                *refs.entry(set.keys.get(p.key)).or_default() += 1;
            }
            prop_assert_eq!(set.keys.index.len(), refs.len());
            for (k, n) in refs {
                let i = set.keys.index[&k];
                prop_assert_eq!(set.keys.refs[i as usize], n);
            }
        }

        #[test]
        fn collect_keeps_the_last_of_duplicates(
            entries in proptest::collection::vec((0u8..20, arb_coin()), 0..60)
        ) {
            let collected: UtxoSet = entries.iter().map(|(i, c)| (outpoint(*i), *c)).collect();
            let mut inserted = UtxoSet::new();
            let mut reference = BTreeMap::new();
            for (i, c) in &entries {
                inserted.insert(outpoint(*i), *c);
                reference.insert(outpoint(*i), *c);
            }
            prop_assert_eq!(&collected, &inserted);
            prop_assert_eq!(collected.len(), reference.len());
            prop_assert_eq!(collected.keys.index.len(),
                reference.values().map(|c| c.output.key).collect::<alloc::collections::BTreeSet<_>>().len());
        }
    }
}
