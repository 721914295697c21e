//! Helpers for tests, benches and the simulator (feature `test-utils`): deterministic
//! wallets, block building and sealing on the test network.

use alloc::vec::Vec;

use crate::chain::{BlockOutcome, Chain, ChainError};
use crate::mempool::Mempool;
use crate::miner::{build_template, mine};
use crate::params::Params;
use crate::primitives::{Block, Transaction};
use crate::sig::PublicKey;
use crate::wallet::Wallet;

/// The wallet of test participant `i` (seed = 32 bytes of `i`).
pub fn wallet(i: u8, params: &Params) -> Wallet {
    Wallet::from_seed([i; 32], params.address_prefix)
}

/// A clock that moves one block time past the tip: blocks made with it keep the schedule.
pub fn next_time(chain: &Chain) -> u64 {
    chain.tip().header.time + chain.params().target_block_time as u64
}

/// An unsealed block on the tip holding `txs` (which must be valid in order), paying
/// subsidy and fees to `reward`. `extra` distinguishes blocks of competing branches.
pub fn block_with(chain: &Chain, txs: &[Transaction], reward: PublicKey, extra: &[u8]) -> Block {
    let mut pool = Mempool::new(usize::MAX, 0);
    for tx in txs {
        pool.add(tx.clone(), chain)
            .unwrap_or_else(|e| panic!("test transaction refused by the pool: {e}"));
    }
    let t = build_template(chain, &pool, reward, next_time(chain), extra);
    let mut block = t.block;
    // Keep the given order (the pool orders by fee rate).
    block.txs.truncate(1);
    block.txs.extend(txs.iter().cloned());
    seal(block)
}

/// Recomputes the merkle root and mines the block (instant on the test network).
pub fn seal(mut block: Block) -> Block {
    block.header.merkle_root = block.compute_merkle_root();
    mine(block).expect("test network bits are valid")
}

/// Mines a block of `txs` on the tip and accepts it.
pub fn extend(
    chain: &mut Chain,
    txs: &[Transaction],
    reward: PublicKey,
    extra: &[u8],
) -> Result<(Block, BlockOutcome), ChainError> {
    let block = block_with(chain, txs, reward, extra);
    let now = block.header.time;
    let outcome = chain.accept_block(&block, now)?;
    Ok((block, outcome))
}

/// Mines `n` empty blocks paying `reward`.
pub fn extend_empty(chain: &mut Chain, n: usize, reward: PublicKey, extra: &[u8]) -> Vec<Block> {
    (0..n)
        .map(|_| {
            extend(chain, &[], reward, extra)
                .expect("an empty block on the tip is valid")
                .0
        })
        .collect()
}

/// A chain of `n` coinbase-only blocks as a store would hold it (the merged ChangeSets).
pub fn long_chain(params: &Params, n: usize) -> crate::store::ChangeSet {
    let mut chain = Chain::new(params.clone());
    let key = wallet(42, params).public_key();
    let mut all = crate::store::ChangeSet::default();
    for _ in 0..n {
        let (_, outcome) =
            extend(&mut chain, &[], key, b"long").expect("an empty block on the tip is valid");
        all.merge(outcome.changes);
    }
    all
}

/// A sealed coinbase-only block on `parent` (at `parent_height`) that needs no chain: for
/// building branches on top of blocks a chain would refuse.
pub fn child_of(
    params: &Params,
    parent: &Block,
    parent_height: crate::units::Height,
    reward: PublicKey,
    extra: &[u8],
) -> Block {
    use crate::primitives::{BlockHeader, HEADER_VERSION, Payload, TxOut};
    let height = parent_height.next();
    let coinbase = Transaction {
        inputs: Vec::new(),
        outputs: alloc::vec![TxOut {
            amount: params.subsidy(height),
            key: reward,
        }],
        payload: Payload::Coinbase {
            height,
            extra: extra.to_vec(),
        },
    };
    seal(Block {
        header: BlockHeader {
            version: HEADER_VERSION,
            prev: parent.hash(),
            merkle_root: crate::hash::Hash256::ZERO,
            time: parent.header.time + params.target_block_time as u64,
            bits: params.next_bits(parent_height, parent.header.time),
            nonce: 0,
        },
        txs: alloc::vec![coinbase],
    })
}

/// A chain on which each key of `payers` owns `coins` mature coinbase coins, and the
/// changes that built it (what a store holds).
pub fn funded_chain(
    params: &Params,
    payers: &[PublicKey],
    coins: usize,
) -> (Chain, crate::store::ChangeSet) {
    let mut chain = Chain::new(params.clone());
    let mut all = crate::store::ChangeSet::default();
    let mut add = |chain: &mut Chain, key: PublicKey| {
        let (_, outcome) = extend(chain, &[], key, b"funding").expect("an empty block is valid");
        all.merge(outcome.changes);
    };
    for _ in 0..coins {
        for key in payers {
            add(&mut chain, *key);
        }
    }
    let maturity = usize::try_from(params.coinbase_maturity).expect("small");
    for _ in 0..maturity {
        add(&mut chain, PublicKey([0x55; 32]));
    }
    (chain, all)
}

/// `n` one-input payments, round-robin over `payers`, each spending another coin: valid
/// together, in this order, in a block on `chain`. One signature each.
pub fn payments(chain: &Chain, payers: &[Wallet], n: usize) -> Vec<Transaction> {
    let mut pool = Mempool::new(usize::MAX, 0);
    let to = PublicKey([0x66; 32]);
    (0..n)
        .map(|i| {
            let amount = crate::units::Amount::from_units(100_000 + i as u64).expect("small");
            let tx = payers[i % payers.len()]
                .pay(chain, &pool, to, amount, 2_000, None)
                .expect("the payer has a coin left");
            pool.add(tx.clone(), chain)
                .expect("the pool takes the payment");
            tx
        })
        .collect()
}
