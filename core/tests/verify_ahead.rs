//! Verifying ahead (core/src/chain/verify.rs): while a switch waits for one block's
//! signatures, the jobs of the next blocks of its branch go out too, built on the outputs of
//! the blocks before them; blocks still connect in order, with the verdicts and errors of the
//! in-place path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use tabcoin_core::chain::{BlockOutcome, Chain, VerifyRequest};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::Block;
use tabcoin_core::sig::VerifyMode;
use tabcoin_core::testkit::{block_with, funded_chain, payments, seal, wallet};
use tabcoin_core::validation::{BlockError, TxError};
use tabcoin_core::wallet::Wallet;

/// Three good blocks of nine payments (three per payer, each spending the change of the one
/// before) and a fourth whose last transaction (which nothing spends: a signature is part of the txid) carries a bad signature; the chain they start
/// from. Each payer owns one coin, so every block after the first spends change its parent
/// made.
fn blocks() -> (Chain, Vec<Block>) {
    let params = Params::test();
    let payers: Vec<Wallet> = (1..=3).map(|i| wallet(i, &params)).collect();
    let keys: Vec<_> = payers.iter().map(Wallet::public_key).collect();
    let (start, _) = funded_chain(&params, &keys, 1);
    let miner = wallet(9, &params).public_key();
    let mut chain = start.clone();
    let mut blocks = Vec::new();
    for i in 0..3u8 {
        let block = block_with(&chain, &payments(&chain, &payers, 9), miner, &[i]);
        chain.accept_block(&block, block.header.time).unwrap();
        blocks.push(block);
    }
    let mut bad = block_with(&chain, &payments(&chain, &payers, 9), miner, b"bad");
    bad.txs[9].inputs[0].sig.0[7] ^= 1;
    blocks.push(seal(bad));
    (start, blocks)
}

fn feed(chain: &mut Chain, block: &Block) -> BlockOutcome {
    chain.accept_block(block, block.header.time).unwrap()
}

#[test]
fn the_next_blocks_are_verified_while_the_first_waits_and_connect_in_order() {
    let (start, blocks) = blocks();
    // Each block after the first spends outputs the block before it created: their jobs can
    // only be built on an overlay holding that block.
    for pair in blocks.windows(2) {
        let made: BTreeSet<_> = pair[0].txs.iter().map(|t| t.txid()).collect();
        assert!(
            pair[1].txs[1..]
                .iter()
                .any(|t| t.inputs.iter().any(|i| made.contains(&i.prev.txid))),
            "the test needs blocks that spend their parent's outputs"
        );
    }

    // In place: three blocks connect, the fourth is rejected at transaction 5, input 0.
    let mut in_place = start.clone();
    let mut rejected = Vec::new();
    for b in &blocks {
        rejected.extend(feed(&mut in_place, b).invalidated);
    }
    let expected = vec![(
        blocks[3].hash(),
        BlockError::Tx {
            index: 9,
            error: TxError::BadSignature { input: 0 },
        },
    )];
    assert_eq!(rejected, expected);
    assert_eq!(in_place.tip().hash, blocks[2].hash());

    // Deferred, one job at a time (the default): the second block's job waits for the first.
    let mut single = start.clone();
    single.set_deferred_verify(true);
    let asked: usize = blocks
        .iter()
        .map(|b| feed(&mut single, b).verify.len())
        .sum();
    assert_eq!((asked, single.verify_in_flight()), (1, 1));

    // Four jobs ahead: every block's job is out before the first verdict comes back.
    const AHEAD: usize = 4;
    let mut chain = start.clone();
    chain.set_deferred_verify(true);
    chain.set_verify_ahead(AHEAD);
    let mut requests: Vec<VerifyRequest> = Vec::new();
    for b in &blocks {
        let outcome = feed(&mut chain, b);
        assert!(outcome.connected.is_empty(), "committed before verified");
        requests.extend(outcome.verify);
    }
    assert_eq!(blocks.len(), AHEAD);
    assert_eq!(
        chain.verify_in_flight(),
        AHEAD,
        "one job per block, all out at once"
    );
    assert_eq!(requests.len(), AHEAD);
    assert_eq!(chain.tip().hash, start.tip().hash);
    // Each job is the one the block has when it connects: the same blocks fed to a deferred
    // chain one at a time, each answered before the next comes, ask for the same jobs.
    let mut one_by_one = start.clone();
    one_by_one.set_deferred_verify(true);
    for (b, r) in blocks.iter().zip(&requests) {
        let asked = feed(&mut one_by_one, b).verify;
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].job, r.job);
        assert!(!r.job.is_empty());
        for result in asked[0].job.results_in_place(2, VerifyMode::Single) {
            one_by_one.sigs_verified(asked[0].ticket, result);
        }
    }
    assert_eq!(one_by_one.tip().hash, blocks[2].hash());

    // Verdicts come back last block first: nothing connects until the first one's does; then
    // the three good blocks connect in order and the fourth is rejected as in place.
    let mut connected = Vec::new();
    let mut invalidated = Vec::new();
    for r in requests.iter().rev() {
        for result in r.job.results_in_place(3, VerifyMode::Single) {
            let outcome = chain.sigs_verified(r.ticket, result);
            connected.extend(outcome.connected);
            invalidated.extend(outcome.invalidated);
        }
        if r.ticket != requests[0].ticket {
            assert!(connected.is_empty(), "a later verdict connected nothing");
        }
    }
    assert_eq!(
        connected,
        blocks[..3].iter().map(Block::hash).collect::<Vec<_>>()
    );
    assert_eq!(invalidated, expected);
    assert_eq!(chain.tip().hash, in_place.tip().hash);
    assert_eq!(chain.utxo().digest(), in_place.utxo().digest());
    assert_eq!(chain.verify_in_flight(), 0);
}
