//! The write queue between the node and IndexedDB: what the node has validated but the
//! database has not yet committed.
//!
//! - **Merging.** Consecutive ChangeSets are folded into one IndexedDB transaction
//!   ([`ChangeSet::merge`] keeps the final value of every key, so one merged write leaves the
//!   store exactly as the writes one by one would). A batch is bounded in bytes and in
//!   ChangeSets, so one transaction's duration is bounded; the writer starts the next batch
//!   the moment the previous one commits, so nothing waits longer than one transaction.
//!   A coin that a batch both creates and spends (common in a sync: change spent a few
//!   blocks later) is left out of the batch altogether — no put, no delete — since the
//!   store never held it before the batch and must not hold it after.
//! - **Back-pressure.** Above a high-water mark (blocks or bytes, in flight included) the
//!   queue is [`full`](WriteQueue::is_full); the host stops feeding peers' messages to the
//!   node until it drains below the low-water mark, so validation never runs more than the
//!   high-water mark ahead of storage.
//! - **Synced.** The node is only reported synced while at most [`Limits::synced_slack`]
//!   blocks are unstored.
//!
//! [`WriteQueue`] is the pure logic (unit-tested natively); [`Writer`] drives it over an
//! [`IdbStore`] on the tab's event loop.

use std::collections::{BTreeSet, VecDeque};

use tabcoin_core::primitives::OutPoint;
use tabcoin_core::store::ChangeSet;

mod writer;

pub use writer::{Notice, SnapshotSource, Writer};

/// Bounds of the queue. Blocks count the block bodies a ChangeSet carries (one per block
/// connected or stored); bytes are [`ChangeSet::estimated_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many bytes merged into one transaction (a single larger ChangeSet
    /// still goes alone: a ChangeSet is atomic).
    pub batch_bytes: usize,
    /// At most this many ChangeSets merged into one transaction.
    pub batch_changesets: usize,
    /// Full (feeding stops) at this many unstored blocks…
    pub high_blocks: usize,
    /// …or this many unstored bytes.
    pub high_bytes: usize,
    /// Feeding resumes at or below this many unstored blocks…
    pub low_blocks: usize,
    /// …and at or below this many unstored bytes.
    pub low_bytes: usize,
    /// "Synced" only while at most this many blocks are unstored.
    pub synced_slack: usize,
    /// The store's UTXO log is folded into a snapshot once it outweighs the last snapshot
    /// and this many bytes; the node is held back while it is four times that
    /// (`idb/utxo.rs`).
    pub utxo_log_min: usize,
}

impl Limits {
    /// The browser node's bounds: a sync of small blocks merges up to 64 blocks per
    /// transaction; 50 KB blocks are bounded by bytes (4 MiB per transaction, 8 MiB unstored).
    pub const BROWSER: Limits = Limits {
        batch_bytes: 4 << 20,
        batch_changesets: 256,
        high_blocks: 64,
        high_bytes: 8 << 20,
        low_blocks: 16,
        low_bytes: 2 << 20,
        synced_slack: 4,
        utxo_log_min: 1 << 20,
    };
}

struct Queued {
    cs: ChangeSet,
    bytes: usize,
    blocks: usize,
}

/// ChangeSets merged into one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub changes: ChangeSet,
    /// How many ChangeSets were merged.
    pub changesets: usize,
    pub blocks: usize,
    pub bytes: usize,
}

/// The queue's state: ChangeSets waiting, and the batch being written.
#[derive(Default)]
pub struct WriteQueue {
    limits: Option<Limits>,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    queued_blocks: usize,
    /// (blocks, bytes) of the batch being written.
    in_flight: Option<(usize, usize)>,
    /// Set once the queue reached high water; cleared at low water (hysteresis).
    full: bool,
}

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteQueue")
            .field("changesets", &self.queue.len())
            .field("blocks", &self.blocks())
            .field("bytes", &self.bytes())
            .field("full", &self.full)
            .finish()
    }
}

impl WriteQueue {
    pub fn new(limits: Limits) -> WriteQueue {
        WriteQueue {
            limits: Some(limits),
            ..WriteQueue::default()
        }
    }

    fn limits(&self) -> Limits {
        self.limits.unwrap_or(Limits::BROWSER)
    }

    /// Queues `cs` (empty ones are dropped).
    pub fn push(&mut self, cs: ChangeSet) {
        if cs.is_empty() {
            return;
        }
        let bytes = cs.estimated_bytes();
        let blocks = cs.blocks.len();
        self.queued_bytes += bytes;
        self.queued_blocks += blocks;
        self.queue.push_back(Queued { cs, bytes, blocks });
        self.update_full();
    }

