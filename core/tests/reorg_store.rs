//! A switch of branches deeper than the body cache runs block at a time from the store:
//! its memory stays within the cache's budget plus one block whatever its depth, every
//! intermediate store state is a consistent chain, and an invalid block deep in the new
//! branch leaves the chain where a replay of the old one would be.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{answer_loads, paying_block, replay};

use tabcoin_core::chain::{BlockOutcome, Chain};
use tabcoin_core::encode::Encode;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash, TxOut};
use tabcoin_core::store::{MemStore, Store};
use tabcoin_core::testkit::{child_of, seal, wallet};
use tabcoin_core::units::{Amount, Height};

const CACHE: usize = 64 * 1024;
/// Coinbase outputs per block: ~40 bytes each, so blocks of several KB.
const FAT: usize = 120;

/// Splits the coinbase's reward over `FAT` outputs and seals the block again.
fn fatten(block: Block) -> Block {
    let mut block = block;
    let cb = &mut block.txs[0];
    let total = cb.outputs.iter().map(|o| o.amount.units()).sum::<u64>();
    let key = cb.outputs[0].key;
    let each = total / FAT as u64;
    let mut outputs: Vec<TxOut> = (0..FAT - 1)
        .map(|_| TxOut {
            amount: Amount::from_units(each).unwrap(),
            key,
        })
        .collect();
    outputs.push(TxOut {
        amount: Amount::from_units(total - each * (FAT as u64 - 1)).unwrap(),
        key,
    });
    cb.outputs = outputs;
    seal(block)
}

/// Persists every step and answers every load from `store` until the chain asks for
/// nothing more. After each write the store must load as a consistent chain (a crash there
/// restarts from it). Returns the number of blocks disconnected and those found invalid.
fn settle(
    chain: &mut Chain,
    store: &mut MemStore,
    outcome: BlockOutcome,
) -> (usize, Vec<BlockHash>) {
    settle_saving(chain, store, outcome, &mut Vec::new())
}

/// [`settle`], keeping a copy of the store after each write that moved the tip.
fn settle_saving(
    chain: &mut Chain,
    store: &mut MemStore,
    mut outcome: BlockOutcome,
    saved: &mut Vec<MemStore>,
) -> (usize, Vec<BlockHash>) {
    let mut disconnected = 0;
    let mut invalidated = Vec::new();
    loop {
        store.persist(&outcome.changes).unwrap();
        if outcome.changes.tip.is_some() {
            saved.push(store.clone());
            let loaded = Chain::load_with_cache(chain.params().clone(), store.load().unwrap(), 0)
                .expect("every written state loads");
            assert_eq!(
                loaded.utxo().total_value(),
                loaded.issued(),
                "the stored UTXO set matches the stored tip"
            );
        }
        disconnected += outcome.disconnected.len();
        invalidated.extend(outcome.invalidated.iter().map(|(h, _)| *h));
        if outcome.need.is_empty() {
            return (disconnected, invalidated);
        }
        outcome = answer_loads(chain, store, &outcome.need);
    }
}

/// Grows `chain` by `n` fat blocks, each with a payment once coins matured.
fn grow(chain: &mut Chain, store: &mut MemStore, n: usize, tag: &[u8]) -> Vec<Block> {
    let mut out = Vec::new();
    for _ in 0..n {
        let block = fatten(paying_block(chain, tag));
        let outcome = chain.accept_block(&block, block.header.time).unwrap();
        settle(chain, store, outcome);
        out.push(block);
    }
    out
}

/// Heap bytes the cache charges for the biggest block with its undo data (a bound).
fn biggest(blocks: &[Block]) -> usize {
    blocks.iter().map(Encode::encoded_len).max().unwrap() * 2 + 4096
}

