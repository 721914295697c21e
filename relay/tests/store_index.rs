#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store's API indexes (active height → block, txid → block and position): written with
//! each connect, undone with each disconnect, rebuilt for a store written without them.

use redb::{Database, TableDefinition};
use tabcoin_core::chain::Chain;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash};
use tabcoin_core::store::Store;
use tabcoin_core::testkit::{block_with, child_of, extend, wallet};
use tabcoin_core::units::{Amount, COIN, Height};
use tabcoin_relay::store::{RedbStore, StoreReader};

fn genesis(params: &Params) -> BlockHash {
    params.genesis_block().hash()
}

/// Checks every index entry against the chain: each active block at its height, each of its
/// transactions at its position, and nothing of `gone`.
fn assert_indexes_match(reader: &StoreReader, chain: &Chain, gone: &[Block]) {
    let active = chain.active_chain();
    let listed = reader.active_blocks(u64::MAX, usize::MAX).unwrap();
    assert_eq!(listed.len(), active.len());
    for (b, hash) in listed.iter().rev().zip(active.iter()) {
        assert_eq!(b.hash, *hash);
        assert!(b.active);
    }
    for (height, hash) in active.iter().enumerate().skip(1) {
        let block = chain.block(hash).unwrap();
        for (i, t) in block.txs.iter().enumerate() {
            let (b, position) = reader.tx(&t.txid()).unwrap().expect("indexed");
            assert_eq!((b.hash, b.height, position), (*hash, height as u64, i));
        }
    }
    for block in gone {
        let stored = reader.block(&block.hash()).unwrap().expect("still stored");
        assert!(!stored.active, "a disconnected block shows as active");
        for t in &block.txs {
            if let Some((b, _)) = reader.tx(&t.txid()).unwrap() {
                assert!(b.active, "a transaction points at a disconnected block");
            }
        }
    }
}

#[test]
fn the_tx_index_follows_connects_reorgs_and_restarts() {
    let params = Params::test();
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    let reader = store.reader(params.genesis_block());
    let alice = wallet(1, &params);
    let bob = wallet(2, &params);
    let mut chain = Chain::new(params.clone());
    for _ in 0..4 {
        let (_, outcome) = extend(&mut chain, &[], alice.public_key(), b"").unwrap();
        store.persist(&outcome.changes).unwrap();
    }
    let pay = alice
        .pay(
            &chain,
            &Mempool::new(usize::MAX, 0),
            bob.public_key(),
            Amount::from_units(3 * COIN).unwrap(),
            1_000,
            None,
        )
        .unwrap();
    let paid = block_with(&chain, std::slice::from_ref(&pay), bob.public_key(), b"");
    store
        .persist(&chain.accept_block(&paid, paid.header.time).unwrap().changes)
        .unwrap();
    assert_indexes_match(&reader, &chain, &[]);
    let (b, position) = reader.tx(&pay.txid()).unwrap().unwrap();
    assert_eq!((b.hash, b.height, position), (paid.hash(), 5, 1));
    // Genesis is served from the parameters.
    assert_eq!(reader.block(&genesis(&params)).unwrap().unwrap().height, 0);
    // Unknown ids are simply absent.
    assert!(
        reader
            .tx(&tabcoin_core::primitives::Txid::from_bytes([7; 32]))
            .unwrap()
            .is_none()
    );

    // A longer branch from height 3 replaces blocks 4 and 5 (the payment leaves the chain).
    let fork = chain.hash_at(Height(3)).unwrap();
    let mut parent = chain.block(&fork).unwrap().clone();
    let mut gone = Vec::new();
    for height in 3..6 {
        let b = child_of(&params, &parent, Height(height), bob.public_key(), b"side");
        let outcome = chain.accept_block(&b, b.header.time).unwrap();
        gone.extend(
            outcome
                .disconnected
                .iter()
                .map(|h| chain.block(h).unwrap().clone()),
        );
        store.persist(&outcome.changes).unwrap();
        parent = b;
    }
    assert_eq!(gone.len(), 2, "the reorg happened");
    assert_eq!(chain.height(), Height(6));
    assert_indexes_match(&reader, &chain, &gone);
    assert!(reader.tx(&pay.txid()).unwrap().is_none());

    // Reopened, then opened as if written before the indexes existed: same answers.
    drop(store);
    {
        let db = Database::create(dir.path().join(tabcoin_relay::store::FILE_NAME)).unwrap();
        let tx = db.begin_write().unwrap();
        tx.delete_table(TableDefinition::<u64, &[u8; 32]>::new("active"))
            .unwrap();
        tx.delete_table(TableDefinition::<&[u8; 32], (&[u8; 32], u32)>::new(
            "txindex",
        ))
        .unwrap();
        tx.open_table(TableDefinition::<&str, &[u8]>::new("meta"))
            .unwrap()
            .remove("index")
            .unwrap();
        tx.commit().unwrap();
    }
    let store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    let reader = store.reader(params.genesis_block());
    assert_indexes_match(&reader, &chain, &gone);

    // Once the store is gone, reads fail instead of keeping the file open.
    drop(store);
    assert!(reader.block(&chain.tip().hash).is_err());
}
