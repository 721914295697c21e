//! Rebuilding a block from a compact block: short ids, the partial block and why a
//! rebuild fails (no node state here: `super` keeps the partials and talks to peers).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use crate::encode::Encode;
use crate::hash::sha256d_parts;
use crate::primitives::{Block, BlockHash, BlockHeader, Transaction, Txid};
use crate::wire::{CompactBlock, PrefilledTx, SHORT_ID_LEN, ShortId};

const SHORT_ID_TAG: &[u8] = b"tabcoin/shortid/v1";

/// The key of a compact block's short ids: its header and the sender's nonce.
pub fn short_id_key(header: &BlockHeader, nonce: u64) -> [u8; 32] {
    sha256d_parts(&[SHORT_ID_TAG, &header.encode(), &nonce.to_le_bytes()]).0
}

/// The short id of `txid` under `key`: the first bytes of a hash of both.
pub fn short_id(key: &[u8; 32], txid: &Txid) -> ShortId {
    let h = sha256d_parts(&[key, txid.as_bytes()]);
    let mut id = [0u8; SHORT_ID_LEN];
    id.copy_from_slice(&h.0[..SHORT_ID_LEN]);
    ShortId(id)
}

/// `block` in compact form with `nonce`: the coinbase prefilled, every other transaction
/// by short id.
pub fn compact_of(block: &Block, nonce: u64) -> CompactBlock {
    let key = short_id_key(&block.header, nonce);
    CompactBlock {
        header: block.header,
        nonce,
        short_ids: block
            .txs
            .iter()
            .skip(1)
            .map(|t| short_id(&key, &t.txid()))
            .collect(),
        prefilled: block
            .txs
            .first()
            .map(|tx| PrefilledTx {
                index: 0,
                tx: tx.clone(),
            })
            .into_iter()
            .collect(),
    }
}

/// Why a compact block could not be rebuilt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactError {
    /// More transactions than a block may hold.
    TooManyTxs { count: usize, max: usize },
    /// No transaction at all, or none prefilled at index 0 (the coinbase cannot be in a pool).
    NoCoinbase,
    /// Prefilled indexes not strictly increasing, or beyond the block.
    BadPrefilledIndex(u32),
    /// Two transactions of the block share a short id (honest, if rare: fall back).
    DuplicateShortId,
    /// A short id matches more than one pooled transaction (fall back).
    PoolCollision,
    /// A `blocktxn` with a different number of transactions than asked for.
    WrongCount { expected: usize, got: usize },
    /// A `blocktxn` transaction whose short id is not the one at its place.
    WrongTx { index: u32 },
    /// The rebuilt block does not match its header's merkle root (a collision with a pooled
    /// transaction, or a lying sender: fall back to the whole block).
    MerkleMismatch,
}

impl CompactError {
    /// Whether the message itself breaks the rules (the sender is at fault), as opposed to
    /// a collision an honest sender can cause.
    pub fn malformed(&self) -> bool {
        matches!(
            self,
            CompactError::TooManyTxs { .. }
                | CompactError::NoCoinbase
                | CompactError::BadPrefilledIndex(_)
        )
    }
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactError::TooManyTxs { count, max } => {
                write!(f, "compact block of {count} transactions exceeds {max}")
            }
            CompactError::NoCoinbase => write!(f, "compact block without a prefilled coinbase"),
            CompactError::BadPrefilledIndex(i) => {
                write!(f, "prefilled index {i} out of order or beyond the block")
            }
            CompactError::DuplicateShortId => write!(f, "two transactions share a short id"),
            CompactError::PoolCollision => write!(f, "a short id matches several transactions"),
            CompactError::WrongCount { expected, got } => {
                write!(
                    f,
                    "blocktxn has {got} transactions, {expected} were asked for"
                )
            }
            CompactError::WrongTx { index } => {
                write!(
                    f,
                    "blocktxn transaction for index {index} has another short id"
                )
            }
            CompactError::MerkleMismatch => {
                write!(f, "rebuilt block does not match its merkle root")
            }
        }
    }
}

