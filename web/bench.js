// The browser benchmarks: measurements that only a tab can make, driven by
// tests/bench/browser.bench.mjs (`npm run bench`), which opens web/bench.html, calls the
// functions on `window.bench`, runs the native baselines between browser rounds and writes
// the results into docs/BENCHMARKS.md.
//
// The same module is also the page's compute worker: web/bench.html loads it as a module, and
// it starts itself as a module Worker (`new Worker(import.meta.url, {type: 'module'})`), so the
// single-thread hashing and signature figures run off the main thread, each side in the same
// worker, with nothing else on it.
//
// Figures (the numbering of docs/BENCHMARKS.md):
//   P1/P2  one worker: the wasm MinerJob vs @noble/hashes and hash-wasm SHA-256d per nonce
//   P3     web/worker.js (the page's mining worker, its own protocol) with 1 and N workers
//   P5     ed25519: wasm single vs batch (benchVerify), wasm vs @noble/ed25519 on the same signatures;
//          a 300-signature job on the page's verification pool, N workers vs 1 (bench-verify.js)
//   P6     IndexedDB: benchImportIdb, one transaction per block vs one per record
//   P7     initial sync of a fresh BrowserNode from the relay; benchImportMemory for comparison

import init, * as wasm from './pkg/tabcoin_wasm.js';
import { sha256, sha512 } from './vendor/noble-hashes/sha2.js';
import * as ed from './vendor/noble-ed25519/index.js';
import { createSHA256 } from './vendor/hash-wasm/index.esm.js';
import { closeVerifyPools, verifyPoolRound } from './bench-verify.js';
import { VerifyPool } from './verify-pool.js';

const IN_WORKER = typeof document === 'undefined';

/** Compact bits of a target of 1: no hash meets it, so no hashing run ever ends early. */
export const IMPOSSIBLE_BITS = 0x0300_0001;
/** Nonces per MinerJob.step between two looks at the clock (the native example uses the same). */
const WASM_CHUNK = 65_536;
/** Nonces per clock look for the JS loops (slower per nonce, so a smaller chunk). */
const JS_CHUNK = 2_048;

// ---- shared helpers ---------------------------------------------------------------------------

export const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/**
 * The 88-byte header every hashing figure uses: version 1, fixed parent and merkle root bytes,
 * a fixed time, bits 0x03000001, nonce 0. Little-endian fields as in docs/CONSENSUS.md.
 */
export function benchHeader() {
  const h = new Uint8Array(88);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, 1, true);
  for (let i = 0; i < 32; i++) h[4 + i] = (i * 29 + 7) & 0xff; // prev
  for (let i = 0; i < 32; i++) h[36 + i] = (i * 53 + 101) & 0xff; // merkle root
  dv.setBigUint64(68, 1_790_000_000n, true); // time
  dv.setUint32(76, IMPOSSIBLE_BITS, true);
  dv.setBigUint64(80, 0n, true); // nonce
  return h;
}

/** The 32-byte big-endian target of compact `bits` (mantissa × 256^(exponent − 3)). */
function targetOf(bits) {
  const exp = bits >>> 24;
  const mant = bits & 0x007f_ffff;
  const t = new Uint8Array(32);
  for (let i = 0; i < 3; i++) {
    const byte = (mant >>> (8 * i)) & 0xff;
    const pos = 31 - (exp - 3) - i; // byte i of the mantissa, counted from its low end
    if (pos >= 0 && pos < 32) t[pos] = byte;
  }
  return t;
}

