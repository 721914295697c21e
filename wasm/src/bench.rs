//! Measurements the browser benchmark page runs (`npm run bench`): the same code paths the
//! node uses, timed inside the tab. Nothing here is used by the node itself.

use js_sys::{Array, Uint8Array};
use serde::Serialize;
use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Decode;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::Block;
use tabcoin_core::sig::{Keypair, SigCheck, VerifyMode, verify_all};
use wasm_bindgen::prelude::*;

use crate::idb::IdbStore;

fn now() -> f64 {
    js_sys::Date::now()
}

fn decode_blocks(blocks: &Array) -> Result<Vec<Block>, JsError> {
    blocks
        .iter()
        .map(|v| {
            Block::decode(&Uint8Array::new(&v).to_vec())
                .map_err(|e| JsError::new(&format!("block: {e}")))
        })
        .collect()
}

fn params_for(blocks: &[Block]) -> Params {
    let main = Params::main();
    match blocks.first() {
        Some(b) if b.header.prev == main.genesis_hash() => main,
        _ => Params::test(),
    }
}

/// Imports `blocks` (encoded, parents first) into a fresh chain in memory; milliseconds.
#[wasm_bindgen(js_name = benchImportMemory)]
pub fn bench_import_memory(blocks: Array) -> Result<f64, JsError> {
    let blocks = decode_blocks(&blocks)?;
    let mut chain = Chain::new(params_for(&blocks));
    let t0 = now();
    for b in &blocks {
        chain
            .accept_block(b, u64::MAX / 4)
            .map_err(|e| JsError::new(&e.to_string()))?;
    }
    Ok(now() - t0)
}

/// Imports `blocks` into a fresh chain and writes every ChangeSet to IndexedDB database
/// `db` — in one transaction per block, or one per record; milliseconds.
#[wasm_bindgen(js_name = benchImportIdb)]
pub async fn bench_import_idb(db: String, blocks: Array, per_record: bool) -> Result<f64, JsError> {
    let blocks = decode_blocks(&blocks)?;
    let params = params_for(&blocks);
    let store = IdbStore::open(&db, params.genesis_hash())
        .await
        .map_err(|e| JsError::new(&e.to_string()))?;
    let mut chain = Chain::new(params);
    let t0 = now();
    for b in &blocks {
        let out = chain
            .accept_block(b, u64::MAX / 4)
            .map_err(|e| JsError::new(&e.to_string()))?;
        let written = if per_record {
            store.persist_per_record(&out.changes).await
        } else {
            store.persist(&out.changes).await
        };
        written.map_err(|e| JsError::new(&e.to_string()))?;
    }
    let ms = now() - t0;
    store.close();
    Ok(ms)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyTimes {
    signatures: usize,
    single_ms: f64,
    batch_ms: f64,
}

/// Verifies `n` signatures from 16 keys with the single rule and with the batch path.
#[wasm_bindgen(js_name = benchVerify)]
pub fn bench_verify(n: usize) -> JsValue {
    let keys: Vec<Keypair> = (0..16u8)
        .map(|i| Keypair::from_seed(&[i + 1; 32]))
        .collect();
    let pubs: Vec<_> = keys.iter().map(Keypair::public_key).collect();
    let msgs: Vec<[u8; 32]> = (0..n)
        .map(|i| tabcoin_core::hash::sha256d(&(i as u64).to_le_bytes()).0)
        .collect();
    let sigs: Vec<_> = (0..n).map(|i| keys[i % 16].sign(&msgs[i])).collect();
    let checks: Vec<SigCheck<'_>> = (0..n)
        .map(|i| SigCheck {
            key: &pubs[i % 16],
            msg: &msgs[i],
            sig: &sigs[i],
        })
        .collect();
    let t0 = now();
    let single = verify_all(&checks, VerifyMode::Single).is_ok();
    let t1 = now();
    let batch = verify_all(&checks, VerifyMode::Batch).is_ok();
    let t2 = now();
    assert!(single && batch, "honest signatures verify");
    crate::to_js(&VerifyTimes {
        signatures: n,
        single_ms: t1 - t0,
        batch_ms: t2 - t1,
    })
}

/// A signature by key `seed` over `msg`, for comparing with a JS implementation.
#[wasm_bindgen(js_name = benchSign)]
pub fn bench_sign(seed: &[u8], msg: &[u8]) -> Result<Vec<u8>, JsError> {
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| JsError::new("seed: 32 bytes"))?;
    Ok(Keypair::from_seed(&seed).sign(msg).0.to_vec())
}
