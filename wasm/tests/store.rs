//! The browser store under a dying tab: the write queue (merged transactions,
//! back-pressure, folds of the UTXO log into snapshots, bodies stored before their parents')
//! and the repair path, killed at many points, must always leave a store that loads and
//! equals a replay of the blocks it holds.
//! Run with `wasm-pack test --headless --chrome wasm --test store`.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use gloo::timers::future::TimeoutFuture;
use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit::{block_with, child_of, wallet};
use tabcoin_wasm::idb::{IdbStore, StoreError, WARM_BLOCKS, body_reads, snapshot_chunks};
use tabcoin_wasm::queue::{Limits, Writer};
use tabcoin_wasm::repair::{REPAIR_MARK, repair};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn db_name(test: &str) -> String {
    format!("tabcoin-store-{test}-{}", js_sys::Date::now())
}

/// `n` blocks on the test network with a fork that is reorganised onto half way, and the
/// ChangeSets the chain emitted while accepting them, in order.
fn sync_changes(n: usize) -> (Vec<Block>, Vec<ChangeSet>) {
    let params = Params::test();
    let key = wallet(1, &params).public_key();
    let mut chain = Chain::new(params.clone());
    let mut blocks = Vec::new();
    let mut changes = Vec::new();
    fn accept(chain: &mut Chain, b: Block, blocks: &mut Vec<Block>, changes: &mut Vec<ChangeSet>) {
        changes.push(chain.accept_block(&b, b.header.time).unwrap().changes);
        blocks.push(b);
    }
    for _ in 0..n / 2 {
        let b = block_with(&chain, &[], key, b"a");
        accept(&mut chain, b, &mut blocks, &mut changes);
    }
    // A side branch from 3 below the tip that becomes longer: a reorg in the middle.
    let mut side = Chain::new(params.clone());
    for b in &blocks[..blocks.len() - 3] {
        side.accept_block(b, b.header.time).unwrap();
    }
    for _ in 0..5 {
        let b = block_with(&side, &[], wallet(2, &params).public_key(), b"b");
        side.accept_block(&b, b.header.time).unwrap();
        accept(&mut chain, b, &mut blocks, &mut changes);
    }
    while blocks.len() < n {
        if blocks.len() % 10 == 7 {
            // Out of order, as from several peers: both headers, then the child's body
            // (stored while its parent is only a header), then the parent's. A kill in
            // between leaves a stored body that does not link.
            let b1 = block_with(&chain, &[], key, b"d");
            let b2 = child_of(&params, &b1, chain.height().next(), key, b"e");
            for h in [&b1.header, &b2.header] {
                chain.accept_header(h, h.time).unwrap();
            }
            let early = chain.accept_block(&b2, b2.header.time).unwrap();
            assert!(early.connected.is_empty());
            changes.push(early.changes);
            changes.push(chain.accept_block(&b1, b1.header.time).unwrap().changes);
            blocks.push(b1);
            blocks.push(b2);
            continue;
        }
        let b = block_with(&chain, &[], key, b"c");
        accept(&mut chain, b, &mut blocks, &mut changes);
    }
    (blocks, changes)
}

