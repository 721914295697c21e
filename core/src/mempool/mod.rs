//! Unconfirmed transactions waiting for a block.
//!
//! Ordered by fee rate and bounded by bytes: when full, a new transaction evicts the
//! lowest-rate ones (with their descendants) only if it pays a higher rate. The first
//! transaction seen to spend an outpoint wins; later conflicts are refused. Transactions may
//! spend outputs of other pool transactions, within ancestor and descendant limits (count and
//! bytes, [`policy`]) that keep every package small, so template building
//! ([`Mempool::select`]) is O(n log n). Outputs below the dust limit are refused. On a reorg
//! the transactions of disconnected blocks come back and everything is re-checked against the
//! new tip (limits included): what now conflicts with the chain, became immature or would
//! break a limit leaves, and with it its descendants.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt;

use crate::chain::{BlockOutcome, Chain};
use crate::encode::Encode;
use crate::primitives::{Block, OutPoint, Transaction, Txid};
use crate::units::{Amount, Height};
use crate::utxo::{Coin, UtxoView};
use crate::validation::{Conduct, TxError, check_tx, check_tx_inputs, verify_tx_signatures};

pub mod policy;
mod select;

pub use policy::{
    MAX_ANCESTOR_BYTES, MAX_ANCESTORS, MAX_DESCENDANT_BYTES, MAX_DESCENDANTS, Package, dust_limit,
};

/// Default pool size: 5 MB of encoded transactions.
pub const DEFAULT_MAX_BYTES: usize = 5_000_000;
/// Default minimum relay fee rate, in base units per 1000 bytes.
pub const DEFAULT_MIN_FEE_RATE: u64 = 1_000;

/// Why the pool refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MempoolError {
    Invalid(TxError),
    AlreadyKnown,
    /// An input is already spent by a pool transaction seen first.
    Conflict {
        outpoint: OutPoint,
        with: Txid,
    },
    /// Pays less than the minimum relay fee rate (base units per 1000 bytes).
    FeeTooLow {
        rate: u64,
        min: u64,
    },
    /// The pool is full of transactions paying at least as much.
    Full {
        rate: u64,
    },
    /// Output `vout` holds less than it would cost to spend (policy::dust_limit).
    Dust {
        vout: u32,
        amount: Amount,
        min: Amount,
    },
    /// More than `max` transactions in its unconfirmed ancestry (itself included).
    TooManyAncestors {
        max: usize,
    },
    /// Its unconfirmed ancestry (itself included) is `bytes` long, over `max`.
    AncestorsTooLarge {
        bytes: usize,
        max: usize,
    },
    /// Pool transaction `ancestor` would have more than `max` descendants (itself included).
    TooManyDescendants {
        ancestor: Txid,
        max: usize,
    },
    /// Pool transaction `ancestor` and its descendants would be `bytes` long, over `max`.
    DescendantsTooLarge {
        ancestor: Txid,
        bytes: usize,
        max: usize,
    },
}

impl fmt::Display for MempoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MempoolError::Invalid(e) => write!(f, "invalid transaction: {e}"),
            MempoolError::AlreadyKnown => write!(f, "transaction already in the pool"),
            MempoolError::Conflict { outpoint, with } => write!(
                f,
                "input {}:{} is already spent by pool transaction {with}",
                outpoint.txid, outpoint.vout
            ),
            MempoolError::FeeTooLow { rate, min } => {
                write!(f, "fee rate {rate}/kB is below the minimum {min}/kB")
            }
            MempoolError::Full { rate } => {
                write!(f, "pool is full of transactions paying at least {rate}/kB")
            }
            MempoolError::Dust { vout, amount, min } => {
                write!(
                    f,
                    "output {vout} of {amount} is dust (the minimum is {min})"
                )
            }
            MempoolError::TooManyAncestors { max } => write!(
                f,
                "more than {max} unconfirmed transactions in its ancestry (itself included)"
            ),
            MempoolError::AncestorsTooLarge { bytes, max } => write!(
                f,
                "unconfirmed ancestry of {bytes} bytes is over the limit of {max}"
            ),
            MempoolError::TooManyDescendants { ancestor, max } => write!(
                f,
                "pool transaction {ancestor} would have more than {max} descendants"
            ),
            MempoolError::DescendantsTooLarge {
                ancestor,
                bytes,
                max,
            } => write!(
                f,
                "pool transaction {ancestor} and its descendants would be {bytes} bytes, \
                 over the limit of {max}"
            ),
        }
    }
}

impl core::error::Error for MempoolError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            MempoolError::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

impl MempoolError {
    pub fn conduct(&self) -> Conduct {
        match self {
            MempoolError::Invalid(e) => e.conduct(),
            _ => Conduct::Ignore,
        }
    }
}

