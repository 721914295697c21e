//! The bench's chains: one test-network chain of 4 × `blocks` blocks whose prefixes of
//! `blocks` and 2 × `blocks` blocks are the 1× and 2× chains, each written as a relay
//! database (cached under `target/membench/`, so a later run skips generation).
//!
//! Every block after a short funding phase is ~50 KB: a coinbase and one transaction that
//! spends the `outputs` coins one of `lanes` lanes holds and pays the same amounts to
//! `outputs` new coins of the same lane, which the block `lanes` blocks later spends. So the
//! UTXO set stays at `lanes × outputs` coins (plus one coinbase per block) while the chain
//! grows, and a node's memory has no reason to grow with the chain. Every input of a
//! transaction spends a coin of one key, so the transaction carries one signature (the
//! wallet signs all inputs at once) and validation verifies it once per block.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::Encode;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::miner::{build_template, mine};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, OutPoint, Payload, Transaction, TxIn, TxOut};
use tabcoin_core::sig::Signature;
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::testkit::wallet;
use tabcoin_relay::store::RedbStore;

/// Bump when the chain's shape changes, so an old cache is not reused.
const FORMAT: u32 = 1;
/// Blocks of ChangeSets persisted in one write transaction while generating.
const PERSIST_EVERY: u64 = 250;

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    /// Blocks of the 1× chain.
    pub(crate) blocks: u64,
    /// Coins each lane holds (inputs and outputs of each block's transaction).
    pub(crate) outputs: usize,
    /// Lanes: a coin is spent this many blocks after the block that made it.
    pub(crate) lanes: usize,
}

/// One of the chains, as a relay database.
#[derive(Clone, Debug)]
pub(crate) struct Made {
    pub(crate) scale: u64,
    pub(crate) blocks: u64,
    /// Encoded bytes of its blocks (genesis excluded).
    pub(crate) bytes: u64,
    pub(crate) tip: String,
    /// A directory holding `chain.redb` with this chain.
    pub(crate) dir: PathBuf,
}

/// The 1×, 2× and 4× chains of `spec` under `cache` (generated unless already there), and
/// the seconds generation took (0 when cached).
pub(crate) fn chains(cache: &Path, spec: Spec) -> (Vec<Made>, f64) {
    let root = cache.join(format!(
        "chain-v{FORMAT}-{}x{}x{}",
        spec.blocks, spec.outputs, spec.lanes
    ));
    let meta = root.join("meta.txt");
    if let Some(made) = read_meta(&root, &meta) {
        return (made, 0.0);
    }
    let t0 = Instant::now();
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("create the chain cache");
    let made = generate(&root, spec);
    let text: String = made
        .iter()
        .map(|m| format!("{} {} {} {}\n", m.scale, m.blocks, m.bytes, m.tip))
        .collect();
    // Written last: its presence says every database is complete.
    std::fs::write(&meta, text).expect("write the chain cache's meta");
    (made, t0.elapsed().as_secs_f64())
}

fn read_meta(root: &Path, meta: &Path) -> Option<Vec<Made>> {
    let text = std::fs::read_to_string(meta).ok()?;
    let made: Vec<Made> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let scale: u64 = f.first()?.parse().ok()?;
            Some(Made {
                scale,
                blocks: f.get(1)?.parse().ok()?,
                bytes: f.get(2)?.parse().ok()?,
                tip: (*f.get(3)?).to_string(),
                dir: root.join(format!("db-{scale}x")),
            })
        })
        .collect::<Option<_>>()?;
    (made.len() == 3 && made.iter().all(|m| m.dir.join("chain.redb").is_file())).then_some(made)
}

/// A coin of the generating wallet.
type Coin = (OutPoint, TxOut);

