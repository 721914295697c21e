//! Builds a test-network chain for benchmarks: `make_chain N OUT_FILE [DATA_DIR] [--payments P]`.
//!
//! Blocks are coinbase-only plus a payment every tenth block, on schedule (30 s apart) and
//! ending just before now, so any node accepts them. With `--payments P` the chain is instead
//! signature-heavy: after the first coinbase matures, one block splits it into P coins, and
//! every later block holds P payments of one input and two outputs (an amount to another key
//! and the change, which the same lane spends in the next block), so N blocks carry about
//! (N − 4)·P signatures. Writes the encoded blocks to OUT_FILE
//! (each as a u32 little-endian length and the bytes) and, with DATA_DIR, a relay database
//! holding the chain. Prints the native import time of the same blocks as JSON.
//!
//! `make_chain --import FILE [K]` only imports the blocks of a file it wrote (the median of K
//! imports into a fresh `Chain` in memory, 3 if not given) and prints that time: the browser bench runs it
//! between its browser rounds, so the native baseline is measured under the same load.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool: failing loudly is right

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::{Decode, Encode};
use tabcoin_core::mempool::Mempool;
use tabcoin_core::miner::{build_template, mine};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, OutPoint, Payload, Transaction, TxIn, TxOut};
use tabcoin_core::sig::Signature;
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::testkit::wallet;
use tabcoin_core::units::Amount;

/// The median of `k` imports of `blocks` into a fresh chain, in ms.
fn import_ms(params: &Params, blocks: &[Block], now: u64, k: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..k.max(1) {
        let mut c = Chain::new(params.clone());
        let t0 = Instant::now();
        for blk in blocks {
            c.accept_block(blk, now).unwrap();
        }
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `--import FILE [K]`: the native import time of the blocks in FILE.
fn import_only(file: &str, k: usize) {
    let data = std::fs::read(file).unwrap();
    let mut blocks = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        blocks.push(Block::decode(&rest[4..4 + len]).unwrap());
        rest = &rest[4 + len..];
    }
    let ms = import_ms(&Params::test(), &blocks, unix_now(), k);
    println!(
        "{{\"blocks\": {}, \"native_import_ms\": {ms:.3}}}",
        blocks.len()
    );
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--import") {
        let k = args
            .get(i + 2)
            .map_or(3, |k| k.parse().expect("--import FILE [K]: K a number"));
        import_only(args.get(i + 1).expect("--import FILE [K]"), k);
        return;
    }
    let payments: usize = match args.iter().position(|a| a == "--payments") {
        Some(i) => {
            let p = args
                .get(i + 1)
                .and_then(|s| s.parse().ok())
                .expect("--payments P: a number");
            args.drain(i..i + 2);
            p
        }
        None => 0,
    };
    let n: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .expect("usage: make_chain N OUT_FILE [DATA_DIR] [--payments P]");
    let out = args
        .get(2)
        .expect("usage: make_chain N OUT_FILE [DATA_DIR] [--payments P]");
    let params = Params::test();
    let now = unix_now();
    // On schedule if there is room since the genesis timestamp, closer together if not.
    let spacing =
        ((now - params.genesis_time - 600) / (n + 2)).clamp(1, params.target_block_time as u64);
    let start = now - (n + 2) * spacing;
    let (a, b) = (wallet(1, &params), wallet(2, &params));
    let mut chain = Chain::new(params.clone());
    let mut blocks: Vec<Block> = Vec::with_capacity(n as usize);
    let mut all = ChangeSet::default();
    // --payments: the coins each lane spends next (outpoint, value).
    let mut lanes: Vec<(OutPoint, u64)> = Vec::new();
    let maturity = params.coinbase_maturity;
    for h in 1..=n {
        let time = start + h * spacing;
        if payments > 0 {
            let txs = if h == maturity + 2 {
                // Split the first coinbase into one coin per lane.
                let cb = blocks[0].txs[0].clone();
                let prev = OutPoint {
                    txid: cb.txid(),
                    vout: 0,
                };
                let value = cb.outputs[0].amount.units();
                let each = value / (payments as u64 + 1);
                let mut tx = Transaction {
                    inputs: vec![TxIn {
                        prev,
                        sig: Signature([0; 64]),
                    }],
                    outputs: vec![
                        TxOut {
                            amount: Amount::from_units(each).unwrap(),
                            key: a.public_key(),
                        };
                        payments
                    ],
                    payload: Payload::None,
                };
                a.sign_tx(&mut tx, &cb.outputs[..1], &params.genesis_hash());
                let txid = tx.txid();
                lanes = (0..payments)
                    .map(|i| {
                        let vout = u32::try_from(i).unwrap();
                        (OutPoint { txid, vout }, each)
                    })
                    .collect();
                vec![tx]
            } else if h > maturity + 2 {
                lanes
                    .iter_mut()
                    .map(|(prev, value)| {
                        let (pay, fee) = (1_000 + h, 1_000);
                        let change = *value - pay - fee;
                        let spent = [TxOut {
                            amount: Amount::from_units(*value).unwrap(),
                            key: a.public_key(),
                        }];
                        let mut tx = Transaction {
                            inputs: vec![TxIn {
                                prev: *prev,
                                sig: Signature([0; 64]),
                            }],
                            outputs: vec![
                                TxOut {
                                    amount: Amount::from_units(pay).unwrap(),
                                    key: b.public_key(),
                                },
                                TxOut {
                                    amount: Amount::from_units(change).unwrap(),
                                    key: a.public_key(),
                                },
                            ],
                            payload: Payload::None,
                        };
                        a.sign_tx(&mut tx, &spent, &params.genesis_hash());
                        *prev = OutPoint {
                            txid: tx.txid(),
                            vout: 1,
                        };
                        *value = change;
                        tx
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let pool = Mempool::new(usize::MAX, 0);
            let mut block: Block =
                build_template(&chain, &pool, a.public_key(), time, b"bench").block;
            block.txs.extend(txs);
            block.header.merkle_root = block.compute_merkle_root();
            let block = mine(block).unwrap();
            all.merge(chain.accept_block(&block, now).unwrap().changes);
            blocks.push(block);
            continue;
        }
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
    let import = import_ms(&params, &blocks, now, 3);
    let bytes: usize = blocks.iter().map(|b| b.encode().len()).sum();
    let signatures: usize = blocks
        .iter()
        .flat_map(|b| b.txs.iter().skip(1))
        .map(|t| t.inputs.len())
        .sum();
    println!(
        "{{\"blocks\": {n}, \"tip\": \"{}\", \"native_import_ms\": {:.3}, \"bytes\": {bytes}, \"signatures\": {signatures}}}",
        chain.tip().hash,
        import
    );
}
