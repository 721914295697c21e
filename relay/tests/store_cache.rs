#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store's page cache (`--store-cache`) is a budget: writing and reading a store many
//! times its size never makes redb hold more than it in memory.

use tabcoin_core::chain::Chain;
use tabcoin_core::params::Params;
use tabcoin_core::store::Store;
use tabcoin_core::testkit::{extend, wallet};
use tabcoin_relay::store::{FILE_NAME, RedbStore};

/// The budget under test: far below what the test writes.
const BUDGET: usize = 128 * 1024;
/// Blocks written: their bodies, headers, undo data, coins and index entries fill a file of
/// over a MiB.
const BLOCKS: usize = 1_500;

#[test]
fn the_page_cache_stays_within_its_budget_through_writes_and_reads() {
    let params = Params::test();
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open_with_cache(dir.path(), params.genesis_hash(), BUDGET).unwrap();
    let mut chain = Chain::new(params.clone());
    let key = wallet(1, &params).public_key();
    let mut peak = 0;
    for _ in 0..BLOCKS {
        let (_, outcome) = extend(&mut chain, &[], key, b"cache").unwrap();
        store.persist(&outcome.changes).unwrap();
        peak = peak.max(store.cache_used_bytes());
    }
    let stored = store.load().unwrap();
    assert_eq!(stored.headers.len(), BLOCKS);
    peak = peak.max(store.cache_used_bytes());
    for header in &stored.headers {
        let (block, undo) = store.load_block(&header.hash()).unwrap();
        assert!(block.is_some() && undo.is_some());
        peak = peak.max(store.cache_used_bytes());
    }
    let file = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
    // An unbounded cache would have held far more than the budget: the test can fail.
    assert!(
        file > 8 * BUDGET as u64,
        "the store ({file} bytes) must dwarf the budget"
    );
    assert!(peak > BUDGET / 2, "the cache is used (peak {peak} bytes)");
    assert!(
        peak <= BUDGET,
        "redb's cache held {peak} bytes, over its budget of {BUDGET}"
    );
}
