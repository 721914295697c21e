//! Block bodies live in the store: a chain whose body cache holds (almost) nothing still
//! reorganises to any depth by asking its host for bodies and undo data, a store loads from
//! headers without reading bodies, and a node serves old blocks it no longer holds in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::{MINUTE, answer_loads, paying_block, replay};
use tabcoin_core::chain::{BlockOutcome, Chain};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, Transaction};
use tabcoin_core::sim::Sim;
use tabcoin_core::store::{ChangeSet, MemStore, Store};
use tabcoin_core::testkit::wallet;
use tabcoin_core::wire::NodeKind;

/// What [`settle`] saw: loads answered, blocks disconnected, and the transactions each
/// outcome returned to the pool, in the order the outcomes came.
#[derive(Default)]
struct Settled {
    loads: usize,
    disconnected: usize,
    returned: Vec<Vec<Transaction>>,
}

/// Persists `outcome` and answers every body it asks for from `store` until the chain asks
/// for nothing more.
fn settle(chain: &mut Chain, store: &mut MemStore, mut outcome: BlockOutcome) -> Settled {
    let mut seen = Settled::default();
    loop {
        store.persist(&outcome.changes).unwrap();
        seen.disconnected += outcome.disconnected.len();
        seen.returned.push(core::mem::take(&mut outcome.returned));
        if outcome.need.is_empty() {
            return seen;
        }
        seen.loads += outcome.need.len();
        outcome = answer_loads(chain, store, &outcome.need);
    }
}

/// Grows `chain` by `n` blocks with a payment each (wallet 1 pays wallet 2 once its coins
/// matured), persisting into `store`.
fn grow(chain: &mut Chain, store: &mut MemStore, n: usize, tag: &[u8]) -> Vec<Block> {
    let mut out = Vec::new();
    for _ in 0..n {
        let block = paying_block(chain, tag);
        let outcome = chain.accept_block(&block, block.header.time).unwrap();
        settle(chain, store, outcome);
        out.push(block);
    }
    out
}

#[test]
fn reorg_deeper_than_the_body_cache_reads_the_store() {
    let params = Params::test();
    let mut store = MemStore::new();
    let mut a = Chain::new(params.clone());
    // A cache of one small block: every deeper body must come from the store.
    a.set_body_cache_bytes(600);
    let common = grow(&mut a, &mut store, 12, b"common");
    let mut b = replay(&params, &common);
    let mut b_store = MemStore::new();
    let side_a = grow(&mut a, &mut store, 30, b"side-a");
    let branch = grow(&mut b, &mut b_store, 31, b"side-b");
    let before = store.loads;
    let mut disconnected = 0;
    let mut loads = 0;
    let mut returned = Vec::new();
    for blk in &branch {
        let out = a.accept_block(blk, blk.header.time).unwrap();
        let seen = settle(&mut a, &mut store, out);
        loads += seen.loads;
        disconnected += seen.disconnected;
        returned.extend(seen.returned);
    }
    // The switch went block by block through the store: each outcome returned the blocks it
    // undid, oldest first, and later outcomes undid older blocks. Together, latest outcome
    // first, they are side A's payments in chain order (what the mempool re-adds).
    let paid: Vec<Transaction> = side_a.iter().flat_map(|b| b.txs[1..].to_vec()).collect();
    assert!(!paid.is_empty(), "side A carried payments");
    assert!(
        returned.iter().filter(|r| !r.is_empty()).count() > 1,
        "the payments came back over several outcomes"
    );
    let back: Vec<Transaction> = returned.into_iter().rev().flatten().collect();
    assert_eq!(back, paid);
    assert_eq!(a.tip().hash, b.tip().hash, "switched to the longer branch");
    assert!(
        loads >= 30,
        "undo data and bodies came from the store ({loads} loads)"
    );
    assert!(store.loads > before);
    assert_eq!(disconnected, 30, "reorg depth");
    a.trim_cache();
    let (bytes, _) = a.body_cache_usage();
    assert!(
        bytes <= 600,
        "the cache is back within its budget ({bytes} bytes)"
    );
    let all: Vec<Block> = common.iter().chain(&branch).cloned().collect();
    let replayed = replay(&params, &all);
    assert_eq!(a.utxo(), replayed.utxo());
    assert_eq!(a.utxo().total_value(), a.issued());
}

#[test]
fn loading_reads_headers_not_bodies_and_reorgs_after_restart() {
    let params = Params::test();
    let mut store = MemStore::new();
    let mut a = Chain::new(params.clone());
    let common = grow(&mut a, &mut store, 5, b"common");
    grow(&mut a, &mut store, 8, b"side-a");
    let stored = store.load().unwrap();
    assert!(stored.blocks.is_empty(), "load returns no bodies");
    assert!(stored.undo.is_empty(), "load returns no undo data");
    assert_eq!(stored.headers.len(), 13);
    let mut restarted = Chain::load_with_cache(params.clone(), stored, 0).unwrap();
    assert_eq!(restarted.tip().hash, a.tip().hash);
    assert_eq!(restarted.utxo(), a.utxo());
    let mut b = replay(&params, &common);
    let branch = grow(&mut b, &mut MemStore::new(), 9, b"side-b");
    for blk in &branch {
        let out = restarted.accept_block(blk, blk.header.time).unwrap();
        settle(&mut restarted, &mut store, out);
    }
    assert_eq!(restarted.tip().hash, b.tip().hash);
    assert_eq!(restarted.utxo(), b.utxo());
}

