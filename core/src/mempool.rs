//! Unconfirmed transactions waiting for a block.
//!
//! Ordered by fee rate and bounded by bytes: when full, a new transaction evicts the
//! lowest-rate ones (with their descendants) only if it pays a higher rate. The first
//! transaction seen to spend an outpoint wins; later conflicts are refused. Transactions may
//! spend outputs of other pool transactions. On a reorg the transactions of disconnected
//! blocks come back and everything is re-checked against the new tip: what now conflicts
//! with the chain or became immature leaves.

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

    /// Validates `tx` against the chain tip plus the pool and adds it.
    pub fn add(&mut self, tx: Transaction, chain: &Chain) -> Result<Txid, MempoolError> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyKnown);
        }
        let params = chain.params();
        check_tx(&tx, params).map_err(MempoolError::Invalid)?;
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
        verify_tx_signatures(&tx, &inputs.spent, &chain.genesis_hash(), params)
            .map_err(MempoolError::Invalid)?;
        let parents: BTreeSet<Txid> = tx
            .spends()
            .filter(|op| self.entries.contains_key(&op.txid))
            .map(|op| op.txid)
            .collect();
        self.make_room(size, rate, &parents)?;
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
            },
        );
        Ok(txid)
    }

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

    /// Evicts lower-rate transactions (never an ancestor of the newcomer) until `size`
    /// more bytes fit; refuses if that would take evicting anything paying `rate` or more.
    fn make_room(
        &mut self,
        size: usize,
        rate: u64,
        parents: &BTreeSet<Txid>,
    ) -> Result<(), MempoolError> {
        if self.bytes + size <= self.max_bytes {
            return Ok(());
        }
        if size > self.max_bytes {
            return Err(MempoolError::Full { rate });
        }
        let keep = self.ancestors(parents);
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

    /// Removes one entry, leaving its children (whose `parents` lose it).
    fn remove_one(&mut self, txid: &Txid) -> Option<MempoolEntry> {
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
        self.with_descendants(*txid)
            .into_iter()
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
    /// conflicting transactions; a reorg re-adds the disconnected blocks' transactions and
    /// re-checks everything against the new tip.
    pub fn update(&mut self, chain: &Chain, outcome: &BlockOutcome) {
        if outcome.disconnected.is_empty() {
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
        // Oldest disconnected block first, so parents come before children.
        for block in outcome.disconnected.iter().rev() {
            for tx in block.txs.iter().skip(1) {
                let _ = self.add(tx.clone(), chain);
            }
        }
        for tx in old {
            let _ = self.add(tx, chain);
        }
    }

    /// Transactions for a block template: highest fee rate first, a transaction only after
    /// its pool parents, within `max_bytes` and `max_txs`.
    pub fn select(&self, max_bytes: usize, max_txs: usize) -> Vec<&MempoolEntry> {
        let mut chosen: Vec<&MempoolEntry> = Vec::new();
        let mut included = BTreeSet::new();
        let mut bytes = 0usize;
        loop {
            let mut progress = false;
            for &(_, _, txid) in self.by_rate.iter().rev() {
                if included.contains(&txid) || chosen.len() >= max_txs {
                    continue;
                }
                let e = &self.entries[&txid];
                if bytes + e.size > max_bytes || !e.parents.iter().all(|p| included.contains(p)) {
                    continue;
                }
                included.insert(txid);
                bytes += e.size;
                chosen.push(e);
                progress = true;
            }
            if !progress {
                return chosen;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::testkit::{block_with, extend, extend_empty, wallet};
    use crate::wallet::Wallet;

    struct Setup {
        chain: Chain,
        alice: Wallet,
        bob: Wallet,
    }

    /// Alice has 6 mature coinbases.
    fn setup() -> Setup {
        let params = Params::test();
        let alice = wallet(1, &params);
        let bob = wallet(2, &params);
        let mut chain = Chain::new(params);
        extend_empty(&mut chain, 8, alice.public_key(), b"a");
        Setup { chain, alice, bob }
    }

    fn amount(u: u64) -> Amount {
        Amount::from_units(u).unwrap()
    }

    /// Alice pays Bob from one specific coinbase at `rate`, built by hand.
    fn pay_from(s: &Setup, height: u64, units: u64, rate_fee: u64) -> Transaction {
        let hash = s.chain.hash_at(Height(height)).unwrap();
        let cb = &s.chain.block(&hash).unwrap().txs[0];
        let have = cb.outputs[0].amount.units();
        let mut tx = Transaction {
            inputs: alloc::vec![crate::primitives::TxIn {
                prev: OutPoint {
                    txid: cb.txid(),
                    vout: 0
                },
                sig: crate::sig::Signature([0; 64]),
            }],
            outputs: alloc::vec![
                crate::primitives::TxOut {
                    amount: amount(units),
                    key: s.bob.public_key()
                },
                crate::primitives::TxOut {
                    amount: amount(have - units - rate_fee),
                    key: s.alice.public_key()
                },
            ],
            payload: crate::primitives::Payload::None,
        };
        s.alice
            .sign_tx(&mut tx, &[cb.outputs[0]], &s.chain.genesis_hash());
        tx
    }

    #[test]
    fn orders_by_fee_rate_and_refuses_low_fees() {
        let s = setup();
        let mut pool = Mempool::new(DEFAULT_MAX_BYTES, 1_000);
        let low = pay_from(&s, 1, 1_000, 500);
        let high = pay_from(&s, 2, 1_000, 5_000);
        let mid = pay_from(&s, 3, 1_000, 2_000);
        for tx in [low.clone(), high.clone(), mid.clone()] {
            pool.add(tx, &s.chain).unwrap();
        }
        let order: Vec<Txid> = pool
            .select(usize::MAX, usize::MAX)
            .iter()
            .map(|e| e.txid)
            .collect();
        assert_eq!(order, [high.txid(), mid.txid(), low.txid()]);
        let cheap = pay_from(&s, 4, 1_000, 10);
        assert!(matches!(
            pool.add(cheap, &s.chain),
            Err(MempoolError::FeeTooLow { min: 1_000, .. })
        ));
        assert_eq!(pool.add(high, &s.chain), Err(MempoolError::AlreadyKnown));
    }

    #[test]
    fn first_seen_wins_conflicts() {
        let s = setup();
        let mut pool = Mempool::default();
        let a = pay_from(&s, 1, 1_000, 1_000);
        let b = pay_from(&s, 1, 2_000, 50_000); // same coin, much higher fee
        pool.add(a.clone(), &s.chain).unwrap();
        assert_eq!(
            pool.add(b, &s.chain),
            Err(MempoolError::Conflict {
                outpoint: a.inputs[0].prev,
                with: a.txid()
            })
        );
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn bounded_by_bytes_evicting_lowest_rate_with_descendants() {
        let s = setup();
        let size = pay_from(&s, 1, 1_000, 1_000).encoded_len();
        let mut pool = Mempool::new(size * 3, 0);
        let low = pay_from(&s, 1, 1_000, 1_000);
        pool.add(low.clone(), &s.chain).unwrap();
        // Bob spends the low-fee payment's output before it confirms: a descendant.
        let child = s
            .bob
            .pay(
                &s.chain,
                &pool,
                s.alice.public_key(),
                amount(100),
                2_000,
                None,
            )
            .unwrap();
        pool.add(child.clone(), &s.chain).unwrap();
        pool.add(pay_from(&s, 2, 1_000, 3_000), &s.chain).unwrap();
        assert!(pool.bytes() <= size * 3);
        // Full: a cheaper transaction is refused and nothing changes.
        let before = pool.len();
        assert!(matches!(
            pool.add(pay_from(&s, 3, 1_000, 100), &s.chain),
            Err(MempoolError::Full { .. })
        ));
        assert_eq!(pool.len(), before);
        // A better one evicts the lowest rate and, with it, the child that depends on it.
        let rich = pay_from(&s, 4, 1_000, 50_000);
        pool.add(rich.clone(), &s.chain).unwrap();
        assert!(!pool.contains(&low.txid()));
        assert!(!pool.contains(&child.txid()));
        assert!(pool.contains(&rich.txid()));
        assert!(pool.bytes() <= size * 3);
        assert!(pool.spender(&low.inputs[0].prev).is_none());
    }

    #[test]
    fn parents_are_selected_before_children() {
        let s = setup();
        let mut pool = Mempool::default();
        let parent = pay_from(&s, 1, 1_000_000, 1_000);
        pool.add(parent.clone(), &s.chain).unwrap();
        let child = s
            .bob
            .pay(
                &s.chain,
                &pool,
                s.alice.public_key(),
                amount(1_000),
                50_000,
                None,
            )
            .unwrap();
        pool.add(child.clone(), &s.chain).unwrap();
        let order: Vec<Txid> = pool
            .select(usize::MAX, usize::MAX)
            .iter()
            .map(|e| e.txid)
            .collect();
        assert_eq!(order, [parent.txid(), child.txid()]);
        // The template with both is a valid block.
        let mut chain = s.chain.clone();
        let t = crate::miner::build_template(
            &chain,
            &pool,
            s.alice.public_key(),
            crate::testkit::next_time(&chain),
            b"",
        );
        let blk = crate::testkit::seal(t.block);
        let out = chain.accept_block(&blk, blk.header.time).unwrap();
        assert!(out.tip_changed() && out.invalidated.is_empty());
        pool.update(&chain, &out);
        assert!(pool.is_empty());
    }

    #[test]
    fn mined_and_conflicting_transactions_leave_on_connect() {
        let s = setup();
        let mut chain = s.chain.clone();
        let mut pool = Mempool::default();
        let mined = pay_from(&s, 1, 1_000, 1_000);
        let doomed = pay_from(&s, 2, 1_000, 1_000);
        let kept = pay_from(&s, 3, 1_000, 1_000);
        for tx in [mined.clone(), doomed.clone(), kept.clone()] {
            pool.add(tx, &chain).unwrap();
        }
        // The block carries `mined` and a different spend of `doomed`'s coin.
        let rival = pay_from(&s, 2, 7_000, 1_000);
        let (_, out) = extend(
            &mut chain,
            &[mined.clone(), rival],
            s.alice.public_key(),
            b"b",
        )
        .unwrap();
        pool.update(&chain, &out);
        assert!(!pool.contains(&mined.txid()));
        assert!(!pool.contains(&doomed.txid()));
        assert!(pool.contains(&kept.txid()));
    }

    #[test]
    fn reorg_returns_losing_transactions_and_drops_conflicts() {
        let s = setup();
        let mut a = s.chain.clone();
        let b_start = s.chain.clone();
        let mut pool = Mempool::default();
        let only_a = pay_from(&s, 1, 1_000, 1_000);
        let a_version = pay_from(&s, 2, 1_000, 1_000);
        let (_, out) = extend(
            &mut a,
            &[only_a.clone(), a_version.clone()],
            s.alice.public_key(),
            b"A",
        )
        .unwrap();
        pool.update(&a, &out);
        assert!(pool.is_empty());
        // Branch B spends coin 2 differently and is two blocks long.
        let b_version = pay_from(&s, 2, 9_000, 1_000);
        let mut b = b_start;
        let b1 = block_with(
            &b,
            core::slice::from_ref(&b_version),
            s.bob.public_key(),
            b"B",
        );
        b.accept_block(&b1, b1.header.time).unwrap();
        let b2 = block_with(&b, &[], s.bob.public_key(), b"B");
        a.accept_block(&b1, b1.header.time).unwrap();
        let out = a.accept_block(&b2, b2.header.time).unwrap();
        assert_eq!(out.disconnected.len(), 1);
        pool.update(&a, &out);
        // `only_a` returns; `a_version` conflicts with B's spend and stays out.
        assert!(pool.contains(&only_a.txid()));
        assert!(!pool.contains(&a_version.txid()));
        assert!(!pool.contains(&b_version.txid()));
        assert_eq!(pool.len(), 1);
    }
}