/** hash ≤ target, both 32 bytes compared as big-endian numbers (the core compares the same way). */
function meets(hash, target) {
  for (let i = 0; i < 32; i++) {
    if (hash[i] !== target[i]) return hash[i] < target[i];
  }
  return true;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the compute worker -------------------------------------------------------------------------

let simdMod = null; // the simd128 build, loaded in the bench worker where supported
const nextNonce = new Map(); // implementation → first nonce of its next run (no nonce hashed twice)

/** Hashes `header` with one implementation for about `ms`; {hashes, ms}. */
async function hashRun(impl, header, ms) {
  const target = targetOf(new DataView(header.buffer, header.byteOffset).getUint32(76, true));
  if (impl === 'wasm' || impl === 'wasm-simd') {
    // 'wasm-simd': the simd128 build (web/pkg-simd), the kernel mining workers load.
    const Job = impl === 'wasm-simd' ? simdMod?.MinerJob : wasm.MinerJob;
    if (!Job) throw new Error('the simd128 package (web/pkg-simd) did not load');
    const job = new Job(header, 0, 1);
    const t0 = performance.now();
    let t;
    do {
      if (job.step(WASM_CHUNK) !== undefined) throw new Error('a hash met the impossible target');
      t = performance.now();
    } while (t - t0 < ms);
    const hashes = Number(job.hashes);
    job.free();
    return { hashes, ms: t - t0 };
  }
  const h = header.slice();
  const dv = new DataView(h.buffer);
  const tail = h.subarray(64);
  let nonce = nextNonce.get(impl) ?? 0;
  let one; // sha256d(h) for the current nonce
  if (impl === 'noble') {
    one = () => sha256(sha256(h));
  } else if (impl === 'noble-midstate') {
    const mid = sha256.create().update(h.subarray(0, 64));
    one = () => sha256(mid.clone().update(tail).digest());
  } else if (impl === 'hashwasm' || impl === 'hashwasm-midstate') {
    const hasher = await createSHA256();
    if (impl === 'hashwasm') {
      one = () => {
        hasher.init();
        hasher.update(h);
        const first = hasher.digest('binary');
        hasher.init();
        hasher.update(first);
        return hasher.digest('binary');
      };
    } else {
      hasher.init();
      hasher.update(h.subarray(0, 64));
      const state = hasher.save();
      one = () => {
        hasher.load(state);
        hasher.update(tail);
        const first = hasher.digest('binary');
        hasher.init();
        hasher.update(first);
        return hasher.digest('binary');
      };
    }
  } else {
    throw new Error(`unknown implementation ${impl}`);
  }
  let hashes = 0;
  const t0 = performance.now();
  let t;
  do {
    for (let i = 0; i < JS_CHUNK; i++) {
      dv.setUint32(80, nonce, true);
      nonce = (nonce + 1) >>> 0;
      if (meets(one(), target)) throw new Error('a hash met the impossible target');
    }
    hashes += JS_CHUNK;
    t = performance.now();
  } while (t - t0 < ms);
  nextNonce.set(impl, nonce);
  return { hashes, ms: t - t0 };
}

/**
 * Every JS implementation gives the same SHA-256d as WebCrypto for a few nonces, and the wasm
 * MinerJob accepts exactly the nonce whose hash WebCrypto says meets an easy target.
 */
async function hashCheck(header) {
  const impls = ['noble', 'noble-midstate', 'hashwasm', 'hashwasm-midstate'];
  const h = header.slice();
  const dv = new DataView(h.buffer);
  const hasher = await createSHA256();
  for (const nonce of [0, 1, 77, 0xfffffffe]) {
    dv.setUint32(80, nonce, true);
    const want = hex(new Uint8Array(await crypto.subtle.digest('SHA-256', await crypto.subtle.digest('SHA-256', h))));
    const got = {
      noble: hex(sha256(sha256(h))),
      'noble-midstate': hex(sha256(sha256.create().update(h.subarray(0, 64)).clone().update(h.subarray(64)).digest())),
      hashwasm: (() => {
        hasher.init();
        hasher.update(h);
        const f = hasher.digest('binary');
        hasher.init();
        hasher.update(f);
        return hasher.digest('hex');
      })(),
    };
    hasher.init();
    hasher.update(h.subarray(0, 64));
    const st = hasher.save();
    hasher.load(st);
    hasher.update(h.subarray(64));
    const f2 = hasher.digest('binary');
    hasher.init();
    hasher.update(f2);
    got['hashwasm-midstate'] = hasher.digest('hex');
    for (const impl of impls) {
      if (got[impl] !== want) throw new Error(`${impl} disagrees with WebCrypto at nonce ${nonce}`);
    }
  }
  // The wasm miner on a target that about half of all hashes meet (bits 0x207fffff): the first
  // nonce it returns must be the first one whose SHA-256d (WebCrypto) is at most the target.
  const easy = header.slice();
  new DataView(easy.buffer).setUint32(76, 0x207f_ffff, true);
  const target = targetOf(0x207f_ffff);
  let expect = -1;
  for (let n = 0; n < 64 && expect < 0; n++) {
    new DataView(easy.buffer).setUint32(80, n, true);
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', await crypto.subtle.digest('SHA-256', easy)));
    if (meets(d, target)) expect = n;
  }
  new DataView(easy.buffer).setUint32(80, 0, true);
  const job = new wasm.MinerJob(easy, 0, 1);
  const found = job.step(64);
  job.free();
  const foundNonce = found ? Number(new DataView(found.buffer, found.byteOffset).getBigUint64(80, true)) : -1;
  if (foundNonce !== expect) throw new Error(`wasm MinerJob found nonce ${foundNonce}, WebCrypto says ${expect}`);
  return { checked: impls.length + 1, easyNonce: expect };
}

let sigSet = null;

/**
 * The signatures benchVerify(n) checks, rebuilt in JS: key i % 16 from seed [i % 16 + 1; 32],
 * message i = SHA-256d of i as a u64 little-endian, signed by the wasm build (benchSign).
 */
function signatures(n) {
  if (sigSet && sigSet.n === n) return sigSet;
  ed.hashes.sha512 = sha512; // noble's synchronous API, pure JS throughout
  const seeds = Array.from({ length: 16 }, (_, i) => new Uint8Array(32).fill(i + 1));
  const pubs = seeds.map((s) => ed.getPublicKey(s));
  const msgs = [];
  const sigs = [];
  for (let i = 0; i < n; i++) {
    const le = new Uint8Array(8);
    new DataView(le.buffer).setBigUint64(0, BigInt(i), true);
    const msg = sha256(sha256(le));
    msgs.push(msg);
    sigs.push(wasm.benchSign(seeds[i % 16], msg));
  }
  // Same keys, same deterministic signatures on both sides; every one verifies with noble.
  for (let i = 0; i < Math.min(n, 32); i++) {
    if (hex(ed.sign(msgs[i], seeds[i % 16])) !== hex(sigs[i])) throw new Error(`noble and wasm signatures differ at ${i}`);
  }
  for (let i = 0; i < n; i++) {
    if (!ed.verify(sigs[i], msgs[i], pubs[i % 16], { zip215: false })) throw new Error(`noble rejects signature ${i}`);
  }
  sigSet = { n, pubs, msgs, sigs };
  return sigSet;
}

/** One round: wasm single + batch (benchVerify) and noble verify of the same n signatures. */
function verifyRound(n, nobleFirst) {
  const s = signatures(n);
  const runNoble = () => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      if (!ed.verify(s.sigs[i], s.msgs[i], s.pubs[i % 16], { zip215: false })) throw new Error('noble rejected');
    }
    return performance.now() - t0;
  };
  let nobleMs;
  if (nobleFirst) nobleMs = runNoble();
  const w = wasm.benchVerify(n);
  if (!nobleFirst) nobleMs = runNoble();
  return { signatures: w.signatures, wasmSingleMs: w.singleMs, wasmBatchMs: w.batchMs, nobleMs };
}

