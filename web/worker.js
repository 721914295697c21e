// Mining worker: one wasm instance per worker, hashing one nonce slice of the current template.
//
// main → worker: {type: 'job', header: Uint8Array(88), generation, index, count} | {type: 'stop'}
// worker → main: {type: 'ready'} | {type: 'found', header, generation}
//                | {type: 'hashes', n, generation} (about every 500 ms while working) | {type: 'error', message}
//
// Work runs in chunks of about 20 ms and yields between them through a MessageChannel (a
// setTimeout yield is clamped to 4 ms), so a new job or a stop is seen within one chunk. Every
// job carries a generation; anything computed for an older generation is dropped.

// The simd128 build hashes four nonces at once (about 2.6x here); the probe is a tiny module
// using v128 instructions, which validates only where simd128 is supported.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
let MinerJob;
let kernel = 'scalar';

async function load() {
  if (WebAssembly.validate(SIMD_PROBE)) {
    try {
      const m = await import('./pkg-simd/tabcoin_wasm.js');
      await m.default();
      kernel = 'simd128';
      return m;
    } catch {
      // Not built or failed to load: the scalar package below.
    }
  }
  const m = await import('./pkg/tabcoin_wasm.js');
  await m.default();
  return m;
}

const TARGET_CHUNK_MS = 20;
const MIN_CHUNK = 1_000;
const MAX_CHUNK = 5_000_000;
const REPORT_MS = 500;

let job = null; // the current MinerJob, or null when idle
let generation = -1; // generation of `job`
let chunk = 20_000; // nonces per step, calibrated from measured speed
let lastHashes = 0; // job.hashes at the previous accounting
let pending = 0; // hashes not yet reported
let pendingGeneration = -1;
let lastReport = 0;
let scheduled = false;
let ready = false;
const queued = []; // messages that arrived before the wasm instance was ready

const tick = new MessageChannel();
tick.port1.onmessage = () => {
  scheduled = false;
  runChunk();
};

function schedule() {
  if (!scheduled && job) {
    scheduled = true;
    tick.port2.postMessage(0);
  }
}

function fail(e) {
  self.postMessage({ type: 'error', message: e && e.message ? e.message : String(e) });
}

/** Count the hashes `job` did since the last call. */
function account() {
  if (!job) return;
  const total = Number(job.hashes);
  const d = total - lastHashes;
  lastHashes = total;
  if (d > 0) {
    if (pendingGeneration !== generation) {
      flush();
      pendingGeneration = generation;
    }
    pending += d;
  }
}

function flush() {
  if (pending > 0) self.postMessage({ type: 'hashes', n: pending, generation: pendingGeneration });
  pending = 0;
  lastReport = performance.now();
}

function dropJob() {
  if (!job) return;
  account();
  try {
    job.free();
  } catch {
    // already freed
  }
  job = null;
  flush();
}

function runChunk() {
  if (!job) return;
  const gen = generation;
  let found;
  const t0 = performance.now();
  try {
    found = job.step(chunk);
  } catch (e) {
    dropJob();
    fail(e);
    return;
  }
  const dt = performance.now() - t0;
  const before = lastHashes;
  account();
  if (!found && lastHashes === before) {
    // The slice is exhausted (no nonce left to try): idle until the next job.
    dropJob();
    return;
  }
  // Calibrate: aim for TARGET_CHUNK_MS per step, move smoothly, stay within bounds.
  if (dt > 0.5) {
    const ideal = (chunk * TARGET_CHUNK_MS) / dt;
    chunk = Math.round(Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, chunk * 0.5 + ideal * 0.5)));
  } else {
    chunk = Math.min(MAX_CHUNK, chunk * 2);
  }
  if (found && gen === generation) {
    // The template is solved: report it and go idle until the next job (the node sends a new
    // template for the new tip; more solutions of this one would only be stale siblings).
    const header = found instanceof Uint8Array ? found : new Uint8Array(found);
    dropJob();
    self.postMessage({ type: 'found', header, generation: gen });
    return;
  }
  if (performance.now() - lastReport >= REPORT_MS) flush();
  schedule();
}

function handle(msg) {
  if (!msg || typeof msg !== 'object') return;
  if (msg.type === 'job') {
    dropJob();
    try {
      const header = msg.header instanceof Uint8Array ? msg.header : new Uint8Array(msg.header);
      job = new MinerJob(header, msg.index >>> 0, Math.max(1, msg.count >>> 0));
    } catch (e) {
      job = null;
      fail(e);
      return;
    }
    generation = msg.generation;
    lastHashes = Number(job.hashes) || 0;
    lastReport = performance.now();
    schedule();
  } else if (msg.type === 'stop') {
    generation = msg.generation ?? generation + 1;
    dropJob();
  }
}

self.onmessage = (e) => {
  if (ready) handle(e.data);
  else queued.push(e.data);
};

load()
  .then((m) => {
    MinerJob = m.MinerJob;
    ready = true;
    self.postMessage({ type: 'ready', kernel });
    // Only the newest job matters; a stop after it cancels it.
    for (const m of queued.splice(0)) handle(m);
  })
  .catch(fail);