#[test]
fn a_reorg_deeper_than_the_cache_stays_within_its_budget() {
    let params = Params::test();
    let mut store = MemStore::new();
    let mut a = Chain::new(params.clone());
    a.set_body_cache_bytes(CACHE);
    let common = grow(&mut a, &mut store, 10, b"common");
    let mut b = replay(&params, &common);
    let mut b_store = store.clone();
    let old = grow(&mut a, &mut store, 40, b"side-a");
    let branch = grow(&mut b, &mut b_store, 41, b"side-b");
    let branch_bytes: usize = old.iter().map(Encode::encoded_len).sum();
    assert!(
        branch_bytes > 2 * CACHE,
        "the reorg is deeper than the cache"
    );
    a.reset_body_cache_peak();
    let before = store.loads;
    let mut disconnected = 0;
    for blk in &branch {
        let out = a.accept_block(blk, blk.header.time).unwrap();
        disconnected += settle(&mut a, &mut store, out).0;
    }
    assert_eq!(a.tip().hash, b.tip().hash, "switched to the longer branch");
    assert_eq!(disconnected, 40, "reorg depth");
    assert!(
        store.loads - before >= 20,
        "bodies and undo came from the store"
    );
    let peak = a.body_cache_peak();
    let bound = CACHE + biggest(&old).max(biggest(&branch));
    assert!(
        peak <= bound,
        "the cache peaked at {peak} bytes, beyond its budget and one block ({bound})"
    );
    let all: Vec<Block> = common.iter().chain(&branch).cloned().collect();
    assert_eq!(a.utxo(), replay(&params, &all).utxo());
    // A restart from the store is the same chain.
    let loaded = Chain::load(params.clone(), store.load().unwrap()).unwrap();
    assert_eq!(loaded.tip().hash, a.tip().hash);
    assert_eq!(loaded.utxo(), a.utxo());
}

#[test]
fn an_invalid_block_deep_in_the_branch_goes_back_to_the_old_chain() {
    let params = Params::test();
    let mut store = MemStore::new();
    let mut a = Chain::new(params.clone());
    a.set_body_cache_bytes(CACHE);
    let common = grow(&mut a, &mut store, 10, b"common");
    let old = grow(&mut a, &mut store, 30, b"side-a");
    let old_tip = a.tip().hash;
    // The branch: 40 coinbase-only blocks from the fork, the 20th paying itself too much.
    let key = wallet(3, &params).public_key();
    let mut parent = common.last().unwrap().clone();
    let mut height = Height(common.len() as u64);
    let mut branch = Vec::new();
    for i in 0..40 {
        let mut blk = fatten(child_of(&params, &parent, height, key, b"side-b"));
        if i == 19 {
            let out = &mut blk.txs[0].outputs[0];
            out.amount = Amount::from_units(out.amount.units() + 1).unwrap();
            blk = seal(blk);
        }
        height = height.next();
        parent = blk.clone();
        branch.push(blk);
    }
    let bad = branch[19].hash();
    a.reset_body_cache_peak();
    let mut invalidated = Vec::new();
    for blk in &branch {
        // Blocks above the invalid one are refused once it is known invalid.
        if let Ok(out) = a.accept_block(blk, blk.header.time) {
            invalidated.extend(settle(&mut a, &mut store, out).1);
        }
    }
    assert_eq!(
        invalidated,
        vec![bad],
        "the bad block was found when connected"
    );
    assert_eq!(a.tip().hash, old_tip, "back on the old chain");
    let all: Vec<Block> = common.iter().chain(&old).cloned().collect();
    assert_eq!(
        a.utxo(),
        replay(&params, &all).utxo(),
        "same UTXO set as a replay"
    );
    let peak = a.body_cache_peak();
    let bound = CACHE + biggest(&old).max(biggest(&branch));
    assert!(
        peak <= bound,
        "the cache peaked at {peak} bytes (bound {bound})"
    );
    let loaded = Chain::load(params.clone(), store.load().unwrap()).unwrap();
    assert_eq!(loaded.tip().hash, old_tip);
    assert_eq!(loaded.utxo(), a.utxo());
}