/// A pool transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolEntry {
    pub tx: Transaction,
    pub txid: Txid,
    pub fee: Amount,
    pub size: usize,
    /// Arrival order.
    pub seq: u64,
    /// Pool transactions whose outputs this one spends.
    pub parents: BTreeSet<Txid>,
    /// This transaction and all its pool ancestors.
    pub ancestors: Package,
    /// This transaction and all its pool descendants.
    pub descendants: Package,
}

impl MempoolEntry {
    /// Fee in base units per 1000 bytes.
    pub fn fee_rate(&self) -> u64 {
        fee_rate(self.fee, self.size)
    }
}

pub fn fee_rate(fee: Amount, size: usize) -> u64 {
    let size = size.max(1) as u128;
    (u128::from(fee.units()) * 1000 / size) as u64
}

type RateKey = (u64, Reverse<u64>, Txid);

/// The pool.
#[derive(Clone, Debug)]
pub struct Mempool {
    max_bytes: usize,
    min_fee_rate: u64,
    entries: BTreeMap<Txid, MempoolEntry>,
    /// Ascending fee rate; at equal rate the newest first (evicted first).
    by_rate: BTreeSet<RateKey>,
    spends: BTreeMap<OutPoint, Txid>,
    children: BTreeMap<Txid, BTreeSet<Txid>>,
    bytes: usize,
    next_seq: u64,
}

impl Default for Mempool {
    fn default() -> Self {
        Mempool::new(DEFAULT_MAX_BYTES, DEFAULT_MIN_FEE_RATE)
    }
}

/// The chain's UTXO set plus the outputs of pool transactions.
struct PoolView<'a> {
    chain: &'a Chain,
    pool: &'a Mempool,
    height: Height,
}

impl UtxoView for PoolView<'_> {
    fn coin(&self, op: &OutPoint) -> Option<Coin> {
        if let Some(e) = self.pool.entries.get(&op.txid) {
            return e.tx.outputs.get(op.vout as usize).map(|o| Coin {
                output: *o,
                height: self.height,
                coinbase: false,
            });
        }
        self.chain.utxo().coin(op)
    }
}