const workerOps = {
  hash: ({ impl, header, ms }) => hashRun(impl, new Uint8Array(header), ms),
  hashCheck: ({ header }) => hashCheck(new Uint8Array(header)),
  verify: ({ n, nobleFirst }) => verifyRound(n, nobleFirst),
  signatures: ({ n }) => {
    signatures(n);
    return { n };
  },
};

// ---- the page -------------------------------------------------------------------------------

let compute = null; // the compute worker
let nextCall = 1;
const calls = new Map();

function startCompute() {
  return new Promise((resolve, reject) => {
    compute = new Worker(import.meta.url, { type: 'module', name: 'tabcoin-bench' });
    compute.onerror = (e) => reject(new Error(`bench worker failed: ${e.message}`));
    compute.onmessage = (e) => {
      const m = e.data;
      if (m.ready) return resolve();
      const c = calls.get(m.id);
      if (!c) return;
      calls.delete(m.id);
      if (m.error) c.reject(new Error(m.error));
      else c.resolve(m.result);
    };
  });
}

/** Calls an operation of the compute worker. */
function inWorker(op, args = {}) {
  const id = nextCall++;
  return new Promise((resolve, reject) => {
    calls.set(id, { resolve, reject });
    compute.postMessage({ id, op, args });
  });
}

