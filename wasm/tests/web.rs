//! What only a browser has: IndexedDB and the wasm build of the consensus code.
//! Run with `wasm-pack test --headless --chrome wasm`.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use tabcoin_core::chain::Chain;
use tabcoin_core::hash::decode_hex;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::BlockHeader;
use tabcoin_core::sig::{PublicKey, SigCheck, Signature, VerifyMode, verify, verify_all};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::testkit::{block_with, extend_empty, wallet};
use tabcoin_core::units::Amount;
use tabcoin_core::validation::validate_tx;
use tabcoin_wasm::MinerJob;
use tabcoin_wasm::idb::{IdbStore, StoreError};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A fresh database name per test (tests share one origin).
fn db_name(test: &str) -> String {
    format!("tabcoin-test-{test}-{}", js_sys::Date::now())
}

/// A test-network chain of `n` blocks (with a payment) and the ChangeSets that built it.
fn chain_with_changes(n: usize) -> (Chain, Vec<ChangeSet>) {
    let params = Params::test();
    let a = wallet(1, &params);
    let mut chain = Chain::new(params.clone());
    let mut changes = Vec::new();
    for _ in 0..n {
        let b = block_with(&chain, &[], a.public_key(), b"idb");
        changes.push(chain.accept_block(&b, b.header.time).unwrap().changes);
    }
    let tx = a
        .pay(
            &chain,
            &Mempool::default(),
            wallet(2, &params).public_key(),
            Amount::from_units(12_345).unwrap(),
            1_000,
            Some("stored"),
        )
        .unwrap();
    let b = block_with(&chain, &[tx], a.public_key(), b"idb");
    changes.push(chain.accept_block(&b, b.header.time).unwrap().changes);
    (chain, changes)
}

#[wasm_bindgen_test]
async fn indexeddb_store_round_trip() {
    let (chain, changes) = chain_with_changes(4);
    let params = Params::test();
    let name = db_name("roundtrip");
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    for cs in &changes {
        store.persist(cs).await.unwrap();
    }
    store.close();
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    let loaded = Chain::load(params.clone(), store.load().await.unwrap()).unwrap();
    assert_eq!(loaded.tip().hash, chain.tip().hash);
    assert_eq!(loaded.utxo(), chain.utxo());
    assert_eq!(loaded.active_chain(), chain.active_chain());
    // Another network's genesis is refused.
    store.close();
    assert_eq!(
        IdbStore::open(&name, Params::main().genesis_hash())
            .await
            .unwrap_err(),
        StoreError::WrongNetwork
    );
}

#[wasm_bindgen_test]
async fn an_aborted_transaction_leaves_the_previous_tip() {
    let (chain, changes) = chain_with_changes(3);
    let params = Params::test();
    let store = IdbStore::open(&db_name("abort"), params.genesis_hash())
        .await
        .unwrap();
    let (last, rest) = changes.split_last().unwrap();
    for cs in rest {
        store.persist(cs).await.unwrap();
    }
    let before = store.load().await.unwrap();
    let before_chain = Chain::load(params.clone(), before.clone()).unwrap();
    // The last block's write starts and is aborted before it commits.
    assert!(store.persist_and_abort(last).await.is_err());
    let after = store.load().await.unwrap();
    assert_eq!(after, before, "an aborted write changed the store");
    let after_chain = Chain::load(params.clone(), after).unwrap();
    assert_eq!(after_chain.tip().hash, before_chain.tip().hash);
    assert_ne!(after_chain.tip().hash, chain.tip().hash);
    // The same write, committed, then moves the tip.
    store.persist(last).await.unwrap();
    assert_eq!(
        Chain::load(params, store.load().await.unwrap())
            .unwrap()
            .tip()
            .hash,
        chain.tip().hash
    );
}

#[wasm_bindgen_test]
async fn a_damaged_record_is_detected_not_trusted() {
    let (_, changes) = chain_with_changes(2);
    let params = Params::test();
    let store = IdbStore::open(&db_name("damage"), params.genesis_hash())
        .await
        .unwrap();
    for cs in &changes {
        store.persist(cs).await.unwrap();
    }
    let some_block = changes[0].blocks[0].hash().to_hex();
    // Start-up reads headers: a damaged header is seen there.
    store.damage("headers", &some_block).await.unwrap();
    match store.load().await {
        Err(StoreError::Corrupt(what)) => assert!(what.contains("headers"), "{what}"),
        other => panic!("damage not detected: {other:?}"),
    }
    // A damaged body is seen when read; what still decodes can be rebuilt from.
    store.damage("blocks", &some_block).await.unwrap();
    assert_eq!(store.valid_blocks().await.unwrap().len(), changes.len() - 1);
}