impl Mempool {
    /// A pool of at most `max_bytes` encoded transactions refusing fee rates below
    /// `min_fee_rate` and outputs below `dust_limit(min_fee_rate)`.
    pub fn new(max_bytes: usize, min_fee_rate: u64) -> Self {
        Mempool {
            max_bytes,
            min_fee_rate,
            entries: BTreeMap::new(),
            by_rate: BTreeSet::new(),
            spends: BTreeMap::new(),
            children: BTreeMap::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn min_fee_rate(&self) -> u64 {
        self.min_fee_rate
    }

    /// The smallest output value this pool relays.
    pub fn dust_limit(&self) -> Amount {
        dust_limit(self.min_fee_rate)
    }

    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    pub fn get(&self, txid: &Txid) -> Option<&MempoolEntry> {
        self.entries.get(txid)
    }

    /// Entries in arrival order.
    pub fn entries(&self) -> Vec<&MempoolEntry> {
        let mut v: Vec<&MempoolEntry> = self.entries.values().collect();
        v.sort_by_key(|e| e.seq);
        v
    }

    /// Every pool transaction with its txid, in txid order (no sorting, no hashing: for
    /// scans such as rebuilding a compact block).
    pub fn txs(&self) -> impl Iterator<Item = (Txid, &Transaction)> {
        self.entries.iter().map(|(txid, e)| (*txid, &e.tx))
    }

    /// The pool transaction spending `op`, if any.
    pub fn spender(&self, op: &OutPoint) -> Option<Txid> {
        self.spends.get(op).copied()
    }

    /// A view of unspent outputs including pool outputs, as the next block would see them.
    pub fn view<'a>(&'a self, chain: &'a Chain) -> impl UtxoView + 'a {
        PoolView {
            chain,
            pool: self,
            height: chain.height().next(),
        }
    }

    /// The first output of `tx` below the dust limit, as the error refusing it.
    pub fn check_dust(&self, tx: &Transaction) -> Result<(), MempoolError> {
        let min = self.dust_limit();
        match tx.outputs.iter().position(|o| o.amount < min) {
            None => Ok(()),
            Some(vout) => Err(MempoolError::Dust {
                vout: vout as u32,
                amount: tx.outputs[vout].amount,
                min,
            }),
        }
    }

    /// Pool transactions whose outputs `tx` spends.
    pub fn parents_of(&self, tx: &Transaction) -> BTreeSet<Txid> {
        tx.spends()
            .filter(|op| self.entries.contains_key(&op.txid))
            .map(|op| op.txid)
            .collect()
    }

    /// Checks the ancestor and descendant limits for a transaction of `size` bytes spending
    /// outputs of the pool transactions `parents`; returns its pool ancestors (itself
    /// excluded). The walk stops as soon as a limit is passed, so it costs O(limit) whatever
    /// the pool holds.
    pub fn check_limits(
        &self,
        parents: &BTreeSet<Txid>,
        size: usize,
    ) -> Result<BTreeSet<Txid>, MempoolError> {
        let mut ancestors = BTreeSet::new();
        let mut bytes = size;
        let mut stack: Vec<Txid> = parents.iter().copied().collect();
        while let Some(t) = stack.pop() {
            if !ancestors.insert(t) {
                continue;
            }
            if ancestors.len() + 1 > MAX_ANCESTORS {
                return Err(MempoolError::TooManyAncestors { max: MAX_ANCESTORS });
            }
            let e = self
                .entries
                .get(&t)
                .expect("parents and their parents are pool transactions");
            bytes += e.size;
            if e.descendants.count + 1 > MAX_DESCENDANTS {
                return Err(MempoolError::TooManyDescendants {
                    ancestor: t,
                    max: MAX_DESCENDANTS,
                });
            }
            if e.descendants.bytes + size > MAX_DESCENDANT_BYTES {
                return Err(MempoolError::DescendantsTooLarge {
                    ancestor: t,
                    bytes: e.descendants.bytes + size,
                    max: MAX_DESCENDANT_BYTES,
                });
            }
            stack.extend(e.parents.iter().copied());
        }
        if bytes > MAX_ANCESTOR_BYTES {
            return Err(MempoolError::AncestorsTooLarge {
                bytes,
                max: MAX_ANCESTOR_BYTES,
            });
        }
        Ok(ancestors)
    }

    /// Validates `tx` against the chain tip plus the pool and adds it.
    pub fn add(&mut self, tx: Transaction, chain: &Chain) -> Result<Txid, MempoolError> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyKnown);
        }
        let params = chain.params();
        check_tx(&tx, params).map_err(MempoolError::Invalid)?;
        self.check_dust(&tx)?;
        for op in tx.spends() {
            if let Some(&with) = self.spends.get(op) {
                return Err(MempoolError::Conflict {
                    outpoint: *op,
                    with,
                });
            }
        }
        let view = PoolView {
            chain,
            pool: self,
            height: chain.height().next(),
        };
        let inputs =
            check_tx_inputs(&tx, &view, view.height, params).map_err(MempoolError::Invalid)?;
        let size = tx.encoded_len();
        let rate = fee_rate(inputs.fee, size);
        if rate < self.min_fee_rate {
            return Err(MempoolError::FeeTooLow {
                rate,
                min: self.min_fee_rate,
            });
        }
        let parents = self.parents_of(&tx);
        let ancestors = self.check_limits(&parents, size)?;
        verify_tx_signatures(&tx, &inputs.spent, &chain.genesis_hash(), params)
            .map_err(MempoolError::Invalid)?;
        self.make_room(size, rate, &ancestors)?;
        let own = Package::one(inputs.fee, size);
        let mut with_ancestors = own;
        for a in &ancestors {
            let e = self
                .entries
                .get_mut(a)
                .expect("make_room never evicts an ancestor of the newcomer");
            with_ancestors.add(Package::one(e.fee, e.size));
            e.descendants.add(own);
        }
        for op in tx.spends() {
            self.spends.insert(*op, txid);
        }
        for p in &parents {
            self.children.entry(*p).or_default().insert(txid);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_rate.insert((rate, Reverse(seq), txid));
        self.bytes += size;
        self.entries.insert(
            txid,
            MempoolEntry {
                tx,
                txid,
                fee: inputs.fee,
                size,
                seq,
                parents,
                ancestors: with_ancestors,
                descendants: own,
            },
        );
        Ok(txid)
    }