    /// Unstored blocks: queued plus being written.
    pub fn blocks(&self) -> usize {
        self.queued_blocks + self.in_flight.map_or(0, |(b, _)| b)
    }

    /// Unstored bytes: queued plus being written.
    pub fn bytes(&self) -> usize {
        self.queued_bytes + self.in_flight.map_or(0, |(_, b)| b)
    }

    /// ChangeSets waiting (not counting the batch being written).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn is_writing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// True from high water until the queue drains to low water: feed the node nothing
    /// from peers meanwhile.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Few enough blocks unstored to call the node synced.
    pub fn within_synced_slack(&self) -> bool {
        self.blocks() <= self.limits().synced_slack
    }

    fn update_full(&mut self) {
        let l = self.limits();
        let (blocks, bytes) = (self.blocks(), self.bytes());
        if blocks >= l.high_blocks || bytes >= l.high_bytes {
            self.full = true;
        } else if blocks <= l.low_blocks && bytes <= l.low_bytes {
            self.full = false;
        }
    }

    /// Merges ChangeSets from the front within the batch bounds (at least one) and marks
    /// them in flight. None while a batch is in flight or nothing is queued.
    pub fn take_batch(&mut self) -> Option<Batch> {
        if self.in_flight.is_some() {
            return None;
        }
        let l = self.limits();
        let first = self.queue.pop_front()?;
        // Coins whose first change in this batch creates them: not in the store before it.
        let mut created: BTreeSet<OutPoint> = first
            .cs
            .utxo
            .iter()
            .filter(|(_, c)| c.is_some())
            .map(|(op, _)| *op)
            .collect();
        let mut batch = Batch {
            changes: first.cs,
            changesets: 1,
            blocks: first.blocks,
            bytes: first.bytes,
        };
        while let Some(next) = self.queue.front() {
            if batch.changesets >= l.batch_changesets || batch.bytes + next.bytes > l.batch_bytes {
                break;
            }
            let mut next = self.queue.pop_front().expect("front() was Some");
            for (op, coin) in core::mem::take(&mut next.cs.utxo) {
                match coin {
                    // Created and spent within the batch: the store never sees it.
                    None if created.remove(&op) => {
                        batch.changes.utxo.remove(&op);
                    }
                    Some(_) if !batch.changes.utxo.contains_key(&op) => {
                        created.insert(op);
                        batch.changes.utxo.insert(op, coin);
                    }
                    _ => {
                        batch.changes.utxo.insert(op, coin);
                    }
                }
            }
            batch.changes.merge(next.cs);
            batch.changesets += 1;
            batch.blocks += next.blocks;
            batch.bytes += next.bytes;
        }
        self.queued_bytes -= batch.bytes;
        self.queued_blocks -= batch.blocks;
        self.in_flight = Some((batch.blocks, batch.bytes));
        Some(batch)
    }

    /// The batch in flight committed.
    pub fn committed(&mut self) {
        self.in_flight = None;
        self.update_full();
    }