/// Loads of a store holding a body stored before its parent's (see `sync_changes`).
static UNLINKED_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The chain a store holds must load (from headers, the UTXO set and the tip: no body),
/// and equal a fresh replay of the stored blocks.
async fn assert_consistent(store: &IdbStore) -> Chain {
    let params = Params::test();
    let reads = body_reads();
    let stored = store.load().await.unwrap();
    // No body beyond the cache warm-up: the newest active blocks.
    let warm = stored.blocks.len();
    assert_eq!(
        body_reads() - reads,
        warm as u64,
        "start-up read more bodies"
    );
    assert!(warm <= WARM_BLOCKS);
    let (blocks, bad) = store.scan_blocks().await.unwrap();
    assert!(bad.is_empty(), "stored bodies that do not decode: {bad:?}");
    assert_eq!(
        stored.headers.len(),
        blocks.len(),
        "a stored body without its header or the reverse"
    );
    let loaded = Chain::load(params.clone(), stored).expect("the store loads");
    let mut replay = Chain::new(params);
    let (ordered, unlinked) =
        tabcoin_wasm::repair::parents_first(replay.genesis_hash(), blocks.clone());
    // A body stored before its parent's (out of order) by a tab that died before the parent
    // came does not link: start-up leaves it out, and the node downloads it again.
    for b in &unlinked {
        assert!(
            loaded.entry(&b.hash()).is_none(),
            "an unlinked stored block was loaded"
        );
    }
    if !unlinked.is_empty() {
        UNLINKED_SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    for b in &ordered {
        replay.accept_block(b, u64::MAX / 4).unwrap();
    }
    assert_eq!(
        loaded.tip().hash,
        replay.tip().hash,
        "tip differs from a replay"
    );
    assert_eq!(loaded.active_chain(), replay.active_chain());
    assert_eq!(
        loaded.utxo(),
        replay.utxo(),
        "UTXO set differs from a replay"
    );
    assert_eq!(warm, WARM_BLOCKS.min(loaded.height().0 as usize), "warm-up");
    for h in &loaded.active_chain()[1..] {
        let (_, stored) = store.load_block(h).await.unwrap();
        assert_eq!(stored.as_ref(), replay.undo_data(h), "undo data differs");
    }
    loaded
}

const TEST_LIMITS: Limits = Limits {
    batch_bytes: 4 << 20,
    batch_changesets: 3,
    high_blocks: 8,
    high_bytes: 8 << 20,
    low_blocks: 2,
    low_bytes: 2 << 20,
    synced_slack: 2,
    // Small, so the UTXO log is folded into snapshots several times during the sync and
    // the kill points land on those writes too.
    utxo_log_min: 2048,
};

/// A writer over `store` that folds the UTXO log with snapshots of `set`, the set of every
/// ChangeSet pushed so far (what the node holds), and a function that pushes.
fn writer_with_set(store: &IdbStore) -> (Writer, impl Fn(&ChangeSet)) {
    let writer = Writer::new(store.clone(), TEST_LIMITS);
    let set = std::rc::Rc::new(std::cell::RefCell::new(tabcoin_core::utxo::UtxoSet::new()));
    let source = set.clone();
    writer.set_snapshot_source(std::rc::Rc::new(move |_| {
        let set = source.borrow();
        Some(snapshot_chunks(set.iter()))
    }));
    let w = writer.clone();
    (writer, move |cs: &ChangeSet| {
        set.borrow_mut().apply(&cs.utxo);
        w.push(cs.clone());
    })
}

/// Feeds `changes` to a writer the way the node does (waiting for room when the queue is
/// full, letting the event loop run between some blocks) on a store that dies during its
/// write transaction `kill`. Returns (blocks fed, whether the kill happened).
async fn sync_until_killed(store: &IdbStore, changes: &[ChangeSet], kill: u32) -> (usize, bool) {
    store.kill_after(kill);
    let (writer, push) = writer_with_set(store);
    let mut fed = 0;
    for (i, cs) in changes.iter().enumerate() {
        writer.room().await;
        if writer.failed().is_some() {
            break;
        }
        push(cs);
        fed += 1;
        // Validation never runs more than the high-water mark ahead of storage.
        assert!(
            writer.unstored_blocks() <= TEST_LIMITS.high_blocks,
            "{} blocks unstored",
            writer.unstored_blocks()
        );
        // Vary where the event loop gets to run, so batches differ by kill point.
        if (i as u32 + kill).is_multiple_of(4) {
            TimeoutFuture::new(0).await;
        }
    }
    match writer.flush().await {
        Ok(()) => (fed, false),
        Err(StoreError::Aborted(_)) => (fed, true),
        Err(e) => panic!("{e}"),
    }
}

#[wasm_bindgen_test]
async fn a_tab_killed_at_50_points_or_more_during_sync_restarts_consistent() {
    UNLINKED_SEEN.store(0, std::sync::atomic::Ordering::Relaxed);
    let (blocks, changes) = sync_changes(160);
    let params = Params::test();
    let mut heights = Vec::new();
    let mut kill = 0;
    loop {
        let name = db_name(&format!("kill{kill}"));
        let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
        let (fed, killed) = sync_until_killed(&store, &changes, kill).await;
        store.close();
        if !killed {
            break;
        }
        // The restart: a fresh connection sees only committed transactions.
        let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
        let loaded = assert_consistent(&store).await;
        let height = loaded.height().0 as usize;
        // What was fed but not stored is bounded by the queue's high-water mark.
        assert!(
            fed <= height + TEST_LIMITS.high_blocks + 5,
            "fed {fed}, stored {height}"
        );
        heights.push(height);
        store.close();
        kill += 1;
    }
    // Some kills fell between a child's body and its parent's: those stores loaded, the
    // unlinked body left out.
    assert!(
        UNLINKED_SEEN.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no kill fell between a body and its parent's"
    );
    // Every write transaction is a kill point in turn (`kill` counts up until a sync runs
    // unkilled), the folds of the UTXO log into snapshots included.
    assert!(heights.len() >= 50, "only {} kill points", heights.len());
    // The kill points spread over the whole sync (the reorg included).
    assert!(heights[0] < 5, "{heights:?}");
    assert!(*heights.last().unwrap() > 120, "{heights:?}");
    // An unkilled sync stores all of it, in fewer transactions than ChangeSets.
    let name = db_name("whole");
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    let (writer, push) = writer_with_set(&store);
    for cs in &changes {
        writer.room().await;
        push(cs);
    }
    writer.flush().await.unwrap();
    assert!(
        writer.transactions() < changes.len() as u64,
        "{} transactions for {} ChangeSets",
        writer.transactions(),
        changes.len()
    );
    // The UTXO log was folded into snapshots along the way, and what is stored stays
    // within about twice the set plus the fold's minimum.
    assert!(writer.snapshots() >= 2, "{} snapshots", writer.snapshots());
    let sizes = store.utxo_sizes();
    assert!(sizes.log <= sizes.snapshot.max(2048) * 4, "{sizes:?}");
    let loaded = assert_consistent(&store).await;
    let mut replay = Chain::new(params);
    for b in &blocks {
        replay.accept_block(b, u64::MAX / 4).unwrap();
    }
    assert_eq!(loaded.tip().hash, replay.tip().hash);
}

/// A store whose UTXO record is damaged, holding `blocks`.
async fn damaged_store(test: &str, changes: &[ChangeSet]) -> IdbStore {
    let params = Params::test();
    let store = IdbStore::open(&db_name(test), params.genesis_hash())
        .await
        .unwrap();
    for cs in changes {
        store.persist(cs).await.unwrap();
    }
    // The first write's UTXO log chunk (chunk numbers start at 1 in a fresh store).
    assert!(!changes[0].utxo.is_empty());
    store.damage_chunk("utxo", 1.0).await.unwrap();
    match store.load().await {
        Err(StoreError::Corrupt(e)) => assert!(e.starts_with("utxo 1:"), "{e}"),
        other => panic!("damage not detected: {other:?}"),
    }
    store
}

#[wasm_bindgen_test]
async fn a_repair_killed_at_any_point_keeps_the_blocks_and_finishes_next_time() {
    // Enough blocks that the repair writes several batches (256 ChangeSets each).
    let (blocks, changes) = sync_changes(520);
    let params = Params::test();
    let mut replay = Chain::new(params.clone());
    for b in &blocks {
        replay.accept_block(b, u64::MAX / 4).unwrap();
    }
    // Uninterrupted: linear, several bounded transactions, the whole chain back.
    let store = damaged_store("repair", &changes).await;
    let done = repair(&store, &params, "test damage").await.unwrap();
    assert!(done.transactions >= 4, "{done:?}");
    assert_eq!(done.height, replay.height().0);
    assert_eq!(store.meta(REPAIR_MARK).await.unwrap(), None);
    assert_eq!(
        assert_consistent(&store).await.tip().hash,
        replay.tip().hash
    );
    store.close();
    // Killed at each of its transactions: never fewer blocks, and the mark stays, so the
    // next start repairs again and ends where the uninterrupted repair did.
    for kill in 0..done.transactions as u32 {
        let store = damaged_store(&format!("repair{kill}"), &changes).await;
        let (before, _) = store.scan_blocks().await.unwrap();
        store.kill_after(kill);
        assert!(repair(&store, &params, "test damage").await.is_err());
        store.close();
        let store = IdbStore::open(store.name(), params.genesis_hash())
            .await
            .unwrap();
        let (after, _) = store.scan_blocks().await.unwrap();
        assert_eq!(after.len(), before.len(), "a killed repair lost blocks");
        // Killed in its first transaction, nothing changed (the damage is still seen);
        // after it, the mark says a repair is under way.
        if kill == 0 {
            assert!(store.load().await.is_err(), "the damage vanished");
        } else {
            assert!(
                store.meta(REPAIR_MARK).await.unwrap().is_some(),
                "the repair mark is gone before the repair finished"
            );
        }
        repair(&store, &params, "again").await.unwrap();
        assert_eq!(
            assert_consistent(&store).await.tip().hash,
            replay.tip().hash
        );
        store.close();
    }
}

/// The sizes of the bodies `store` holds, as `IdbStore::load` must return them.
async fn stored_sizes(store: &IdbStore) -> std::collections::BTreeMap<BlockHash, u32> {
    let (blocks, _) = store.scan_blocks().await.unwrap();
    blocks
        .iter()
        .map(|b| (b.hash(), b.encoded_len() as u32))
        .collect()
}

#[wasm_bindgen_test]
async fn a_repair_keeps_the_size_of_every_body_it_keeps() {
    let (_, changes) = sync_changes(40);
    let params = Params::test();
    let store = damaged_store("repair-sizes", &changes).await;
    let want = stored_sizes(&store).await;
    assert_eq!(want.len(), 40);
    repair(&store, &params, "test damage").await.unwrap();
    let loaded = store.load().await.unwrap();
    // A pruned tab counts its kept bodies by these sizes: a header rewritten without its
    // size makes its body weigh nothing, and the budget is overrun.
    assert_eq!(loaded.sizes, want, "body sizes after a repair");
    store.close();
}

#[wasm_bindgen_test]
async fn another_tab_upgrading_the_database_closes_this_connection() {
    let params = Params::test();
    let name = db_name("versionchange");
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    let told = std::rc::Rc::new(std::cell::Cell::new(false));
    let t = told.clone();
    store.set_on_closed(move || t.set(true));
    // Another tab opens a newer version: it must not be blocked by us.
    let factory = web_sys::window().unwrap().indexed_db().unwrap().unwrap();
    let req = factory.open_with_u32(&name, 999).unwrap();
    let (tx, rx) = futures_channel::oneshot::channel::<bool>();
    let tx = std::rc::Rc::new(std::cell::RefCell::new(Some(tx)));
    let (t1, t2) = (tx.clone(), tx.clone());
    let ok = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if let Some(tx) = t1.borrow_mut().take() {
            let _ = tx.send(true);
        }
    });
    let blocked = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if let Some(tx) = t2.borrow_mut().take() {
            let _ = tx.send(false);
        }
    });
    use wasm_bindgen::JsCast;
    req.set_onsuccess(Some(ok.as_ref().unchecked_ref()));
    req.set_onblocked(Some(blocked.as_ref().unchecked_ref()));
    assert!(
        rx.await.unwrap(),
        "the newer version was blocked by this tab"
    );
    assert!(told.get(), "the host was not told");
    assert!(store.is_closed());
    assert_eq!(
        store.put_meta("x", b"y").await.unwrap_err(),
        StoreError::Closed
    );
    if let Ok(r) = req.result() {
        r.unchecked_into::<web_sys::IdbDatabase>().close();
    }
}