#[test]
fn a_restart_in_the_middle_of_a_switch_finishes_it() {
    let params = Params::test();
    let mut store = MemStore::new();
    let mut a = Chain::new(params.clone());
    a.set_body_cache_bytes(CACHE);
    let common = grow(&mut a, &mut store, 10, b"common");
    let mut b = replay(&params, &common);
    let mut b_store = store.clone();
    grow(&mut a, &mut store, 30, b"side-a");
    let branch = grow(&mut b, &mut b_store, 31, b"side-b");
    let mut saved = Vec::new();
    for blk in &branch {
        let out = a.accept_block(blk, blk.header.time).unwrap();
        saved.clear();
        settle_saving(&mut a, &mut store, out, &mut saved);
    }
    assert_eq!(a.tip().hash, b.tip().hash);
    assert!(
        saved.len() > 10,
        "the switch was written in steps ({})",
        saved.len()
    );
    let all: Vec<Block> = common.iter().chain(&branch).cloned().collect();
    let replayed = replay(&params, &all);
    // A node started over a store a crash left in the middle goes on with the switch by
    // itself, asking its store for what it lacks.
    let mut middle = saved[saved.len() / 2].clone();
    let mut stored = middle.load().unwrap();
    assert_ne!(stored.tip, Some(b.tip().hash), "the store is mid-switch");
    for header in &stored.headers.clone() {
        let (block, undo) = middle.load_block(&header.hash()).unwrap();
        stored.blocks.push(block.unwrap());
        if let Some(undo) = undo {
            stored.undo.insert(header.hash(), Some(undo));
        }
    }
    let mut sim = tabcoin_core::sim::Sim::new(params.clone());
    let mut config = tabcoin_core::sim::Sim::config(tabcoin_core::wire::NodeKind::Relay, 1, &[]);
    config.body_cache_bytes = CACHE;
    let n = sim.add_node(config, stored);
    assert!(sim.run_until_for(60_000, |s| s.node(n).chain().tip().hash == b.tip().hash));
    assert_eq!(sim.node(n).chain().utxo(), replayed.utxo());
    // A crash after any of those writes: the restarted chain finishes the switch.
    for (i, mut crashed) in saved.into_iter().enumerate().step_by(7) {
        let stored = crashed.load().unwrap();
        let mut restarted = Chain::load_with_cache(params.clone(), stored, CACHE).unwrap();
        let out = restarted.resume();
        settle(&mut restarted, &mut crashed, out);
        assert_eq!(restarted.tip().hash, b.tip().hash, "crash after write {i}");
        assert_eq!(restarted.utxo(), replayed.utxo(), "crash after write {i}");
    }
}

#[test]
fn a_node_reorganises_deeper_than_its_cache_and_returns_the_lost_payment() {
    use tabcoin_core::sim::Sim;
    use tabcoin_core::store::ChangeSet;
    use tabcoin_core::wire::NodeKind;
    const MINUTE: u64 = 60_000;
    const SMALL: usize = 2 * 1024;
    let mut sim = Sim::new(Params::test());
    for (seed, boot) in [(1u8, 1usize), (2, 0)] {
        let mut c = Sim::config(NodeKind::Relay, seed, &[boot]);
        c.body_cache_bytes = SMALL;
        c.mining_key = Some(wallet(seed, &sim.params).public_key());
        sim.add_node(c, ChangeSet::default());
    }
    sim.run_for(MINUTE);
    for _ in 0..4 {
        sim.mine(0);
        assert!(sim.run_until_for(MINUTE, |s| s.converged()));
    }
    sim.partition(&[0]);
    // Node 0 pays wallet 3 in the first block of its side, then both sides grow apart;
    // node 1's side is longer, so node 0 undoes 30 blocks it holds only in its store.
    let pay = {
        let n = sim.node(0);
        wallet(1, &sim.params)
            .pay(
                n.chain(),
                n.mempool(),
                wallet(3, &sim.params).public_key(),
                Amount::from_units(5_000).unwrap(),
                2_000,
                None,
            )
            .unwrap()
    };
    let txid = pay.txid();
    sim.submit(0, pay);
    sim.run_for(1_000);
    let mut mined = Vec::new();
    for _ in 0..30 {
        mined.push(sim.mine(0));
    }
    assert!(
        mined[0].txs.iter().any(|t| t.txid() == txid),
        "mined on side A"
    );
    for _ in 0..32 {
        sim.mine(1);
    }
    sim.run_for(1_000);
    let loads_before = sim.sim_node(0).store.loads;
    sim.heal();
    assert!(sim.run_until_for(5 * MINUTE, |s| s.converged()));
    assert_eq!(
        sim.node(0).chain().tip().hash,
        sim.node(1).chain().tip().hash
    );
    assert!(
        sim.sim_node(0).store.loads - loads_before >= 30,
        "undo data and bodies came from the store"
    );
    let peak = sim.node(0).chain().body_cache_peak();
    let bound = SMALL + biggest(&mined);
    assert!(
        peak <= bound,
        "node 0's cache peaked at {peak} bytes (bound {bound})"
    );
    assert!(
        sim.node(0).mempool().contains(&txid),
        "the payment of the undone branch is back in the pool"
    );
}