impl core::error::Error for CompactError {}

/// A block being rebuilt: its slots, filled from the pool or still missing.
#[derive(Clone, Debug)]
pub struct Partial {
    pub header: BlockHeader,
    key: [u8; 32],
    slots: Vec<Option<Transaction>>,
    /// The short id of each slot that came by short id.
    ids: Vec<Option<ShortId>>,
}

impl Partial {
    /// Starts rebuilding `cb` (at most `max_txs` transactions) from `pool`, each transaction
    /// with its txid: the pool keeps them, so a rebuild costs one short id per pooled
    /// transaction (a hash of 64 bytes) and hashes no transaction.
    pub fn start<'a>(
        cb: &CompactBlock,
        max_txs: usize,
        pool: impl IntoIterator<Item = (Txid, &'a Transaction)>,
    ) -> Result<Partial, CompactError> {
        let count = cb.short_ids.len().saturating_add(cb.prefilled.len());
        if count > max_txs {
            return Err(CompactError::TooManyTxs {
                count,
                max: max_txs,
            });
        }
        if cb.prefilled.first().is_none_or(|p| p.index != 0) {
            return Err(CompactError::NoCoinbase);
        }
        let mut slots: Vec<Option<Transaction>> = alloc::vec![None; count];
        let mut ids: Vec<Option<ShortId>> = alloc::vec![None; count];
        let mut last: Option<u32> = None;
        for p in &cb.prefilled {
            if last.is_some_and(|l| p.index <= l) || p.index as usize >= count {
                return Err(CompactError::BadPrefilledIndex(p.index));
            }
            last = Some(p.index);
            slots[p.index as usize] = Some(p.tx.clone());
        }
        let mut wanted: BTreeMap<ShortId, usize> = BTreeMap::new();
        let mut next = cb.short_ids.iter();
        for (i, slot) in slots.iter().enumerate() {
            if slot.is_some() {
                continue;
            }
            let id = *next.next().expect("count = short ids + prefilled");
            if wanted.insert(id, i).is_some() {
                return Err(CompactError::DuplicateShortId);
            }
            ids[i] = Some(id);
        }
        let key = short_id_key(&cb.header, cb.nonce);
        let mut found: BTreeMap<usize, &Transaction> = BTreeMap::new();
        for (txid, tx) in pool {
            let Some(&i) = wanted.get(&short_id(&key, &txid)) else {
                continue;
            };
            if found.insert(i, tx).is_some() {
                return Err(CompactError::PoolCollision);
            }
        }
        for (i, tx) in found {
            slots[i] = Some(tx.clone());
        }
        Ok(Partial {
            header: cb.header,
            key,
            slots,
            ids,
        })
    }

    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// The bytes it holds: its transactions' encoded sizes and its slot tables. What the
    /// node counts against `MAX_PARTIAL_BYTES`.
    pub fn held_bytes(&self) -> usize {
        let tables = self.slots.capacity() * core::mem::size_of::<Option<Transaction>>()
            + self.ids.capacity() * core::mem::size_of::<Option<ShortId>>();
        let txs: usize = self.slots.iter().flatten().map(|t| t.encoded_len()).sum();
        tables + txs
    }

    /// Indexes still missing, increasing.
    pub fn missing(&self) -> Vec<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Fills the missing slots with `txs` (a `blocktxn` answer, in order), checking each
    /// against the short id at its place.
    pub fn fill(&mut self, txs: Vec<Transaction>) -> Result<(), CompactError> {
        let missing = self.missing();
        if txs.len() != missing.len() {
            return Err(CompactError::WrongCount {
                expected: missing.len(),
                got: txs.len(),
            });
        }
        for (&i, tx) in missing.iter().zip(&txs) {
            if self.ids[i as usize] != Some(short_id(&self.key, &tx.txid())) {
                return Err(CompactError::WrongTx { index: i });
            }
        }
        for (i, tx) in missing.into_iter().zip(txs) {
            self.slots[i as usize] = Some(tx);
        }
        Ok(())
    }