#[wasm_bindgen_test]
async fn start_up_reads_headers_and_the_utxo_set_not_one_body() {
    let (blocks, changes) = sync_changes(60);
    let params = Params::test();
    let name = db_name("startup");
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    for cs in &changes {
        store.persist(cs).await.unwrap();
    }
    store.close();
    let mut replay = Chain::new(params.clone());
    for b in &blocks {
        replay.accept_block(b, u64::MAX / 4).unwrap();
    }
    assert!(replay.height().0 > 40);
    // The store's load API, as start-up uses it.
    let reads = body_reads();
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    let stored = store.load().await.unwrap();
    // Headers for all 60; bodies only for the cache warm-up (exactly the newest 16 active).
    assert_eq!(
        body_reads() - reads,
        WARM_BLOCKS as u64,
        "block bodies read by load"
    );
    assert_eq!(WARM_BLOCKS, 16);
    let newest: Vec<_> = replay.active_chain()[replay.active_chain().len() - 16..].to_vec();
    assert_eq!(
        stored.blocks.iter().map(|b| b.hash()).collect::<Vec<_>>(),
        newest
    );
    assert_eq!(stored.headers.len(), blocks.len());
    let loaded = Chain::load(params.clone(), stored).unwrap();
    assert_eq!(loaded.tip().hash, replay.tip().hash);
    assert_eq!(loaded.utxo(), replay.utxo());
    store.close();
    // The whole browser node's start over the same database (its relay refuses at once).
    let opts = js_sys::Object::new();
    let set = |k: &str, v: &str| {
        js_sys::Reflect::set(&opts, &k.into(), &v.into()).unwrap();
    };
    set("relay", "ws://127.0.0.1:9/ws");
    set("network", "test");
    set("dbName", &name);
    let reads = body_reads();
    let node = tabcoin_wasm::BrowserNode::start(opts.into())
        .await
        .expect("the node starts");
    assert_eq!(
        body_reads() - reads,
        WARM_BLOCKS as u64,
        "block bodies read at start-up"
    );
    let status = node.status();
    let height = js_sys::Reflect::get(&status, &"height".into())
        .unwrap()
        .as_f64()
        .unwrap();
    assert_eq!(height as u64, replay.height().0);
    node.stop();
}

