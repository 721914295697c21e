//! The UTXO digest (`UtxoSet::digest`, CONSENSUS.md "Test vectors") is what the relay's
//! `/api/status` (`utxo_digest`) and the page's `node.status().utxoDigest` report, and what the
//! end-to-end partition test (tests/network-heals.test.mjs) compares across nodes and against a
//! replay. These tests pin it to its written definition, recomputed here from the set's public
//! iteration API alone, so a change of the set's internal representation cannot change it
//! silently; and check that a reorg's result has the digest of a replay of the winning chain.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use tabcoin_core::chain::Chain;
use tabcoin_core::encode::put_varint;
use tabcoin_core::hash::{Hash256, sha256d};
use tabcoin_core::mempool::Mempool;
use tabcoin_core::params::Params;
use tabcoin_core::testkit::{extend, extend_empty, wallet};
use tabcoin_core::units::Amount;
use tabcoin_core::utxo::UtxoSet;

/// CONSENSUS.md: SHA-256d over the concatenation, in outpoint order, of
/// `txid (32) ‖ vout (u32 LE) ‖ amount (u64 LE) ‖ key (32) ‖ height (varint) ‖ coinbase (1 byte)`.
fn digest_as_written(set: &UtxoSet) -> Hash256 {
    let mut entries: Vec<_> = set.iter().collect();
    // In outpoint order whatever order iteration gives: txid bytes, then vout numerically.
    entries.sort_by(|(a, _), (b, _)| (a.txid.as_bytes(), a.vout).cmp(&(b.txid.as_bytes(), b.vout)));
    let mut buf = Vec::new();
    for (op, coin) in entries {
        buf.extend_from_slice(op.txid.as_bytes());
        buf.extend_from_slice(&op.vout.to_le_bytes());
        buf.extend_from_slice(&coin.output.amount.units().to_le_bytes());
        buf.extend_from_slice(coin.output.key.as_bytes());
        put_varint(&mut buf, coin.height.0);
        buf.push(u8::from(coin.coinbase));
    }
    sha256d(&buf)
}

#[test]
fn the_digest_is_its_written_definition() {
    let params = Params::test();
    let mut chain = Chain::new(params.clone());
    let (a, b) = (wallet(1, &params), wallet(2, &params));
    assert_eq!(
        chain.utxo().digest(),
        digest_as_written(chain.utxo()),
        "genesis only"
    );
    extend_empty(&mut chain, 4, a.public_key(), b"a");
    // A payment: non-coinbase outputs (change and payee), a spent coinbase.
    let pay = a
        .pay(
            &chain,
            &Mempool::new(usize::MAX, 0),
            b.public_key(),
            Amount::from_units(12_345).unwrap(),
            1_000,
            None,
        )
        .unwrap();
    extend(&mut chain, &[pay], b.public_key(), b"b").unwrap();
    assert!(chain.utxo().len() >= 6);
    assert_eq!(chain.utxo().digest(), digest_as_written(chain.utxo()));
}

#[test]
fn after_a_reorg_the_digest_equals_a_replay_of_the_winning_chain() {
    let params = Params::test();
    let (a, b) = (wallet(1, &params), wallet(2, &params));
    let mut base = Chain::new(params.clone());
    let shared = extend_empty(&mut base, 3, a.public_key(), b"shared");
    // Side A: 2 blocks with a payment; side B: 3 empty blocks (more work: it wins).
    let mut side_a = base.clone();
    extend_empty(&mut side_a, 1, a.public_key(), b"side a");
    let pay = a
        .pay(
            &side_a,
            &Mempool::new(usize::MAX, 0),
            b.public_key(),
            Amount::from_units(777).unwrap(),
            1_000,
            None,
        )
        .unwrap();
    let (a2, _) = extend(&mut side_a, &[pay], a.public_key(), b"side a").unwrap();
    let mut side_b = base.clone();
    let won = extend_empty(&mut side_b, 3, b.public_key(), b"side b");
    let before = side_a.utxo().digest();
    for blk in &won {
        side_a.accept_block(blk, blk.header.time).unwrap();
    }
    assert_eq!(
        side_a.tip().hash,
        side_b.tip().hash,
        "the chain with more work wins"
    );
    assert_ne!(side_a.utxo().digest(), before);
    // A replay from genesis of the winning chain alone.
    let mut replay = Chain::new(params);
    for blk in shared.iter().chain(&won) {
        replay.accept_block(blk, blk.header.time).unwrap();
    }
    assert_eq!(side_a.utxo().digest(), replay.utxo().digest());
    assert_eq!(side_a.utxo().digest(), digest_as_written(replay.utxo()));
    assert_ne!(a2.hash(), side_a.tip().hash);
}