    /// The rebuilt block, if every slot is filled and it matches its merkle root.
    pub fn finish(self) -> Result<Block, CompactError> {
        let txs: Option<Vec<Transaction>> = self.slots.into_iter().collect();
        let Some(txs) = txs else {
            return Err(CompactError::WrongCount {
                expected: 0,
                got: 0,
            });
        };
        let block = Block {
            header: self.header,
            txs,
        };
        if block.compute_merkle_root() != block.header.merkle_root {
            return Err(CompactError::MerkleMismatch);
        }
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::primitives::tests::{arb_header, arb_tx};
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    /// A block of `txs` (distinct) after a coinbase-like first one, with its true root.
    fn block_of(header: BlockHeader, txs: Vec<Transaction>) -> Block {
        let mut b = Block { header, txs };
        b.header.merkle_root = b.compute_merkle_root();
        b
    }

    /// `txs` as a pool hands them out: each with its txid.
    fn pooled(txs: &[Transaction]) -> impl Iterator<Item = (Txid, &Transaction)> {
        txs.iter().map(|t| (t.txid(), t))
    }

    fn distinct(txs: Vec<Transaction>) -> Vec<Transaction> {
        let mut seen = alloc::collections::BTreeSet::new();
        txs.into_iter().filter(|t| seen.insert(t.txid())).collect()
    }

    proptest! {
        #[test]
        fn a_block_is_rebuilt_from_any_part_of_it_in_the_pool(
            header in arb_header(),
            txs in proptest::collection::vec(arb_tx(), 1..12),
            in_pool in proptest::collection::vec(any::<bool>(), 12),
            others in proptest::collection::vec(arb_tx(), 0..4),
            nonce in any::<u64>(),
        ) {
            let block = block_of(header, distinct(txs));
            let cb = compact_of(&block, nonce);
            let pool: Vec<Transaction> = block
                .txs
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(i, _)| in_pool[*i])
                .map(|(_, t)| t.clone())
                .chain(others.into_iter().filter(|o| !block.txs.contains(o)))
                .collect();
            let mut p = Partial::start(&cb, 100, pooled(&pool)).unwrap();
            let missing = p.missing();
            let expect: Vec<u32> = (1..block.txs.len())
                .filter(|&i| !in_pool[i])
                .map(|i| i as u32)
                .collect();
            prop_assert_eq!(&missing, &expect);
            let answer = missing.iter().map(|&i| block.txs[i as usize].clone()).collect();
            p.fill(answer).unwrap();
            prop_assert_eq!(p.finish().unwrap(), block);
        }

        #[test]
        fn short_ids_depend_on_the_block_and_the_nonce(
            a in arb_header(),
            b in arb_header(),
            tx in arb_tx(),
            n in any::<u64>(),
        ) {
            let t = tx.txid();
            prop_assert_eq!(short_id(&short_id_key(&a, n), &t), short_id(&short_id_key(&a, n), &t));
            if a != b {
                prop_assert_ne!(short_id_key(&a, n), short_id_key(&b, n));
            }
            prop_assert_ne!(short_id_key(&a, n), short_id_key(&a, n.wrapping_add(1)));
        }
    }

    fn sample() -> (Block, Vec<Transaction>) {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let header = arb_header().new_tree(&mut runner).unwrap().current();
        let txs: Vec<Transaction> = (0..6)
            .map(|_| arb_tx().new_tree(&mut runner).unwrap().current())
            .collect();
        let txs = distinct(txs);
        let block = block_of(header, txs[..4].to_vec());
        (block, txs[4..].to_vec())
    }