// P3: pools of the page's own mining worker (web/worker.js), kept per size and reused.
const pools = new Map();
let poolGeneration = 0;

async function pool(n) {
  if (pools.has(n)) return pools.get(n);
  const workers = [];
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new Promise((resolve, reject) => {
        const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: `bench-miner-${n}-${i}` });
        const entry = { worker: w, hashes: 0, generation: -1, errors: [] };
        w.onerror = (e) => reject(new Error(`mining worker failed: ${e.message}`));
        w.onmessage = (e) => {
          const m = e.data;
          if (m.type === 'ready') resolve();
          else if (m.type === 'hashes' && m.generation === entry.generation) entry.hashes += m.n;
          else if (m.type === 'error') entry.errors.push(m.message);
          else if (m.type === 'found') entry.errors.push('found a block on the impossible target');
        };
        workers.push(entry);
      }),
    ),
  );
  pools.set(n, workers);
  return workers;
}

/**
 * n mining workers (web/worker.js, its job/stop protocol) on slices of `header` for about
 * `ms`: hashes per worker and the window. Hashes arrive in the workers' own reports (about every
 * 500 ms, and a last one on stop); the chunk running when the stop arrives (about 20 ms of
 * work) still counts, in every round alike.
 */
async function poolRound(n, header, ms) {
  const workers = await pool(n);
  const generation = ++poolGeneration;
  for (const w of workers) {
    w.hashes = 0;
    w.generation = generation;
  }
  const t0 = performance.now();
  workers.forEach((w, i) => w.worker.postMessage({ type: 'job', header: new Uint8Array(header), generation, index: i, count: n }));
  await sleep(ms);
  const t1 = performance.now();
  ++poolGeneration;
  for (const w of workers) w.worker.postMessage({ type: 'stop', generation: poolGeneration });
  await sleep(200); // the last reports
  const errors = workers.flatMap((w) => w.errors.splice(0));
  if (errors.length) throw new Error(errors.join('; '));
  return { ms: t1 - t0, perWorker: workers.map((w) => w.hashes) };
}

function closePools() {
  for (const ws of pools.values()) for (const w of ws) w.worker.terminate();
  pools.clear();
}

// P6, P7: the chain, fetched once.
let blocks = null;

async function loadChain(url) {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  const buf = new Uint8Array(await r.arrayBuffer());
  const out = [];
  let off = 0;
  while (off < buf.length) {
    const len = new DataView(buf.buffer, off, 4).getUint32(0, true);
    off += 4;
    out.push(buf.slice(off, off + len));
    off += len;
  }
  blocks = out;
  return { blocks: out.length, bytes: buf.length };
}

function idbDelete(name) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.deleteDatabase(name);
    r.onsuccess = () => resolve();
    r.onerror = () => reject(r.error);
    // onblocked: a connection is still open; the delete completes once it closes.
  });
}