#[wasm_bindgen_test]
fn the_worker_miner_kernel_mines_a_valid_block() {
    // The exact export a Web Worker runs, at test-network difficulty, checked by core.
    let params = Params::test();
    let mut chain = Chain::new(params.clone());
    extend_empty(&mut chain, 2, wallet(1, &params).public_key(), b"w");
    let mut template = block_with(&chain, &[], wallet(3, &params).public_key(), b"worker");
    template.header.nonce = 0;
    let bytes = template.header.to_bytes();
    let mut found = None;
    for worker in 0..2 {
        let mut job = MinerJob::new(&bytes, worker, 2).unwrap();
        for _ in 0..100 {
            if let Some(h) = job.step(1_000) {
                found = Some(h);
                break;
            }
        }
        assert!(job.hashes() > 0.0);
        if found.is_some() {
            break;
        }
    }
    let header = BlockHeader::from_bytes(
        &found
            .expect("a block at easy difficulty")
            .try_into()
            .unwrap(),
    );
    template.header = header;
    let out = chain.accept_block(&template, template.header.time).unwrap();
    assert!(out.tip_changed(), "core did not accept the worker's block");
    assert!(MinerJob::new(&[0u8; 10], 0, 1).is_err());
}

#[wasm_bindgen_test]
fn the_wallet_signs_what_core_verifies() {
    let params = Params::test();
    let a = wallet(1, &params);
    let mut chain = Chain::new(params.clone());
    extend_empty(&mut chain, 3, a.public_key(), b"s");
    let pool = Mempool::default();
    let tx = a
        .pay(
            &chain,
            &pool,
            wallet(2, &params).public_key(),
            Amount::from_units(777).unwrap(),
            1_000,
            None,
        )
        .unwrap();
    let fee = validate_tx(
        &tx,
        chain.utxo(),
        chain.height().next(),
        &params,
        &chain.genesis_hash(),
    )
    .unwrap();
    assert!(fee.units() > 0);
    let post = a.post(&chain, &pool, "signed in a browser", 1_000).unwrap();
    validate_tx(
        &post,
        chain.utxo(),
        chain.height().next(),
        &params,
        &chain.genesis_hash(),
    )
    .unwrap();
}

/// The published ed25519 edge cases give the same verdicts here as in the native build
/// (core/tests/data/ed25519-speccheck/verdicts.txt is checked natively by core's tests).
#[wasm_bindgen_test]
fn ed25519_edge_case_verdicts_match_native() {
    let cases = include_str!("../../core/tests/data/ed25519-speccheck/cases.json");
    let verdicts = include_str!("../../core/tests/data/ed25519-speccheck/verdicts.txt");
    let expected: Vec<bool> = verdicts
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().nth(1) == Some("accept"))
        .collect();
    let field = |obj: &str, name: &str| -> Vec<u8> {
        let key = format!("\"{name}\":\"");
        let start = obj.find(&key).unwrap() + key.len();
        let end = start + obj[start..].find('"').unwrap();
        decode_hex(&obj[start..end]).unwrap()
    };
    let objects: Vec<&str> = cases.split('{').skip(1).collect();
    assert_eq!(objects.len(), expected.len());
    let mut keys = Vec::new();
    let mut sigs = Vec::new();
    let mut msgs = Vec::new();
    for obj in &objects {
        keys.push(PublicKey(field(obj, "pub_key").try_into().unwrap()));
        sigs.push(Signature(field(obj, "signature").try_into().unwrap()));
        msgs.push(field(obj, "message"));
    }
    for (i, want) in expected.iter().enumerate() {
        let single = verify(&keys[i], &msgs[i], &sigs[i]).is_ok();
        assert_eq!(
            single, *want,
            "case {i}: single verdict differs from native"
        );
        let batch = verify_all(
            &[SigCheck {
                key: &keys[i],
                msg: &msgs[i],
                sig: &sigs[i],
            }],
            VerifyMode::Batch,
        )
        .is_ok();
        assert_eq!(batch, *want, "case {i}: batch verdict differs");
    }
}

