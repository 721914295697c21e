//! Heap bytes per coin of the in-memory UTXO set, measured with a counting allocator
//! (`cargo test -p tabcoin-core --test utxo_memory -- --nocapture` prints the figure for
//! docs/BENCHMARKS.md). The bound asserted is the goal for a compact set, so this
//! test says when the representation changes for better or worse; it is no timing.
//! Both figures run in one test because the counter is process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod counting_alloc;

use tabcoin_core::primitives::{OutPoint, TxOut, Txid};
use tabcoin_core::sig::PublicKey;
use tabcoin_core::units::{Amount, Height};
use tabcoin_core::utxo::{Coin, UtxoSet};

/// Heap bytes per coin after inserting `N` coins one by one; coin `i` is locked to
/// `key(i)`. One test at a time: the counter is process-wide.
fn per_coin(key: impl Fn(u32) -> [u8; 32]) -> f64 {
    const N: u32 = 100_000;
    let before = counting_alloc::live();
    let mut set = UtxoSet::new();
    for i in 0..N {
        let mut txid = [0u8; 32];
        txid[..4].copy_from_slice(&i.to_le_bytes());
        txid[4..8].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
        set.insert(
            OutPoint {
                txid: Txid::from_bytes(txid),
                vout: i % 3,
            },
            Coin {
                output: TxOut {
                    amount: Amount::from_units(u64::from(i)).unwrap(),
                    key: PublicKey(key(i)),
                },
                height: Height(u64::from(i)),
                coinbase: false,
            },
        );
    }
    let per_coin = (counting_alloc::live() - before) as f64 / f64::from(N);
    assert_eq!(set.len(), N as usize);
    drop(set);
    per_coin
}

#[test]
fn heap_bytes_per_coin() {
    // Keys repeat as they do on a chain (a wallet receives to one key): 100 distinct keys.
    let shared = per_coin(|i| [(i % 100) as u8; 32]);
    // The worst case: every coin locked to its own key.
    let distinct = per_coin(|i| {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k
    });
    println!(
        "utxo set: {shared:.1} heap bytes per coin (shared keys), {distinct:.1} (a key per coin)"
    );
    assert!(
        shared <= 64.0,
        "{shared} heap bytes per coin with shared keys"
    );
    assert!(
        distinct <= 160.0,
        "{distinct} heap bytes per coin with a key per coin"
    );
}