    /// The batch in flight failed: later ChangeSets build on state the store does not
    /// have, so everything is dropped (the next start resumes from the last commit).
    pub fn failed(&mut self) {
        self.in_flight = None;
        self.queue.clear();
        self.queued_bytes = 0;
        self.queued_blocks = 0;
        self.full = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabcoin_core::chain::Chain;
    use tabcoin_core::params::Params;
    use tabcoin_core::testkit::{block_with, wallet};

    /// The ChangeSets of `n` blocks connected one by one, and the chain they built.
    fn changes(n: usize) -> (Chain, Vec<ChangeSet>) {
        let params = Params::test();
        let key = wallet(1, &params).public_key();
        let mut chain = Chain::new(params);
        let mut out = Vec::new();
        for _ in 0..n {
            let b = block_with(&chain, &[], key, b"queue");
            out.push(chain.accept_block(&b, b.header.time).unwrap().changes);
        }
        (chain, out)
    }

    /// The ChangeSets of `n` blocks after the first coinbase matured, each block spending the
    /// change the block before it made (from that coinbase on).
    fn spending_changes(n: usize) -> Vec<ChangeSet> {
        use tabcoin_core::primitives::{OutPoint, Payload, Transaction, TxIn, TxOut};
        use tabcoin_core::sig::Signature;
        use tabcoin_core::units::Amount;
        let params = Params::test();
        let w = wallet(1, &params);
        let key = w.public_key();
        let to = wallet(2, &params).public_key();
        let mut chain = Chain::new(params.clone());
        let mut out = Vec::new();
        let mut first = None;
        for _ in 0..=params.coinbase_maturity {
            let b = block_with(&chain, &[], key, b"queue");
            out.push(chain.accept_block(&b, b.header.time).unwrap().changes);
            first.get_or_insert(b);
        }
        let cb = first.unwrap().txs[0].clone();
        let mut prev = (
            OutPoint {
                txid: cb.txid(),
                vout: 0,
            },
            cb.outputs[0].amount.units(),
        );
        for _ in 0..n {
            let change = prev.1 - 1_000 - 10_000;
            let mut tx = Transaction {
                inputs: vec![TxIn {
                    prev: prev.0,
                    sig: Signature([0; 64]),
                }],
                outputs: vec![
                    TxOut {
                        amount: Amount::from_units(1_000).unwrap(),
                        key: to,
                    },
                    TxOut {
                        amount: Amount::from_units(change).unwrap(),
                        key,
                    },
                ],
                payload: Payload::None,
            };
            let spent = [TxOut {
                amount: Amount::from_units(prev.1).unwrap(),
                key,
            }];
            w.sign_tx(&mut tx, &spent, &params.genesis_hash());
            prev = (
                OutPoint {
                    txid: tx.txid(),
                    vout: 1,
                },
                change,
            );
            let b = block_with(&chain, &[tx], key, b"queue");
            out.push(chain.accept_block(&b, b.header.time).unwrap().changes);
        }
        out
    }

    /// The coins a store holds after applying `sets` in order to an empty one.
    fn coins_after<'a>(
        sets: impl IntoIterator<Item = &'a ChangeSet>,
    ) -> std::collections::BTreeMap<OutPoint, tabcoin_core::utxo::Coin> {
        let mut coins = std::collections::BTreeMap::new();
        for cs in sets {
            for (op, c) in &cs.utxo {
                match c {
                    Some(c) => coins.insert(*op, *c),
                    None => coins.remove(op),
                };
            }
        }
        coins
    }

    #[test]
    fn coins_created_and_spent_within_a_batch_are_left_out_and_the_store_ends_the_same() {
        let cs = spending_changes(12);
        let mut q = small(TIGHT);
        for c in cs.clone() {
            q.push(c);
        }
        let mut batches = Vec::new();
        while let Some(b) = q.take_batch() {
            batches.push(b.changes);
            q.committed();
        }
        assert_eq!(coins_after(&batches), coins_after(&cs));
        // Plain merging would write every change once per batch; most change outputs live
        // one block only, so most of those writes are gone.
        let plain: usize = cs
            .chunks(TIGHT.batch_changesets)
            .map(|chunk| {
                let mut all = ChangeSet::default();
                for c in chunk {
                    all.merge(c.clone());
                }
                all.utxo.len()
            })
            .sum();
        let written: usize = batches.iter().map(|b| b.utxo.len()).sum();
        assert!(
            written < plain,
            "{written} utxo writes, {plain} without eliding"
        );
        // Blocks, undo data and the tip are untouched by it.
        assert_eq!(
            batches.iter().map(|b| b.blocks.len()).sum::<usize>(),
            cs.iter().map(|c| c.blocks.len()).sum::<usize>()
        );
        assert_eq!(batches.last().unwrap().tip, cs.last().unwrap().tip);
    }

    fn small(limits: Limits) -> WriteQueue {
        WriteQueue::new(limits)
    }

    const TIGHT: Limits = Limits {
        batch_bytes: usize::MAX,
        batch_changesets: 5,
        high_blocks: 8,
        high_bytes: usize::MAX,
        low_blocks: 3,
        low_bytes: usize::MAX,
        synced_slack: 2,
        utxo_log_min: 1 << 20,
    };

    #[test]
    fn a_merged_batch_stores_what_the_changesets_one_by_one_store() {
        let (_, cs) = changes(12);
        let mut q = small(TIGHT);
        for c in cs.clone() {
            q.push(c);
        }
        let mut merged = Vec::new();
        while let Some(b) = q.take_batch() {
            assert!(b.changesets <= TIGHT.batch_changesets);
            merged.push(b.changes);
            q.committed();
        }
        assert_eq!(merged.len(), 3, "12 ChangeSets in batches of at most 5");
        let sum = |sets: Vec<ChangeSet>| {
            let mut all = ChangeSet::default();
            for s in sets {
                all.merge(s);
            }
            all
        };
        assert_eq!(sum(merged), sum(cs));
    }