/// A ban the node makes is written to IndexedDB (a ChangeSet entry, as the tab's writer
/// does) and holds after a restart over the same database, until it runs out.
#[wasm_bindgen_test]
async fn a_ban_survives_a_restart_until_it_expires() {
    use tabcoin_core::node::{BAN_MS, DisconnectReason, Input, Node, NodeConfig, Output};
    use tabcoin_core::wire::NodeKind;
    let params = Params::test();
    let name = db_name("bans");
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    let config = NodeConfig::new(NodeKind::Browser, [5; 32]);
    let relay = "ws://127.0.0.1:7/ws".to_string();
    // Runs `input` and writes every ChangeSet; whether `peer` was refused as banned.
    async fn step(node: &mut Node, store: &IdbStore, now: u64, input: Input, peer: u64) -> bool {
        node.handle(now, input);
        let mut banned = false;
        while let Some(out) = node.poll_output() {
            match out {
                Output::Persist(cs) => store.persist(&cs).await.unwrap(),
                Output::Disconnect {
                    peer: p,
                    reason: DisconnectReason::Banned,
                } if p == peer => banned = true,
                _ => {}
            }
        }
        banned
    }
    let now = 1_800_000_000_000;
    let mut node = Node::new(config.clone(), params.clone(), ChangeSet::default()).unwrap();
    let connect = |peer| Input::Connected {
        peer,
        outbound: true,
        remote: relay.clone(),
    };
    assert!(!step(&mut node, &store, now, connect(1), 1).await);
    // An unknown message type before the handshake: the relay is banned.
    let garbage = Input::Received {
        peer: 1,
        bytes: vec![0xff, 0x00, 0x13],
    };
    step(&mut node, &store, now + 10, garbage, 1).await;
    assert!(
        step(&mut node, &store, now + 20, connect(2), 2).await,
        "not banned at all"
    );
    store.close();
    drop(node);

    // Restart over the same database.
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    let stored = store.load().await.unwrap();
    assert_eq!(stored.bans.keys().collect::<Vec<_>>(), [&relay]);
    let mut node = Node::new(config.clone(), params.clone(), stored).unwrap();
    assert!(
        step(&mut node, &store, now + 60_000, connect(3), 3).await,
        "the ban did not survive the restart"
    );
    // Once it runs out the relay is let in again, and the store forgets the ban.
    assert!(!step(&mut node, &store, now + BAN_MS + 1_000, connect(4), 4).await);
    assert!(store.load().await.unwrap().bans.is_empty());
}

/// The page finds a transaction of any block the tab keeps, though start-up loaded no body:
/// through the transaction index written with each block.
#[wasm_bindgen_test]
async fn find_tx_reads_a_kept_block_through_the_index() {
    // More blocks than the start-up cache warm-up reads.
    let (chain, changes) = chain_with_changes(tabcoin_wasm::idb::WARM_BLOCKS + 8);
    let params = Params::test();
    let name = db_name("findtx");
    let store = IdbStore::open(&name, params.genesis_hash()).await.unwrap();
    for cs in &changes {
        store.persist(cs).await.unwrap();
    }
    store.close();
    let opts = js_sys::Object::new();
    for (k, v) in [
        ("relay", "ws://127.0.0.1:9/ws"),
        ("network", "test"),
        ("dbName", name.as_str()),
    ] {
        js_sys::Reflect::set(&opts, &k.into(), &v.into()).unwrap();
    }
    let node = tabcoin_wasm::BrowserNode::start(opts.into())
        .await
        .expect("the node starts");
    let tip = chain.block(&chain.tip().hash).unwrap();
    let payment = tip.txs[1].txid().to_hex();
    let found = node.find_tx(payment.clone()).await;
    let get = |k: &str| js_sys::Reflect::get(&found, &k.into()).unwrap();
    assert_eq!(get("txid").as_string().unwrap(), payment);
    assert_eq!(get("status").as_string().unwrap(), "confirmed");
    assert_eq!(get("height").as_f64().unwrap() as u64, chain.height().0);
    assert_eq!(get("confirmations").as_f64().unwrap(), 1.0);
    // A coinbase of an older block, not in memory (the lookup over memory alone does not
    // see it): read through the index. An unknown txid is null.
    let old = changes[1].blocks[0].txs[0].txid().to_hex();
    assert!(node.tx(&old).is_null());
    let found = node.find_tx(old).await;
    assert_eq!(
        js_sys::Reflect::get(&found, &"height".into())
            .unwrap()
            .as_f64()
            .unwrap(),
        2.0
    );
    assert!(node.find_tx("00".repeat(32)).await.is_null());
    node.stop();
}