    #[test]
    fn malformed_compact_blocks_are_the_senders_fault() {
        let (block, _) = sample();
        let good = compact_of(&block, 1);
        let mut no_coinbase = good.clone();
        no_coinbase.prefilled.clear();
        no_coinbase.short_ids.push(ShortId([0; 6]));
        let mut beyond = good.clone();
        beyond.prefilled.push(PrefilledTx {
            index: 9,
            tx: block.txs[1].clone(),
        });
        let mut unordered = good.clone();
        unordered.prefilled.push(PrefilledTx {
            index: 0,
            tx: block.txs[1].clone(),
        });
        for (cb, max, err) in [
            (no_coinbase, 100, CompactError::NoCoinbase),
            (beyond, 100, CompactError::BadPrefilledIndex(9)),
            (unordered, 100, CompactError::BadPrefilledIndex(0)),
            (good, 3, CompactError::TooManyTxs { count: 4, max: 3 }),
        ] {
            let e = Partial::start(&cb, max, pooled(&[])).unwrap_err();
            assert_eq!(e, err);
            assert!(e.malformed(), "{e}");
        }
    }

    #[test]
    fn collisions_fall_back_and_wrong_answers_are_caught() {
        let (block, outside) = sample();
        let good = compact_of(&block, 1);
        // Two of the block's transactions under one short id: not the sender's fault.
        let mut dup = good.clone();
        dup.short_ids[1] = dup.short_ids[0];
        let e = Partial::start(&dup, 100, pooled(&[])).unwrap_err();
        assert_eq!(e, CompactError::DuplicateShortId);
        assert!(!e.malformed());
        // A short id that two pooled transactions match (the same one listed twice here:
        // real collisions need 2^48 work) is ambiguous.
        let twice = [block.txs[1].clone(), block.txs[1].clone()];
        assert_eq!(
            Partial::start(&good, 100, pooled(&twice)).unwrap_err(),
            CompactError::PoolCollision
        );
        // A pooled transaction outside the block under a block transaction's short id (a
        // collision) rebuilds a block whose root does not match.
        let key = short_id_key(&block.header, 1);
        let mut collide = good.clone();
        collide.short_ids[0] = short_id(&key, &outside[0].txid());
        let pool: Vec<Transaction> = block.txs[2..]
            .iter()
            .chain(&outside[..1])
            .cloned()
            .collect();
        let p = Partial::start(&collide, 100, pooled(&pool)).unwrap();
        assert!(p.missing().is_empty());
        assert_eq!(p.finish().unwrap_err(), CompactError::MerkleMismatch);
        // An answer with the wrong transaction, or the wrong number of them.
        let mut p = Partial::start(&good, 100, pooled(&[])).unwrap();
        assert_eq!(p.missing(), alloc::vec![1, 2, 3]);
        let wrong = alloc::vec![
            block.txs[1].clone(),
            outside[0].clone(),
            block.txs[3].clone()
        ];
        assert_eq!(
            p.fill(wrong).unwrap_err(),
            CompactError::WrongTx { index: 2 }
        );
        assert_eq!(
            p.fill(alloc::vec![block.txs[1].clone()]).unwrap_err(),
            CompactError::WrongCount {
                expected: 3,
                got: 1
            }
        );
        p.fill(block.txs[1..].to_vec()).unwrap();
        assert_eq!(p.finish().unwrap(), block);
    }

    /// A one-in one-out transaction (143 bytes, as in a pool of payments), distinct per `i`.
    fn pool_tx(i: u32) -> Transaction {
        use crate::primitives::{OutPoint, Payload, TxIn, TxOut};
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        Transaction {
            inputs: alloc::vec![TxIn {
                prev: OutPoint {
                    txid: Txid::from_bytes(seed),
                    vout: i,
                },
                sig: crate::sig::Signature([7; 64]),
            }],
            outputs: alloc::vec![TxOut {
                amount: crate::units::Amount::from_units(u64::from(i) + 1_000).unwrap(),
                key: crate::sig::PublicKey(seed),
            }],
            payload: Payload::None,
        }
    }