fn generate(root: &Path, spec: Spec) -> Vec<Made> {
    let params = Params::test();
    let genesis = params.genesis_hash();
    let total = spec.blocks * 4;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs();
    // On schedule if there is room since the genesis timestamp, closer together if not;
    // the last block just before now.
    let spacing = ((now - params.genesis_time - 600) / (total + 2))
        .clamp(1, params.target_block_time.unsigned_abs());
    let start = now - (total + 2) * spacing;
    let a = wallet(1, &params);
    let mut chain = Chain::new(params.clone());
    let work = root.join("db-4x");
    let mut store = Some(RedbStore::open(&work, genesis).expect("open the generator's store"));
    let mut batch = ChangeSet::default();
    let mut coinbases: Vec<Coin> = Vec::new();
    let mut lanes: Vec<Vec<Coin>> = Vec::new();
    let fund_from = params.coinbase_maturity + 2;
    let pool = Mempool::new(usize::MAX, 0);
    let mut bytes = 0u64;
    let mut made = Vec::new();
    for h in 1..=total {
        let tx = if h < fund_from {
            None
        } else if lanes.len() < spec.lanes {
            // Funding: a matured coinbase split into one lane of coins.
            let i = lanes.len();
            let (prev, out) = coinbases[i];
            let each = out.amount.units() / spec.outputs as u64;
            let (tx, coins) = pay(&a, &params, vec![(prev, out)], vec![each; spec.outputs]);
            lanes.push(coins);
            Some(tx)
        } else {
            let lane = ((h - fund_from) % spec.lanes as u64) as usize;
            let spent = std::mem::take(&mut lanes[lane]);
            let values = spent.iter().map(|(_, o)| o.amount.units()).collect();
            let (tx, coins) = pay(&a, &params, spent, values);
            lanes[lane] = coins;
            Some(tx)
        };
        let mut block: Block = build_template(
            &chain,
            &pool,
            a.public_key(),
            start + h * spacing,
            b"membench",
        )
        .block;
        block.txs.extend(tx);
        block.header.merkle_root = block.compute_merkle_root();
        let block = mine(block).expect("the test network's target is trivial");
        let cb = &block.txs[0];
        coinbases.push((
            OutPoint {
                txid: cb.txid(),
                vout: 0,
            },
            cb.outputs[0],
        ));
        bytes += block.encode().len() as u64;
        let outcome = chain
            .accept_block(&block, now)
            .unwrap_or_else(|e| panic!("generated block {h} is invalid: {e}"));
        batch.merge(outcome.changes);
        let checkpoint = h == spec.blocks || h == 2 * spec.blocks || h == total;
        if h % PERSIST_EVERY == 0 || checkpoint {
            let s = store
                .as_mut()
                .expect("the store is open between checkpoints");
            s.persist(&std::mem::take(&mut batch))
                .expect("persist the generated blocks");
        }
        if checkpoint {
            let scale = h / spec.blocks;
            let dir = root.join(format!("db-{scale}x"));
            if scale < 4 {
                // Close the database so the copy is of a closed file, then go on.
                drop(store.take());
                std::fs::create_dir_all(&dir).expect("create a chain's directory");
                std::fs::copy(work.join("chain.redb"), dir.join("chain.redb"))
                    .expect("copy a chain prefix");
                store = Some(RedbStore::open(&work, genesis).expect("reopen the store"));
            }
            made.push(Made {
                scale,
                blocks: h,
                bytes,
                tip: chain.tip().hash.to_string(),
                dir,
            });
        }
    }
    made
}

/// A transaction of `a` spending `spent` into coins of `values` (fee 0), and those coins.
fn pay(
    a: &tabcoin_core::wallet::Wallet,
    params: &Params,
    spent: Vec<Coin>,
    values: Vec<u64>,
) -> (Transaction, Vec<Coin>) {
    let mut tx = Transaction {
        inputs: spent
            .iter()
            .map(|(prev, _)| TxIn {
                prev: *prev,
                sig: Signature([0; 64]),
            })
            .collect(),
        outputs: values
            .iter()
            .map(|&v| TxOut {
                amount: tabcoin_core::units::Amount::from_units(v)
                    .expect("a part of a coin is a valid amount"),
                key: a.public_key(),
            })
            .collect(),
        payload: Payload::None,
    };
    let outs: Vec<TxOut> = spent.into_iter().map(|(_, o)| o).collect();
    a.sign_tx(&mut tx, &outs, &params.genesis_hash());
    let txid = tx.txid();
    let coins = tx
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let vout = u32::try_from(i).expect("fewer than 2^32 outputs");
            (OutPoint { txid, vout }, *o)
        })
        .collect();
    (tx, coins)
}
