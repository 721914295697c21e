//! A pruned tab in IndexedDB: the core's pruning decisions delete old bodies and their undo
//! data, headers survive in `meta`, and the store restarts into the same chain, which goes
//! on pruning. Run with `wasm-pack test --headless --chrome wasm --test prune`.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use tabcoin_core::chain::Chain;
use tabcoin_core::params::Params;
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit::{block_with, wallet};
use tabcoin_core::units::Height;
use tabcoin_wasm::idb::IdbStore;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const DEPTH: u64 = 8;

/// Accepts `n` blocks on `chain`, writing each ChangeSet; every third write merges three
/// ChangeSets first, as the write queue does during sync.
async fn grow(chain: &mut Chain, store: &IdbStore, n: usize) {
    let params = Params::test();
    let key = wallet(1, &params).public_key();
    let mut pending = ChangeSet::default();
    for i in 0..n {
        let b = block_with(chain, &[], key, b"prune");
        pending.merge(chain.accept_block(&b, b.header.time).unwrap().changes);
        if i % 3 == 2 || i == n - 1 {
            store.persist(&std::mem::take(&mut pending)).await.unwrap();
        }
    }
}

async fn has_body(store: &IdbStore, chain: &Chain, height: u64) -> bool {
    let hash = chain.hash_at(Height(height)).unwrap();
    store.get("blocks", &hash.to_hex()).await.unwrap().is_some()
}

/// Reloads `store` as a tab does at start-up.
async fn reload(store: &IdbStore) -> Chain {
    let mut chain = Chain::load(Params::test(), store.load().await.unwrap()).expect("loads");
    chain.set_prune(Some(1), DEPTH);
    chain
}

#[wasm_bindgen_test]
async fn a_pruned_tab_deletes_old_bodies_and_restarts_consistent() {
    let name = format!("tabcoin-prune-{}", js_sys::Date::now());
    let params = Params::test();
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    let mut chain = Chain::new(params.clone());
    chain.set_prune(Some(1), DEPTH);
    grow(&mut chain, &store, 30).await;
    let kept_from = 30 + 1 - DEPTH;
    assert_eq!(chain.prune_status().kept_from, Height(kept_from));
    for h in 1..=30 {
        assert_eq!(
            has_body(&store, &chain, h).await,
            h >= kept_from,
            "height {h}"
        );
        let hash = chain.hash_at(Height(h)).unwrap();
        // Its undo data: an `undo` record or the copy in the body's record.
        let (_, undo) = store.load_block(&hash).await.unwrap();
        assert_eq!(undo.is_some(), h >= kept_from, "undo at height {h}");
    }

    // A restart gives the same chain and the same pruning state.
    let mut loaded = reload(&store).await;
    assert_eq!(loaded.tip().hash, chain.tip().hash);
    assert_eq!(loaded.active_chain(), chain.active_chain());
    assert_eq!(loaded.utxo(), chain.utxo());
    assert_eq!(loaded.prune_status(), chain.prune_status());

    // It goes on from there: more blocks, more pruning, and another restart.
    grow(&mut loaded, &store, 12).await;
    let kept_from = 42 + 1 - DEPTH;
    assert_eq!(loaded.prune_status().kept_from, Height(kept_from));
    assert!(!has_body(&store, &loaded, kept_from - 1).await);
    assert!(has_body(&store, &loaded, kept_from).await);
    let again = reload(&store).await;
    assert_eq!(again.tip().hash, loaded.tip().hash);
    assert_eq!(again.height(), Height(42));
    assert_eq!(again.utxo(), loaded.utxo());
    assert_eq!(again.prune_status(), loaded.prune_status());
    store.close();
}
