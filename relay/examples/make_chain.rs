//! Builds a test-network chain for benchmarks: `make_chain N OUT_FILE [DATA_DIR]`.
//!
//! Blocks are coinbase-only plus a payment every tenth block, on schedule (30 s apart) and
//! ending just before now, so any node accepts them. Writes the encoded blocks to OUT_FILE
//! (each as a u32 little-endian length and the bytes) and, with DATA_DIR, a relay database
//! holding the chain. Prints the native import time of the same blocks as JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool: failing loudly is right

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::miner::{build_template, mine};
use tabcoin_core::params::Params;
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::testkit::wallet;
use tabcoin_core::units::Amount;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .expect("usage: make_chain N OUT_FILE [DATA_DIR]");
    let out = args
        .get(2)
        .expect("usage: make_chain N OUT_FILE [DATA_DIR]");
    let params = Params::test();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // On schedule if there is room since the genesis timestamp, closer together if not.
    let spacing =
        ((now - params.genesis_time - 600) / (n + 2)).clamp(1, params.target_block_time as u64);
    let start = now - (n + 2) * spacing;
    let (a, b) = (wallet(1, &params), wallet(2, &params));
    let mut chain = Chain::new(params.clone());
    let mut blocks = Vec::with_capacity(n as usize);
    let mut all = ChangeSet::default();
    for h in 1..=n {
        let mut pool = Mempool::new(usize::MAX, 0);
        if h % 10 == 0 {
            if let Ok(tx) = a.pay(
                &chain,
                &pool,
                b.public_key(),
                Amount::from_units(1_000 + h).unwrap(),
                1_000,
                Some("bench"),
            ) {
                pool.add(tx, &chain).unwrap();
            }
        }
        let time = start + h * spacing;
        let template = build_template(&chain, &pool, a.public_key(), time, b"bench").block;
        if std::env::var("MAKE_CHAIN_DEBUG").is_ok() && h % 100 == 1 {
            eprintln!(
                "h {h} time {} bits {:#x}",
                template.header.time, template.header.bits.0
            );
        }
        let block = mine(template).unwrap();
        all.merge(chain.accept_block(&block, now).unwrap().changes);
        blocks.push(block);
    }
    let mut f = std::fs::File::create(out).unwrap();
    for blk in &blocks {
        let bytes = blk.encode();
        f.write_all(&(bytes.len() as u32).to_le_bytes()).unwrap();
        f.write_all(&bytes).unwrap();
    }
    if let Some(dir) = args.get(3) {
        let mut store =
            tabcoin_relay::store::RedbStore::open(std::path::Path::new(dir), params.genesis_hash())
                .unwrap();
        store.persist(&all).unwrap();
    }
    // Native import of the same blocks: the baseline for the browser's initial sync.
    let mut times = Vec::new();
    for _ in 0..3 {
        let mut c = Chain::new(params.clone());
        let t0 = Instant::now();
        for blk in &blocks {
            c.accept_block(blk, now).unwrap();
        }
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"blocks\": {n}, \"tip\": \"{}\", \"native_import_ms\": {:.3}}}",
        chain.tip().hash,
        times[1]
    );
}