    /// Pool ancestors of a transaction with pool parents `parents` (itself excluded).
    fn ancestors(&self, parents: &BTreeSet<Txid>) -> BTreeSet<Txid> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<Txid> = parents.iter().copied().collect();
        while let Some(t) = stack.pop() {
            if out.insert(t) {
                if let Some(e) = self.entries.get(&t) {
                    stack.extend(e.parents.iter().copied());
                }
            }
        }
        out
    }

    /// Evicts lower-rate transactions (never one of `keep`, the newcomer's ancestors) until
    /// `size` more bytes fit; refuses if that would take evicting anything paying `rate` or
    /// more.
    fn make_room(
        &mut self,
        size: usize,
        rate: u64,
        keep: &BTreeSet<Txid>,
    ) -> Result<(), MempoolError> {
        if self.bytes + size <= self.max_bytes {
            return Ok(());
        }
        if size > self.max_bytes {
            return Err(MempoolError::Full { rate });
        }
        // Plan first, so a refusal leaves the pool untouched.
        let mut victims = BTreeSet::new();
        let mut freed = 0usize;
        for &(r, _, txid) in &self.by_rate {
            if self.bytes - freed + size <= self.max_bytes {
                break;
            }
            if r >= rate {
                return Err(MempoolError::Full { rate: r });
            }
            if keep.contains(&txid) || victims.contains(&txid) {
                continue;
            }
            for d in self.with_descendants(txid) {
                if keep.contains(&d) {
                    continue;
                }
                if victims.insert(d) {
                    freed += self.entries[&d].size;
                }
            }
        }
        if self.bytes - freed + size > self.max_bytes {
            return Err(MempoolError::Full { rate });
        }
        for t in victims {
            self.remove_one(&t);
        }
        Ok(())
    }

    /// `txid` and its pool descendants, `txid` first.
    fn with_descendants(&self, txid: Txid) -> Vec<Txid> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut stack = alloc::vec![txid];
        while let Some(t) = stack.pop() {
            if seen.insert(t) {
                out.push(t);
                if let Some(kids) = self.children.get(&t) {
                    stack.extend(kids.iter().copied());
                }
            }
        }
        out
    }

    /// Removes one entry, leaving its children (whose `parents` lose it). Its descendants'
    /// ancestor packages and its ancestors' descendant packages shrink by it.
    fn remove_one(&mut self, txid: &Txid) -> Option<MempoolEntry> {
        let e = self.entries.get(txid)?;
        let own = Package::one(e.fee, e.size);
        let ancestors = self.ancestors(&e.parents);
        let descendants = self.with_descendants(*txid);
        for a in &ancestors {
            if let Some(a) = self.entries.get_mut(a) {
                a.descendants.sub(own);
            }
        }
        for d in descendants.iter().skip(1) {
            if let Some(d) = self.entries.get_mut(d) {
                d.ancestors.sub(own);
            }
        }
        let e = self.entries.remove(txid)?;
        self.by_rate.remove(&(e.fee_rate(), Reverse(e.seq), *txid));
        for op in e.tx.spends() {
            if self.spends.get(op) == Some(txid) {
                self.spends.remove(op);
            }
        }
        for p in &e.parents {
            if let Some(kids) = self.children.get_mut(p) {
                kids.remove(txid);
                if kids.is_empty() {
                    self.children.remove(p);
                }
            }
        }
        if let Some(kids) = self.children.remove(txid) {
            for k in kids {
                if let Some(child) = self.entries.get_mut(&k) {
                    child.parents.remove(txid);
                }
            }
        }
        self.bytes -= e.size;
        Some(e)
    }

    /// Removes a transaction and everything that spends its outputs.
    pub fn remove_with_descendants(&mut self, txid: &Txid) -> Vec<MempoolEntry> {
        // Leaves first: each removal then has no descendants left to update.
        let mut all = self.with_descendants(*txid);
        all.sort_by_key(|t| Reverse(self.entries.get(t).map_or(0, |e| e.ancestors.count)));
        all.into_iter()
            .filter_map(|t| self.remove_one(&t))
            .collect()
    }

    /// A block joined the chain: its transactions leave, and so does whatever conflicts.
    pub fn remove_for_block(&mut self, block: &Block) {
        for tx in block.txs.iter().skip(1) {
            self.remove_one(&tx.txid());
            for op in tx.spends() {
                if let Some(other) = self.spends.get(op).copied() {
                    self.remove_with_descendants(&other);
                }
            }
        }
    }

    /// Brings the pool up to date with a chain change. A plain extension removes mined and
    /// conflicting transactions; a reorg re-adds the disconnected blocks' transactions
    /// ([`BlockOutcome::returned`]) and re-checks everything against the new tip, and so
    /// does an extension by a block whose body is no longer in memory (its mined
    /// transactions then fail the check: their inputs are spent).
    pub fn update(&mut self, chain: &Chain, outcome: &BlockOutcome) {
        let bodies_known = outcome.connected.iter().all(|h| chain.block(h).is_some());
        if outcome.disconnected.is_empty() && bodies_known {
            for hash in &outcome.connected {
                if let Some(block) = chain.block(hash) {
                    self.remove_for_block(block);
                }
            }
            return;
        }
        let old: Vec<Transaction> = self.entries().into_iter().map(|e| e.tx.clone()).collect();
        *self = Mempool {
            next_seq: self.next_seq,
            ..Mempool::new(self.max_bytes, self.min_fee_rate)
        };
        // Oldest disconnected block first, so parents come before children. A transaction
        // refused now (a limit, a conflict) takes its descendants with it: they miss an input.
        // Those returned by an earlier part of the same switch are in `old`, after these.
        for tx in &outcome.returned {
            let _ = self.add(tx.clone(), chain);
        }
        for tx in old {
            let _ = self.add(tx, chain);
        }
    }
}

#[cfg(test)]
mod tests;
