// @ts-check
// P5 in the browser (tests/bench/browser.bench.mjs): a signature job of a 300-payment block's
// size verified by the page's own verification pool (web/verify-pool.js, web/verify-worker.js)
// with N workers and with 1, the job split as the node splits it for that many workers
// (`benchVerifyChunks`). Jobs run one after another, as the node hands them out while syncing.

import { VerifyPool } from './verify-pool.js';

/** @type {Map<number, VerifyPool>} */
const pools = new Map();

async function poolOf(wasm, n) {
  let pool = pools.get(n);
  if (!pool) {
    pool = new VerifyPool(wasm, { size: n });
    pools.set(n, pool);
  }
  const t0 = performance.now();
  while (pool.stats.workersReady < n) {
    if (performance.now() - t0 > 30_000) throw new Error(`${n} verification workers not ready in 30 s: ${JSON.stringify(pool.stats)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return pool;
}

let ticket = 0;

/** One job through `pool`: resolves with its results once every chunk is back. */
function runJob(pool, chunks) {
  return new Promise((resolve, reject) => {
    const t = ++ticket;
    pool.attach({
      sigsVerified: (got, results) => {
        if (got !== t) reject(new Error(`results of job ${got}, waiting for ${t}`));
        else resolve(results);
        return true;
      },
    });
    if (!pool.submit(t, chunks)) reject(new Error('the pool refused the job'));
  });
}

/**
 * Jobs of `sigs` signatures through a pool of `n` workers, back to back, for about `ms`.
 * Returns jobs, signatures, wall ms, median ms per job, the workers' busy ms (time inside
 * `verifyChunk`) and the chunks per job. Every result must say "valid".
 */
export async function verifyPoolRound(wasm, n, sigs, ms) {
  const pool = await poolOf(wasm, n);
  const chunks = wasm.benchVerifyChunks(sigs, n);
  const busy0 = pool.stats.busyMs;
  const inPlace0 = pool.stats.chunksInPlace;
  const times = [];
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    const t = performance.now();
    const results = await runJob(pool, chunks);
    times.push(performance.now() - t);
    if (results.length !== chunks.length || results.some((r) => r.length !== 13 || r[8] !== 0)) throw new Error('a chunk of valid signatures did not verify');
  }
  const wall = performance.now() - t0;
  times.sort((a, b) => a - b);
  if (pool.stats.chunksInPlace !== inPlace0) throw new Error('chunks fell back to the page: the workers failed');
  return { n, jobs: times.length, signatures: times.length * sigs, ms: wall, jobMs: times[times.length >> 1], busyMs: pool.stats.busyMs - busy0, chunks: chunks.length };
}

export function closeVerifyPools() {
  for (const p of pools.values()) p.terminate();
  pools.clear();
}