function idbOpen(name) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(name);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function idbGet(db, store, key) {
  return new Promise((resolve, reject) => {
    const r = db.transaction(store, 'readonly').objectStore(store).get(key);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

let dbCounter = 0;
const freshName = (what) => `bench-${what}-${Date.now()}-${++dbCounter}`;

/** benchImportMemory: the chain into a fresh in-memory chain, ms as the wasm timer saw it. */
function importMemory() {
  const t0 = performance.now();
  const ms = wasm.benchImportMemory(blocks);
  return { ms, outerMs: performance.now() - t0 };
}

/** benchImportIdb into a fresh database (deleted after). */
async function importIdb(perRecord) {
  const name = freshName(perRecord ? 'record' : 'block');
  const t0 = performance.now();
  const ms = await wasm.benchImportIdb(name, blocks, perRecord);
  const outerMs = performance.now() - t0;
  await idbDelete(name);
  return { ms, outerMs };
}

/**
 * P7: a fresh BrowserNode (fresh database) syncs from `relay` until its tip is at `height`,
 * then until the database's stored tip is that block. Times in ms from just before
 * BrowserNode.start: start() returned, connection open, handshake done (peer), first sync
 * progress, first tip, tip at height, stored tip at height.
 */
async function sync(relay, height, timeoutMs = 120_000, trace = false) {
  const dbName = freshName('sync');
  const marks = { tipEvents: 0, syncEvents: 0, rejected: [], storeErrors: [], connections: 0, connectionLog: [], tipAt: {} };
  let reached;
  const atHeight = new Promise((r) => (reached = r));
  const t0 = performance.now();
  const restore = trace ? traceSockets(marks, t0) : null;
  const onEvent = (ev) => {
    const t = performance.now() - t0;
    switch (ev.kind) {
      case 'connection':
        marks.connectionLog.push([Math.round(t), ev.state, marks.lastHeight ?? 0]);
        if (ev.state === 'open') {
          marks.connections++;
          marks.open ??= t;
        }
        break;
      case 'peer':
        if (ev.connected) marks.peer ??= t;
        break;
      case 'sync':
        marks.syncEvents++;
        marks.firstSync ??= t;
        marks.syncTarget = ev.target;
        break;
      case 'tip':
        marks.tipEvents++;
        marks.firstTip ??= t;
        marks.lastHeight = ev.height;
        if (ev.height % 250 === 0) marks.tipAt[ev.height] = Math.round(t);
        marks.tipTimes?.push([Math.round(t * 10) / 10, ev.height]);
        if (ev.height >= height && marks.tip === undefined) {
          marks.tip = t;
          marks.tipHash = ev.hash;
          // What the write queue still held when the chain reached the tip.
          marks.unstoredAtTip = nodeRef?.status().storage.unstoredBlocks;
          reached();
        }
        break;
      case 'synced':
        marks.synced ??= t;
        break;
      case 'block_rejected':
        marks.rejected.push(ev.reason);
        break;
      case 'store':
        if (ev.error) marks.storeErrors.push(ev.error);
        break;
      default:
        break;
    }
  };
  let nodeRef = null;
  // As the page ships (web/app.js): signature checks in the worker pool when Workers exist.
  const verifier = typeof Worker === 'function' ? new VerifyPool(wasm) : null;
  const node = await wasm.BrowserNode.start({
    relay,
    network: 'test',
    dbName,
    onEvent,
    onTemplate: () => {},
    ...(verifier ? { onVerify: (ticket, chunks) => verifier.submit(ticket, chunks), verifyWorkers: verifier.size } : {}),
  }).catch((e) => {
    verifier?.terminate();
    throw e;
  });
  verifier?.attach(node);
  nodeRef = node;
  marks.started = performance.now() - t0;
  let timer;
  const timedOut = new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`sync: no tip at height ${height} after ${timeoutMs} ms (status ${JSON.stringify(node.status())})`)), timeoutMs)));
  try {
    await Promise.race([atHeight, timedOut]);
    const db = await idbOpen(dbName);
    try {
      for (;;) {
        const tip = await idbGet(db, 'meta', 'tip');
        if (tip && hex(new Uint8Array(tip)) === marks.tipHash) break;
        if (performance.now() - t0 > timeoutMs) throw new Error('sync: the stored tip never reached the synced tip');
        await sleep(5);
      }
      marks.stored = performance.now() - t0;
      marks.events = marks.tipEvents + marks.syncEvents;
    } finally {
      db.close();
    }
    marks.height = node.status().height;
  } finally {
    clearTimeout(timer);
    node.stop();
    node.free();
    verifier?.terminate();
    restore?.();
  }
  await idbDelete(dbName);
  if (marks.trace) marks.trace.tips = marks.tipTimes;
  return marks;
}