/// Opens `name` at version 1 with the version-1 stores (the layout before `headers`).
async fn open_v1(name: &str) -> web_sys::IdbDatabase {
    open_at(
        name,
        1,
        &["blocks", "invalid", "utxo", "undo", "nodes", "meta"],
    )
    .await
}

/// Opens `name` at `version`, creating `stores`.
async fn open_at(
    name: &str,
    version: u32,
    stores: &'static [&'static str],
) -> web_sys::IdbDatabase {
    use wasm_bindgen::JsCast;
    let factory = web_sys::window().unwrap().indexed_db().unwrap().unwrap();
    let req = factory.open_with_u32(name, version).unwrap();
    let upgrade = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::Event)>::new(
        move |ev: web_sys::Event| {
            let req: web_sys::IdbOpenDbRequest = ev.target().unwrap().unchecked_into();
            let db: web_sys::IdbDatabase = req.result().unwrap().unchecked_into();
            for s in stores {
                db.create_object_store(s).unwrap();
            }
        },
    );
    req.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let db = done(req.unchecked_ref()).await;
    db.unchecked_into()
}

/// Resolves with a request's result (or once a transaction completes).
async fn done(target: &web_sys::EventTarget) -> wasm_bindgen::JsValue {
    use wasm_bindgen::JsCast;
    let (tx, rx) = futures_channel::oneshot::channel::<()>();
    let tx = std::cell::RefCell::new(Some(tx));
    let ok = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        if let Some(tx) = tx.borrow_mut().take() {
            let _ = tx.send(());
        }
    });
    for ev in ["success", "complete"] {
        target
            .add_event_listener_with_callback(ev, ok.as_ref().unchecked_ref())
            .unwrap();
    }
    rx.await.unwrap();
    match target.dyn_ref::<web_sys::IdbRequest>() {
        Some(r) => r.result().unwrap(),
        None => wasm_bindgen::JsValue::UNDEFINED,
    }
}