    #[test]
    fn a_batch_is_bounded_in_bytes_but_takes_at_least_one() {
        let (_, cs) = changes(6);
        let one = cs[1].estimated_bytes();
        let mut q = small(Limits {
            batch_bytes: one * 2 + one / 2,
            ..TIGHT
        });
        for c in cs.clone() {
            q.push(c);
        }
        let b = q.take_batch().unwrap();
        assert_eq!(b.changesets, 2);
        assert!(b.bytes <= one * 2 + one / 2);
        q.committed();
        // A ChangeSet larger than the bound still goes, alone.
        let mut q = small(Limits {
            batch_bytes: 1,
            ..TIGHT
        });
        q.push(cs[0].clone());
        q.push(cs[1].clone());
        assert_eq!(q.take_batch().unwrap().changesets, 1);
    }

    #[test]
    fn one_batch_in_flight_at_a_time_and_it_counts_as_unstored() {
        let (_, cs) = changes(3);
        let mut q = small(TIGHT);
        q.push(cs[0].clone());
        let b = q.take_batch().unwrap();
        assert_eq!(q.blocks(), b.blocks);
        q.push(cs[1].clone());
        assert!(
            q.take_batch().is_none(),
            "a second batch while one is in flight"
        );
        assert_eq!(q.blocks(), 2);
        q.committed();
        assert_eq!(q.blocks(), 1);
        assert!(q.take_batch().is_some());
    }

    #[test]
    fn back_pressure_holds_from_high_water_down_to_low_water() {
        let (_, cs) = changes(14);
        let mut q = small(TIGHT);
        let mut it = cs.into_iter();
        for _ in 0..7 {
            q.push(it.next().unwrap());
            assert!(!q.is_full());
        }
        q.push(it.next().unwrap());
        assert!(q.is_full(), "8 unstored blocks is high water");
        // Writing 5 leaves 3 queued + 0 in flight only after the commit.
        let b = q.take_batch().unwrap();
        assert_eq!(b.blocks, 5);
        assert!(q.is_full(), "in-flight blocks are still unstored");
        q.committed();
        assert_eq!(q.blocks(), 3);
        assert!(!q.is_full(), "3 is low water");
        // Between the marks the state holds (hysteresis).
        q.push(it.next().unwrap());
        q.push(it.next().unwrap());
        assert!(!q.is_full());
        for c in it.by_ref().take(3) {
            q.push(c);
        }
        assert!(q.is_full());
        let _ = q.take_batch().unwrap();
        q.committed();
        assert_eq!(q.blocks(), 3);
        assert!(!q.is_full());
    }

    #[test]
    fn back_pressure_counts_bytes_too() {
        let (_, cs) = changes(4);
        let one = cs[1].estimated_bytes();
        let mut q = small(Limits {
            high_bytes: one * 2,
            low_bytes: one,
            ..TIGHT
        });
        q.push(cs[0].clone());
        assert!(!q.is_full());
        q.push(cs[1].clone());
        q.push(cs[2].clone());
        assert!(q.is_full());
    }

    #[test]
    fn synced_only_within_the_slack() {
        let (_, cs) = changes(4);
        let mut q = small(TIGHT);
        assert!(q.within_synced_slack());
        q.push(cs[0].clone());
        q.push(cs[1].clone());
        assert!(q.within_synced_slack());
        q.push(cs[2].clone());
        assert!(!q.within_synced_slack(), "3 unstored blocks, slack 2");
        let _ = q.take_batch().unwrap();
        assert!(!q.within_synced_slack(), "in flight is not stored");
        q.committed();
        assert!(q.within_synced_slack());
    }

    #[test]
    fn a_failure_drops_everything_after_it() {
        let (_, cs) = changes(4);
        let mut q = small(TIGHT);
        for c in cs {
            q.push(c);
        }
        let _ = q.take_batch().unwrap();
        q.failed();
        assert_eq!((q.blocks(), q.bytes(), q.queued()), (0, 0, 0));
        assert!(!q.is_full());
        assert!(q.take_batch().is_none());
    }

    #[test]
    fn empty_changesets_are_not_queued() {
        let mut q = small(TIGHT);
        q.push(ChangeSet::default());
        assert_eq!(q.queued(), 0);
        assert!(q.take_batch().is_none());
    }
}
