//! Runs the node's signature jobs (`Output::VerifySigs`) on threads: the job is split into
//! one chunk per thread, each chunk verified on its own scoped thread, and the results are
//! handed back to the node in chunk order (the node accepts any order). With one thread
//! the chunk is verified on the calling thread.

use tabcoin_core::sig::{ChunkResult, VerifyJob, VerifyMode};

/// Threads to verify on by default: the machine's available parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Verifies `job` on up to `threads` threads and returns every chunk's result.
pub fn run(job: &VerifyJob, threads: usize) -> Vec<ChunkResult> {
    let chunks = job.chunks(threads.max(1));
    if chunks.len() <= 1 {
        return job.results_in_place(1, VerifyMode::Single);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|c| s.spawn(move || c.verify(VerifyMode::Single)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("signature verification does not panic"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabcoin_core::chain::Chain;
    use tabcoin_core::params::Params;
    use tabcoin_core::primitives::Block;
    use tabcoin_core::testkit::{block_with, funded_chain, payments, seal, wallet};
    use tabcoin_core::utxo::UtxoOverlay;
    use tabcoin_core::validation::{BlockError, check_block, connect_block_unsigned};
    use tabcoin_core::wallet::Wallet;

    /// The verdict on `block` with its signatures verified by [`run`] on `threads` threads.
    fn on_threads(parent: &Chain, block: &Block, threads: usize) -> Result<(), BlockError> {
        let checked = check_block(block, parent.params())?;
        let mut overlay = UtxoOverlay::new(parent.utxo());
        let genesis = parent.genesis_hash();
        let (_, sigs) = connect_block_unsigned(
            &checked,
            parent.height().next(),
            &mut overlay,
            parent.params(),
            &genesis,
        )?;
        let results = run(sigs.job(), threads);
        assert_eq!(results.len(), threads.min(sigs.job().len()));
        let verdict = sigs
            .job()
            .finish(&results)
            .expect("results fit the job")
            .expect("every chunk answered");
        sigs.check(block, verdict, parent.params())
    }

    /// A 300-payment block with a bad signature in chunk k of 2 or 3 is rejected with the
    /// error the in-place path gives, naming the same transaction and input.
    #[test]
    fn bad_signature_in_chunk_k_on_threads_is_the_in_place_error() {
        let params = Params::test();
        // 255 payers with one coin each: only payers 0..45 pay twice (from their change), so
        // a bad signature in a payment of another payer breaks nothing but that signature.
        let payers: Vec<Wallet> = (1..=255).map(|i| wallet(i, &params)).collect();
        let keys: Vec<_> = payers.iter().map(Wallet::public_key).collect();
        let (chain, _) = funded_chain(&params, &keys, 1);
        let txs = payments(&chain, &payers, 300);
        let miner = wallet(99, &params).public_key();
        let good = block_with(&chain, &txs, miner, b"p5");
        for threads in [1, 2, 3] {
            assert_eq!(on_threads(&chain, &good, threads), Ok(()));
        }
        // Transaction t is job item t - 1. With 2 threads (items 0..150, 150..300) 51 and 101
        // are in chunk 0 and 261 in chunk 1; with 3 (0..100, 100..200, 200..300) 51 is in
        // chunk 0, 101 in chunk 1, 261 in chunk 2.
        for (bad_txs, first) in [(vec![261], 261), (vec![51], 51), (vec![261, 101], 101)] {
            let mut bad = good.clone();
            for &t in &bad_txs {
                bad.txs[t].inputs[0].sig.0[9] ^= 1;
            }
            let bad = seal(bad);
            let in_place = chain
                .clone()
                .accept_block(&bad, bad.header.time)
                .expect("stored")
                .invalidated;
            assert_eq!(in_place.len(), 1);
            let expected = in_place[0].1.clone();
            assert!(
                matches!(expected, BlockError::Tx { index, .. } if index == first),
                "{expected:?}"
            );
            for threads in [1, 2, 3] {
                assert_eq!(on_threads(&chain, &bad, threads), Err(expected.clone()));
            }
        }
    }
}