#[wasm_bindgen_test]
async fn a_version_1_database_upgrades_without_losing_anything() {
    use tabcoin_core::hash::to_hex;
    use wasm_bindgen::JsValue;
    let (blocks, changes) = sync_changes(40);
    let params = Params::test();
    let mut all = ChangeSet::default();
    for cs in &changes {
        all.merge(cs.clone());
    }
    // Written exactly as version 1 wrote it.
    let name = db_name("v1");
    let db = open_v1(&name).await;
    let names = js_sys::Array::of1(&"blocks".into());
    for s in ["invalid", "utxo", "undo", "meta"] {
        names.push(&s.into());
    }
    let tx = db
        .transaction_with_str_sequence_and_mode(&names, web_sys::IdbTransactionMode::Readwrite)
        .unwrap();
    let put = |store: &str, key: &str, v: &[u8]| {
        tx.object_store(store)
            .unwrap()
            .put_with_key(&js_sys::Uint8Array::from(v), &JsValue::from_str(key))
            .unwrap();
    };
    for b in &all.blocks {
        put("blocks", &b.hash().to_hex(), &b.encode());
    }
    for (op, c) in &all.utxo {
        if let Some(c) = c {
            put("utxo", &to_hex(&op.encode()), &c.encode());
        }
    }
    for (h, u) in &all.undo {
        if let Some(u) = u {
            put("undo", &h.to_hex(), &u.encode());
        }
    }
    put("meta", "genesis", params.genesis_hash().as_bytes());
    put("meta", "tip", all.tip.unwrap().as_bytes());
    put("meta", "identity", &[9; 32]);
    done(wasm_bindgen::JsCast::unchecked_ref(&tx)).await;
    db.close();

    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    let loaded = assert_consistent(&store).await;
    let mut replay = Chain::new(params);
    for b in &blocks {
        replay.accept_block(b, u64::MAX / 4).unwrap();
    }
    assert_eq!(loaded.tip().hash, replay.tip().hash);
    assert_eq!(store.meta("identity").await.unwrap(), Some(vec![9; 32]));
    // Every stored body was indexed by the upgrade: its transactions are found.
    for b in &all.blocks {
        for (pos, t) in b.txs.iter().enumerate() {
            let at = store.tx_locations(&t.txid()).await.unwrap();
            assert!(
                at.contains(&(b.hash(), pos as u32)),
                "{} not indexed",
                t.txid()
            );
        }
    }
}

