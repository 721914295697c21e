//! Runs the node's signature jobs (`Output::VerifySigs`) on a pool of threads started once
//! with the relay (`--verify-threads N`: N − 1 pool threads plus the node task itself).
//!
//! How it meets the node task: the task splits a job into chunks of at least [`MIN_CHUNK`]
//! signatures (at most [`CHUNKS_PER_THREAD`] per thread), wakes the pool threads, and then
//! takes chunks itself from the same queue, like them, until none is left; it waits only for
//! the chunks pool threads are in the middle of, then feeds every result to the node. A pool
//! thread the system schedules late takes fewer chunks (or none), so the task is busy for
//! about 1/N of the in-place time when the threads run, and never much longer than verifying
//! in place (at most one chunk per pool thread) when they do not; peers wait for it as they
//! did while it verified in place. Jobs too small to split (fewer than 2 × [`MIN_CHUNK`]
//! signatures: a block of a few payments) are verified in place, so small blocks pay no
//! hand-off. If a pool thread is gone (it cannot panic on a verification, but if it did), the
//! task verifies the whole job in place.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tabcoin_core::sig::{ChunkResult, VerifyChunk, VerifyJob, VerifyMode};

/// Fewest signatures in a chunk. Waking a parked thread and sending a result back costs tens
/// of microseconds on a busy machine; one signature costs about 50–150 µs, so a chunk of 16
/// keeps the hand-off a few per cent of the work.
pub const MIN_CHUNK: usize = 16;

/// Most chunks per thread: small enough chunks that a thread scheduled late leaves its share
/// to the others, few enough that the results stay a handful.
pub const CHUNKS_PER_THREAD: usize = 8;

/// Threads to verify on by default: the machine's available parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The chunks of one job and the next one nobody has taken.
struct Queue {
    chunks: Vec<VerifyChunk>,
    next: AtomicUsize,
}

impl Queue {
    /// Verifies chunks until none is left (or nobody waits for results any more).
    fn work(&self, reply: &mpsc::Sender<ChunkResult>) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = self.chunks.get(i) else {
                return;
            };
            if reply.send(chunk.verify(VerifyMode::Single)).is_err() {
                return;
            }
        }
    }
}

/// One job for a pool thread and where its results go.
struct Task {
    queue: Arc<Queue>,
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
                        task.queue.work(&task.reply);
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

    /// Chunks a job of `len` signatures is split into (1: verified in place).
    pub fn parts(&self, len: usize) -> usize {
        if self.workers.is_empty() {
            return 1;
        }
        (len / MIN_CHUNK)
            .min(CHUNKS_PER_THREAD * self.threads())
            .max(1)
    }

    /// Verifies `job` (the caller takes chunks too) and returns every chunk's result.
    pub fn run(&self, job: &VerifyJob) -> Vec<ChunkResult> {
        let parts = self.parts(job.len());
        if parts == 1 {
            return job.results_in_place(1, VerifyMode::Single);
        }
        let queue = Arc::new(Queue {
            chunks: job.chunks(parts),
            next: AtomicUsize::new(0),
        });
        let (reply, results) = mpsc::channel();
        for worker in &self.workers {
            // A thread that is gone leaves its share to the others.
            let _ = worker.send(Task {
                queue: Arc::clone(&queue),
                reply: reply.clone(),
            });
        }
        queue.work(&reply);
        drop(reply);
        let out: Vec<ChunkResult> = results.iter().take(queue.chunks.len()).collect();
        if out.len() < queue.chunks.len() {
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
        let pool = Pool::new(threads);
        let results = pool.run(sigs.job());
        assert_eq!(results.len(), pool.parts(sigs.job().len()));
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
        // Transaction t is job item t - 1. With 2 threads (16 chunks of 18–19 items) 51 is in
        // chunk 2, 101 in chunk 5 and 261 in chunk 13; with 3 (18 chunks of 16–17) 51 is in
        // chunk 3, 101 in chunk 6 and 261 in chunk 15: the failure comes from a late chunk,
        // an early one, or two chunks at once, taken by any thread.
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
    /// are split into chunks of at least `MIN_CHUNK`, and one pool serves job after job.
    #[test]
    fn small_jobs_stay_in_place_and_large_ones_are_split_in_chunks() {
        let params = Params::test();
        let payers: Vec<Wallet> = (1..=255).map(|i| wallet(i, &params)).collect();
        let keys: Vec<_> = payers.iter().map(Wallet::public_key).collect();
        let (chain, _) = funded_chain(&params, &keys, 1);
        let miner = wallet(99, &params).public_key();
        let pool = Pool::new(3);
        assert_eq!(pool.threads(), 3);
        for (n, parts) in [
            (2 * MIN_CHUNK - 1, 1),
            (2 * MIN_CHUNK, 2),
            (300, 18),
            (5, 1),
        ] {
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
