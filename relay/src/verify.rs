//! Runs the node's signature jobs (`Output::VerifySigs`) on a pool of threads started once
//! with the relay (`--verify-threads N`: N − 1 pool threads plus the node task itself).
//!
//! How it meets the node task: the task splits a job into at most N consecutive chunks of at
//! least [`MIN_CHUNK`] signatures, hands all chunks but the first to the pool threads, verifies
//! the first itself and waits for the others, then feeds every result to the node. So the task
//! is busy for about 1/N of the in-place time (its own chunk, the pool's run at the same
//! time), never for more than verifying in place plus a hand-off to parked threads; peers wait
//! for it exactly as they did while it verified in place. Jobs too small to split (fewer than
//! 2 × [`MIN_CHUNK`] signatures: a block of a few payments) are verified in place, so small
//! blocks pay no hand-off. A pool thread that is gone (it cannot panic on a verification,
//! but if it did) makes the task verify the whole job in place.

use std::sync::mpsc;

use tabcoin_core::sig::{ChunkResult, VerifyChunk, VerifyJob, VerifyMode};

/// Fewest signatures in a chunk handed to a pool thread. Waking a parked thread and sending
/// its result back costs tens of microseconds on a busy machine; one signature costs about
/// 50–100 µs, so a chunk of 16 keeps the hand-off a few per cent of the work.
pub const MIN_CHUNK: usize = 16;

/// Threads to verify on by default: the machine's available parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// One chunk for a pool thread and where its result goes.
struct Task {
    chunk: VerifyChunk,
    reply: mpsc::Sender<ChunkResult>,
}

/// The verification pool: `threads − 1` parked threads; the caller is the last one.
#[derive(Debug)]
pub struct Pool {
    workers: Vec<mpsc::Sender<Task>>,
}

impl Pool {
    /// Starts `threads − 1` pool threads (none for 0 or 1: everything in place). A thread
    /// the system refuses is left out; the pool works with the ones it has.
    pub fn new(threads: usize) -> Pool {
        let mut workers = Vec::new();
        for i in 1..threads.max(1) {
            let (tx, rx) = mpsc::channel::<Task>();
            let spawned = std::thread::Builder::new()
                .name(format!("tabcoin-verify-{i}"))
                .spawn(move || {
                    // Ends when the pool (every sender) is dropped.
                    while let Ok(task) = rx.recv() {
                        let _ = task.reply.send(task.chunk.verify(VerifyMode::Single));
                    }
                });
            if spawned.is_ok() {
                workers.push(tx);
            } else {
                tracing::warn!("cannot start a signature verification thread");
            }
        }
        Pool { workers }
    }

    /// Threads that verify a large job: the pool's and the caller's.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Verifies `job` (the caller takes one chunk) and returns every chunk's result.
    pub fn run(&self, job: &VerifyJob) -> Vec<ChunkResult> {
        let parts = self.threads().min(job.len() / MIN_CHUNK).max(1);
        if parts == 1 {
            return job.results_in_place(1, VerifyMode::Single);
        }
        let mut chunks = job.chunks(parts).into_iter();
        let Some(own) = chunks.next() else {
            return Vec::new();
        };
        let (reply, results) = mpsc::channel();
        let mut sent = 0;
        let mut out = Vec::with_capacity(parts);
        for (worker, chunk) in self.workers.iter().zip(chunks) {
            match worker.send(Task {
                chunk,
                reply: reply.clone(),
            }) {
                Ok(()) => sent += 1,
                Err(mpsc::SendError(task)) => out.push(task.chunk.verify(VerifyMode::Single)),
            }
        }
        drop(reply);
        out.push(own.verify(VerifyMode::Single));
        out.extend(results.iter().take(sent));
        if out.len() < parts {
            // A pool thread died holding a chunk: verify the whole job here.
            return job.results_in_place(1, VerifyMode::Single);
        }
        out
    }
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

    /// The verdict on `block` with its signatures verified by a [`Pool`] of `threads` threads.
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
        let results = Pool::new(threads).run(sigs.job());
        assert_eq!(results.len(), threads);
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

    /// Jobs too small to split are verified in place (one result, no hand-off); larger ones
    /// are split over every thread of the pool, and one pool serves job after job.
    #[test]
    fn small_jobs_stay_in_place_and_large_ones_use_every_thread() {
        let params = Params::test();
        let payers: Vec<Wallet> = (1..=255).map(|i| wallet(i, &params)).collect();
        let keys: Vec<_> = payers.iter().map(Wallet::public_key).collect();
        let (chain, _) = funded_chain(&params, &keys, 1);
        let miner = wallet(99, &params).public_key();
        let pool = Pool::new(3);
        assert_eq!(pool.threads(), 3);
        for (n, parts) in [(2 * MIN_CHUNK - 1, 1), (2 * MIN_CHUNK, 2), (300, 3), (5, 1)] {
            let block = block_with(&chain, &payments(&chain, &payers, n), miner, b"p5");
            let checked = check_block(&block, &params).expect("valid");
            let mut overlay = UtxoOverlay::new(chain.utxo());
            let (_, sigs) = connect_block_unsigned(
                &checked,
                chain.height().next(),
                &mut overlay,
                &params,
                &chain.genesis_hash(),
            )
            .expect("connects");
            assert_eq!(sigs.job().len(), n);
            let results = pool.run(sigs.job());
            assert_eq!(results.len(), parts, "{n} signatures");
            assert_eq!(sigs.job().finish(&results), Ok(Some(Ok(()))));
        }
    }
}
