//! Builds a relay database of signature-heavy blocks for the browser's verification pool test
//! (tests/verify-pool.test.mjs): `sig_chain DATA_DIR GOOD [--bad]`.
//!
//! Test network: 255 payers each get one mature coin (`testkit::funded_chain`), then GOOD
//! blocks of 300 one-input payments each (300 signatures per block). With `--bad`, one more
//! block of 300 payments whose transaction 261 carries a signature with one bit flipped
//! (sealed, so its merkle root and proof of work are right): only its signature check fails.
//! The tool stores that block as the tip anyway — it answers the chain's signature job with a
//! forged "all valid" result (`Chain::sigs_verified`), which a relay loading its store does
//! not re-check — so the relay serves a block that every honest node must reject. Prints
//! `{"height": H, "tip": "…", "signatures": S}` (H: the stored tip, the bad block if any).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test tool: failing loudly is right

use tabcoin_core::params::Params;
use tabcoin_core::sig::ChunkResult;
use tabcoin_core::store::Store;
use tabcoin_core::testkit::{block_with, funded_chain, payments, seal, wallet};
use tabcoin_core::wallet::Wallet;

const PAYMENTS: usize = 300;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: sig_chain DATA_DIR GOOD [--bad]";
    let dir = args.get(1).expect(usage);
    let good: usize = args.get(2).and_then(|s| s.parse().ok()).expect(usage);
    let bad = args.iter().any(|a| a == "--bad");
    let params = Params::test();
    let payers: Vec<Wallet> = (1..=255).map(|i| wallet(i, &params)).collect();
    let keys: Vec<_> = payers.iter().map(Wallet::public_key).collect();
    let (mut chain, mut all) = funded_chain(&params, &keys, 1);
    let miner = wallet(99, &params).public_key();
    let mut signatures = 0;
    for i in 0..good + usize::from(bad) {
        let txs = payments(&chain, &payers, PAYMENTS);
        let mut block = block_with(&chain, &txs, miner, format!("sig{i}").as_bytes());
        let last = i == good;
        if last {
            block.txs[261].inputs[0].sig.0[9] ^= 1;
            block = seal(block);
            chain.set_deferred_verify(true);
        }
        let outcome = chain
            .accept_block(&block, block.header.time)
            .expect("stored");
        all.merge(outcome.changes);
        for request in outcome.verify {
            // The forged verdict: every signature of the job "valid".
            let forged = ChunkResult {
                start: 0,
                len: u32::try_from(request.job.len()).unwrap(),
                first_failure: None,
            };
            all.merge(chain.sigs_verified(request.ticket, forged).changes);
        }
        assert_eq!(chain.tip().hash, block.hash(), "block {i} is the tip");
        signatures += PAYMENTS;
    }
    let mut store =
        tabcoin_relay::store::RedbStore::open(std::path::Path::new(dir), params.genesis_hash())
            .unwrap();
    store.persist(&all).unwrap();
    println!(
        "{{\"height\": {}, \"tip\": \"{}\", \"signatures\": {signatures}}}",
        chain.height().0,
        chain.tip().hash
    );
}