/** Message type tags (the first byte of every message, `core/src/wire/codec.rs`). */
const WIRE_TAGS = ['hello', 'auth', 'getnodes', 'nodes', 'inv', 'getdata', 'notfound', 'getheaders', 'headers', 'block', 'tx', 'ping', 'pong', 'notice', 'sendblocks', 'cmpctblock', 'getblocktxn', 'blocktxn'];

/**
 * P7 tracing (`sync(…, trace = true)`): wraps the page's WebSocket constructor so every frame
 * the node receives or sends is logged as [ms since t0, 'in'/'out', type, bytes, items]
 * (items: entries of a getdata), and every `tip` event's time is kept. Returns the undo.
 */
function traceSockets(marks, t0) {
  const Orig = window.WebSocket;
  const frames = [];
  marks.trace = { frames };
  marks.tipTimes = [];
  class Traced extends Orig {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (e) => {
        const b = e.data instanceof ArrayBuffer ? new Uint8Array(e.data) : null;
        frames.push([performance.now() - t0, 'in', b ? WIRE_TAGS[b[0]] ?? b[0] : 'text', b ? b.length : 0]);
      });
    }
    send(data) {
      const b = data instanceof Uint8Array ? data : data instanceof ArrayBuffer ? new Uint8Array(data) : null;
      const kind = b ? WIRE_TAGS[b[0]] ?? b[0] : 'text';
      frames.push([performance.now() - t0, 'out', kind, b ? b.length : 0, kind === 'getdata' && b.length > 1 ? b[1] : 0]);
      return super.send(data);
    }
  }
  window.WebSocket = Traced;
  return () => {
    window.WebSocket = Orig;
  };
}

async function pageMain() {
  const state = document.getElementById('state');
  const logEl = document.getElementById('log');
  const log = (s) => {
    logEl.textContent += `${s}\n`;
  };
  try {
    await init();
    await startCompute();
  } catch (e) {
    state.textContent = `failed: ${e.message}`;
    window.benchError = String(e.stack || e);
    throw e;
  }
  const header = benchHeader();
  window.bench = {
    info: () => ({
      userAgent: navigator.userAgent,
      hardwareConcurrency: navigator.hardwareConcurrency,
      header: hex(header),
      wasmVersion: wasm.version(),
      crossOriginIsolated: self.crossOriginIsolated,
    }),
    hashCheck: () => inWorker('hashCheck', { header }),
    hash: (impl, ms) => inWorker('hash', { impl, header, ms }),
    verify: (n, nobleFirst) => inWorker('verify', { n, nobleFirst }),
    prepareSignatures: (n) => inWorker('signatures', { n }),
    pool: (n, ms) => poolRound(n, header, ms),
    verifyPool: (n, sigs, ms) => verifyPoolRound(wasm, n, sigs, ms),
    closeVerifyPools,
    closePools,
    loadChain,
    importMemory,
    importIdb,
    sync,
  };
  state.textContent = 'ready';
  document.getElementById('quick').onclick = async () => {
    state.textContent = 'running…';
    for (const impl of ['wasm', 'noble', 'noble-midstate', 'hashwasm', 'hashwasm-midstate']) {
      const r = await window.bench.hash(impl, 1_000);
      log(`${impl}: ${((r.hashes / r.ms) * 1e-3).toFixed(3)} MH/s`);
    }
    state.textContent = 'ready';
  };
}

async function workerMain() {
  self.onmessage = async (e) => {
    const { id, op, args } = e.data;
    try {
      const result = await workerOps[op](args);
      self.postMessage({ id, result });
    } catch (err) {
      self.postMessage({ id, error: String((err && err.stack) || err) });
    }
  };
  await init();
  const probe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
  if (WebAssembly.validate(probe)) {
    try {
      simdMod = await import('./pkg-simd/tabcoin_wasm.js');
      await simdMod.default();
    } catch {
      simdMod = null;
    }
  }
  self.postMessage({ ready: true });
}

if (IN_WORKER) workerMain();
else pageMain();
