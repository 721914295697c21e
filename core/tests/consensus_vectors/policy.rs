//! The `[policy]` section of the vectors: mempool policy (docs/CONSENSUS.md §16), not
//! consensus, published so that a reimplementation relays and builds what this one does.

use tabcoin_core::chain::Chain;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::Transaction;
use tabcoin_core::testkit::{extend_empty, wallet};
use tabcoin_core::units::Amount;

use super::Doc;

/// Mempool policy (§16, not consensus): the dust limit at several minimum fee rates (also
/// recomputed from the written formula), the package limits, and the default pool's verdict on
/// a dust output and on the 26th transaction of an unconfirmed chain.
pub(crate) fn policy(d: &mut Doc) {
    use tabcoin_core::mempool::policy::{
        MAX_ANCESTOR_BYTES, MAX_ANCESTORS, MAX_DESCENDANT_BYTES, MAX_DESCENDANTS, dust_limit,
    };
    use tabcoin_core::mempool::{DEFAULT_MAX_BYTES, DEFAULT_MIN_FEE_RATE};
    use tabcoin_core::primitives::{OutPoint, Payload, TxIn, TxOut};
    use tabcoin_core::sig::Signature;
    d.section(
        "policy",
        &[
            "Mempool policy, not consensus (section 16). Rates in units per 1000 bytes;",
            "dust limit = ceil((100 + 40) * 3 * rate / 1000) units. Verdicts: the default pool on the",
            "test network (blocks 1-3 coinbase-only, paying A), ok or this crate's error text.",
        ],
    );
    d.kv("min-fee-rate", DEFAULT_MIN_FEE_RATE);
    d.kv("pool-bytes", DEFAULT_MAX_BYTES);
    for rate in [1u64, 1_000, 2_500, 1_000_000] {
        let got = dust_limit(rate).units();
        assert_eq!(got, (140 * 3 * rate).div_ceil(1000), "the written formula");
        d.kv(&format!("dust-limit-at-{rate}"), got);
    }
    d.kv("max-ancestors", MAX_ANCESTORS);
    d.kv("max-ancestor-bytes", MAX_ANCESTOR_BYTES);
    d.kv("max-descendants", MAX_DESCENDANTS);
    d.kv("max-descendant-bytes", MAX_DESCENDANT_BYTES);

    let params = Params::test();
    let a = wallet(1, &params);
    let b = wallet(2, &params);
    let mut chain = Chain::new(params.clone());
    let genesis = chain.genesis_hash();
    let blocks = extend_empty(&mut chain, 3, a.public_key(), b"vectors");
    let coinbase = |i: usize| {
        let cb = &blocks[i].txs[0];
        (
            OutPoint {
                txid: cb.txid(),
                vout: 0,
            },
            cb.outputs[0],
        )
    };
    // A spends `prev` to `outputs` (the first of them `first`, the rest change), fee 1000.
    let spend = |prev: (OutPoint, TxOut), first: Option<u64>| {
        let fee = 1_000;
        let mut outputs = Vec::new();
        let mut change = prev.1.amount.units() - fee;
        if let Some(v) = first {
            outputs.push(TxOut {
                amount: Amount::from_units(v).unwrap(),
                key: b.public_key(),
            });
            change -= v;
        }
        outputs.push(TxOut {
            amount: Amount::from_units(change).unwrap(),
            key: a.public_key(),
        });
        let mut tx = Transaction {
            inputs: vec![TxIn {
                prev: prev.0,
                sig: Signature([0; 64]),
            }],
            outputs,
            payload: Payload::None,
        };
        a.sign_tx(&mut tx, &[prev.1], &genesis);
        tx
    };
    let verdict = |pool: &mut Mempool, tx: Transaction| {
        pool.add(tx, &chain)
            .map_or_else(|e| e.to_string(), |_| "ok".into())
    };
    let dust = dust_limit(DEFAULT_MIN_FEE_RATE).units();
    let mut pool = Mempool::default();
    d.kv(
        "output-below-dust-verdict",
        verdict(&mut pool, spend(coinbase(0), Some(dust - 1))),
    );
    d.kv(
        "output-at-dust-verdict",
        verdict(&mut pool, spend(coinbase(0), Some(dust))),
    );
    // One-in one-out transactions, each spending the previous one's only output.
    let mut pool = Mempool::default();
    let mut prev = coinbase(1);
    for depth in 1..=MAX_ANCESTORS + 1 {
        let tx = spend(prev, None);
        prev = (
            OutPoint {
                txid: tx.txid(),
                vout: 0,
            },
            tx.outputs[0],
        );
        let v = verdict(&mut pool, tx);
        if depth >= MAX_ANCESTORS {
            d.kv(&format!("chain-depth-{depth}-verdict"), v);
        } else {
            assert_eq!(v, "ok", "depth {depth}");
        }
    }
}