    /// A block of `n` pool transactions (every 7th of the pool, after a coinbase-like one)
    /// and the pool it came from, each with its txid.
    fn full_pool(pool_len: u32, n: usize) -> (Block, Vec<(Txid, Transaction)>) {
        let pool: Vec<(Txid, Transaction)> = (0..pool_len)
            .map(|i| {
                let tx = pool_tx(i);
                (tx.txid(), tx)
            })
            .collect();
        let mut txs = alloc::vec![pool_tx(u32::MAX)];
        txs.extend(pool.iter().step_by(7).take(n).map(|(_, t)| t.clone()));
        let header = BlockHeader {
            version: 1,
            prev: BlockHash::from_bytes([1; 32]),
            merkle_root: crate::hash::Hash256::ZERO,
            time: 1,
            bits: crate::units::CompactTarget(0x207f_ffff),
            nonce: 0,
        };
        (block_of(header, txs), pool)
    }

    #[test]
    fn a_block_is_rebuilt_from_the_pools_txids_and_collisions_still_fall_back() {
        let (block, pool) = full_pool(2_000, 200);
        let cb = compact_of(&block, 42);
        let by_id = |pool: &[(Txid, Transaction)]| {
            Partial::start(&cb, 1_000, pool.iter().map(|(id, t)| (*id, t)))
        };
        // Every block transaction in the pool: rebuilt without asking.
        let p = by_id(&pool).unwrap();
        assert!(p.missing().is_empty());
        assert_eq!(p.finish().unwrap(), block);
        // Some missing: asked for by index, then rebuilt.
        let partial_pool: Vec<(Txid, Transaction)> = pool
            .iter()
            .filter(|(id, _)| id.as_bytes()[0] % 3 != 0)
            .cloned()
            .collect();
        let mut p = by_id(&partial_pool).unwrap();
        let missing = p.missing();
        assert!(!missing.is_empty() && missing.len() < 200);
        p.fill(
            missing
                .iter()
                .map(|&i| block.txs[i as usize].clone())
                .collect(),
        )
        .unwrap();
        assert_eq!(p.finish().unwrap(), block);
        // The same transaction twice in what the pool hands out: ambiguous, fall back.
        let mut twice = pool.clone();
        twice.push(pool[7].clone());
        assert_eq!(by_id(&twice).unwrap_err(), CompactError::PoolCollision);
        // A pool transaction outside the block under a block transaction's short id: the
        // rebuilt root does not match, fall back.
        let key = short_id_key(&block.header, 42);
        let mut collide = cb.clone();
        collide.short_ids[0] = short_id(&key, &pool[1].0);
        let p = Partial::start(&collide, 1_000, pool.iter().map(|(id, t)| (*id, t))).unwrap();
        assert!(p.missing().is_empty());
        assert_eq!(p.finish().unwrap_err(), CompactError::MerkleMismatch);
    }

    /// The cost of a rebuild on a full pool (5 MB of 143-byte payments, a block of 2,000 of
    /// them), with the txids the pool keeps and with each transaction hashed again as before:
    /// `cargo test --release -p tabcoin-core --lib rebuild_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement: run in release with --nocapture"]
    fn rebuild_cost_on_a_full_pool() {
        extern crate std;
        use std::time::Instant;
        let n = (crate::mempool::DEFAULT_MAX_BYTES / pool_tx(0).encoded_len()) as u32;
        let (block, pool) = full_pool(n, 2_000);
        let cb = compact_of(&block, 42);
        let best = |f: &dyn Fn() -> Partial| {
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let p = f();
                    let d = t.elapsed();
                    assert!(p.missing().is_empty());
                    d
                })
                .min()
                .unwrap()
        };
        let kept =
            best(&|| Partial::start(&cb, 10_000, pool.iter().map(|(id, t)| (*id, t))).unwrap());
        let hashed =
            best(&|| Partial::start(&cb, 10_000, pool.iter().map(|(_, t)| (t.txid(), t))).unwrap());
        std::println!(
            "rebuild of a {}-tx block from a pool of {n} txs ({} bytes): kept txids {:.2} ms, \
             txids hashed again {:.2} ms (best of 5)",
            block.txs.len(),
            pool.iter().map(|(_, t)| t.encoded_len()).sum::<usize>(),
            kept.as_secs_f64() * 1e3,
            hashed.as_secs_f64() * 1e3,
        );
    }
}