#[wasm_bindgen_test]
async fn a_version_2_database_upgrades_and_keeps_its_chain() {
    use tabcoin_core::hash::to_hex;
    use wasm_bindgen::JsValue;
    let (blocks, changes) = sync_changes(40);
    let params = Params::test();
    // The first 30 ChangeSets (the reorg included) written as version 2 wrote them: a
    // `headers` record per block (header, then the body's size), undo data on its own.
    let (old, new) = changes.split_at(30);
    let mut all = ChangeSet::default();
    for cs in old {
        all.merge(cs.clone());
    }
    let name = db_name("v2");
    let db = open_at(
        &name,
        2,
        &[
            "blocks", "headers", "invalid", "utxo", "undo", "nodes", "bans", "txindex", "meta",
        ],
    )
    .await;
    let names = js_sys::Array::new();
    for s in ["blocks", "headers", "utxo", "undo", "txindex", "meta"] {
        names.push(&s.into());
    }
    let tx = db
        .transaction_with_str_sequence_and_mode(&names, web_sys::IdbTransactionMode::Readwrite)
        .unwrap();
    let put = |store: &str, key: &str, v: &JsValue| {
        tx.object_store(store)
            .unwrap()
            .put_with_key(v, &JsValue::from_str(key))
            .unwrap();
    };
    let bytes = |v: &[u8]| JsValue::from(js_sys::Uint8Array::from(v));
    for b in &all.blocks {
        let hash = b.hash().to_hex();
        put("blocks", &hash, &bytes(&b.encode()));
        let mut h = b.header.to_bytes().to_vec();
        h.extend_from_slice(&(b.encoded_len() as u32).to_le_bytes());
        put("headers", &hash, &bytes(&h));
        for (pos, t) in b.txs.iter().enumerate() {
            put(
                "txindex",
                &format!("{}{hash}", t.txid().to_hex()),
                &JsValue::from_f64(pos as f64),
            );
        }
    }
    for (op, c) in &all.utxo {
        if let Some(c) = c {
            put("utxo", &to_hex(&op.encode()), &bytes(&c.encode()));
        }
    }
    for (h, u) in &all.undo {
        if let Some(u) = u {
            put("undo", &h.to_hex(), &bytes(&u.encode()));
        }
    }
    put("meta", "genesis", &bytes(params.genesis_hash().as_bytes()));
    put("meta", "tip", &bytes(all.tip.unwrap().as_bytes()));
    put("meta", "identity", &bytes(&[9; 32]));
    done(wasm_bindgen::JsCast::unchecked_ref(&tx)).await;
    db.close();

    let replay = |n: usize| {
        let mut chain = Chain::new(Params::test());
        for b in &blocks[..n] {
            chain.accept_block(b, u64::MAX / 4).unwrap();
        }
        chain
    };
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    let loaded = assert_consistent(&store).await;
    assert_eq!(loaded.tip().hash, replay(30).tip().hash);
    assert_eq!(
        store.load().await.unwrap().sizes,
        stored_sizes(&store).await
    );
    assert_eq!(store.meta("identity").await.unwrap(), Some(vec![9; 32]));
    // It goes on in the new layout, over the old records.
    for cs in new {
        store.persist(cs).await.unwrap();
    }
    let loaded = assert_consistent(&store).await;
    assert_eq!(loaded.tip().hash, replay(40).tip().hash);
    assert_eq!(
        store.load().await.unwrap().sizes,
        stored_sizes(&store).await
    );
    for b in &blocks {
        for (pos, t) in b.txs.iter().enumerate() {
            let at = store.tx_locations(&t.txid()).await.unwrap();
            assert!(
                at.contains(&(b.hash(), pos as u32)),
                "{} not indexed",
                t.txid()
            );
        }
    }
    // A fold of the UTXO log replaces the per-coin records and the log with one snapshot
    // (schema 4) and keeps the same set.
    assert!(store.utxo_sizes().log > 0, "{:?}", store.utxo_sizes());
    let chain = replay(40);
    let chunks = snapshot_chunks(chain.utxo().iter());
    store.write_snapshot(&chunks).await.unwrap();
    assert_eq!(store.utxo_sizes().log, 0);
    assert_eq!(
        assert_consistent(&store).await.utxo(),
        chain.utxo(),
        "the set after the fold"
    );
    store.close();
    // Reopened, it stays at the current version and loads the same chain.
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    assert_eq!(
        assert_consistent(&store).await.tip().hash,
        replay(40).tip().hash
    );
}