#[test]
fn a_lost_side_branch_body_is_downloaded_again_not_trusted() {
    let params = Params::test();
    let mut store = MemStore::new();
    let mut a = Chain::new(params.clone());
    a.set_body_cache_bytes(0);
    let common = grow(&mut a, &mut store, 3, b"common");
    grow(&mut a, &mut store, 3, b"side-a");
    let mut b = replay(&params, &common);
    let branch = grow(&mut b, &mut MemStore::new(), 4, b"side-b");
    let mut need = Vec::new();
    for blk in &branch {
        let out = a.accept_block(blk, blk.header.time).unwrap();
        store.persist(&out.changes).unwrap();
        need = out.need;
    }
    assert!(!need.is_empty(), "the switch waits for the store");
    // The old branch is undone from the store, block by block, until the switch asks for
    // the first body of the new branch; the store answers "not here" for it.
    let lost = branch[0].hash();
    while need != vec![lost] {
        let hash = need[0];
        let (block, undo) = store.load_block(&hash).unwrap();
        let out = a.provide(hash, block, undo);
        store.persist(&out.changes).unwrap();
        need = out.need;
    }
    let out = a.provide(lost, None, None);
    assert_eq!(out.missing, vec![lost]);
    assert!(
        !a.has_block(&lost),
        "a body the store lost is missing again"
    );
    assert!(
        a.missing_blocks(10).contains(&lost),
        "so sync downloads it again"
    );
    let out = a.accept_block(&branch[0], branch[0].header.time).unwrap();
    settle(&mut a, &mut store, out);
    assert_eq!(a.tip().hash, b.tip().hash);
}

#[test]
fn a_node_serves_and_reorgs_blocks_it_only_has_in_its_store() {
    let mut sim = Sim::new(Params::test());
    let mut c = Sim::config(NodeKind::Relay, 1, &[1]);
    c.body_cache_bytes = 0;
    c.mining_key = Some(wallet(1, &sim.params).public_key());
    sim.add_node(c, ChangeSet::default());
    let mut c = Sim::config(NodeKind::Relay, 2, &[0]);
    c.body_cache_bytes = 0;
    c.mining_key = Some(wallet(2, &sim.params).public_key());
    sim.add_node(c, ChangeSet::default());
    sim.run_for(MINUTE);
    for _ in 0..5 {
        sim.mine(0);
    }
    assert!(sim.run_until_for(MINUTE, |s| s.converged()));
    // Both sides grow apart; node 1's branch is longer, so node 0 reorganises 6 deep with
    // nothing in its cache.
    sim.partition(&[0]);
    for _ in 0..6 {
        sim.mine(0);
    }
    for _ in 0..8 {
        sim.mine(1);
    }
    sim.heal();
    assert!(sim.run_until_for(5 * MINUTE, |s| s.converged()));
    assert_eq!(
        sim.node(0).chain().tip().hash,
        sim.node(1).chain().tip().hash
    );
    assert!(
        sim.sim_node(0).store.loads >= 6,
        "undo data came from the store"
    );
    // A newcomer syncs all 13 blocks from node 1, which holds none of them in memory.
    let c = Sim::config(NodeKind::Relay, 3, &[1]);
    let n = sim.add_node(c, ChangeSet::default());
    assert!(sim.run_until_for(5 * MINUTE, |s| s.converged()));
    assert_eq!(sim.node(n).chain().height().0, 13);
    let loads = sim.sim_node(0).store.loads + sim.sim_node(1).store.loads;
    assert!(
        loads >= 6 + 10,
        "bodies were served from the store ({loads} loads)"
    );
}

/// A body stored while its parent was only a header (blocks arrive out of order), then the
/// process dies before the parent comes: the store must still load — the orphan is left out,
/// the tip and UTXO set are as stored — and the block is downloaded and connected again.
/// (Before, `Chain::load` refused the store: "stored block … has no parent", and a relay
/// killed at that moment could not start again.)
#[test]
fn a_body_stored_before_its_parent_does_not_stop_a_restart() {
    let params = Params::test();
    let mut source = Chain::new(params.clone());
    let mut source_store = MemStore::new();
    let blocks = grow(&mut source, &mut source_store, 3, b"src");

    let mut chain = Chain::new(params.clone());
    let mut store = MemStore::new();
    let first = chain
        .accept_block(&blocks[0], blocks[0].header.time)
        .unwrap();
    settle(&mut chain, &mut store, first);
    for b in &blocks[1..] {
        chain.accept_header(&b.header, b.header.time).unwrap();
    }
    // The third block's body comes first and is stored; the second never comes.
    let early = chain
        .accept_block(&blocks[2], blocks[2].header.time)
        .unwrap();
    assert!(early.connected.is_empty());
    assert_eq!(early.changes.blocks.len(), 1);
    settle(&mut chain, &mut store, early);

    let mut reloaded = Chain::load(params, store.load().unwrap()).expect("the store loads");
    assert_eq!(reloaded.tip().hash, blocks[0].hash());
    assert_eq!(reloaded.utxo().digest(), chain.utxo().digest());
    assert!(
        reloaded.entry(&blocks[2].hash()).is_none(),
        "the orphan is left out"
    );
    // Both blocks come again: the chain reaches the source's tip and UTXO set.
    for b in &blocks[1..] {
        let outcome = reloaded.accept_block(b, b.header.time).unwrap();
        settle(&mut reloaded, &mut store, outcome);
    }
    assert_eq!(reloaded.tip().hash, source.tip().hash);
    assert_eq!(reloaded.utxo().digest(), source.utxo().digest());
}
