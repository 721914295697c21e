// Browser benchmarks (`npm run bench`, after scripts/build-web.sh): wasm in Chromium against
// native code and against JS libraries, each pair measured side by side in this one run, and
// written into the `browser` section of docs/BENCHMARKS.md.
//
//   node tests/bench/browser.bench.mjs            # the full run (about 2.5–4 minutes)
//   BENCH_QUICK=1 node tests/bench/browser.bench.mjs   # fewer, shorter rounds (checking the script)
//   BENCH_NO_DOC=1 …                                    # print only, leave docs/BENCHMARKS.md alone
//   BENCH_ONLY=p7 …   # only some figures (p1 = P1/P2, p3, p5, p6, p7; comma-separated); writes only
//                     # the P7 section (`browser-sync`) of the doc, and only if P7 ran
//   BENCH_PROFILE=1 …  # P7: one more sync of each chain under Chromium's CPU profiler (breakdown in the doc)
//   BENCH_JSON=FILE …   # also save the raw results; BENCH_FROM_JSON=FILE re-renders the section from them
//
// What it does: builds the relay and the `make_chain` and `hashrate` examples (release), writes a
// 2,000-block test-network chain to web/bench-data/chain.bin and a relay database holding it to a
// temporary directory, starts two relays on 127.0.0.1 serving web/ and that chain (one as shipped,
// one on a copy with the per-peer message rate limit raised out of the way), launches Debian
// Chromium (playwright-core), opens web/bench.html and calls the functions on `window.bench`
// round by round, running the native baselines between browser rounds. Loopback only; every
// process it starts is stopped at the end. Relay logs and the raw results (BENCH_JSON) can be
// kept under target/browser-bench/.
//
// Not named *.test.mjs: `node --test` must not pick it up (timings belong in benchmarks).

import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { ROOT, startRelayProcess, stopProcess as stopChild, summariseProfile } from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const CHAIN_BLOCKS = 2000;
/** P7's signature-heavy chain: this many blocks of this many payments each (`make_chain --payments`). */
const HEAVY_BLOCKS = 200;
const HEAVY_PAYMENTS = 300;
/** P5 in the browser: signatures of the job (a 300-payment block's). */
const VPOOL_SIGS = 300;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((x) => x.trim().toLowerCase())) : null;
const want = (fig) => !ONLY || ONLY.has(fig);
/** Relay log filter: warnings, plus the reason for every connection the relay closes. */
const RELAY_LOG = 'warn,tabcoin_relay::conn=debug';
/** --messages-per-sec of the second relay: far above anything a sync sends. */
const UNLIMITED_RATE = 1_000_000;

// Rounds and durations (full run / quick run).
const R = QUICK
  ? { hashRounds: 2, hashMs: 500, poolRounds: 2, poolMs: 1000, verifyRounds: 2, verifyN: 256, vpoolRounds: 2, vpoolMs: 500, idbRounds: 1, syncRounds: 1 }
  : { hashRounds: 5, hashMs: 1200, poolRounds: 4, poolMs: 2500, verifyRounds: 5, verifyN: 1024, vpoolRounds: 6, vpoolMs: 2000, idbRounds: 3, syncRounds: 3 };

const log = (...a) => console.error('[browser bench]', ...a);

// ---- statistics ---------------------------------------------------------------------------------

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
const min = (xs) => Math.min(...xs);
const max = (xs) => Math.max(...xs);

/** A/B pair measured in rounds: rates per round of each side, ratio = median of per-round A ÷ B. */
function pair(a, b) {
  const ratios = a.map((x, i) => x / b[i]);
  return { a, b, ratios, medA: median(a), medB: median(b), ratio: median(ratios) };
}

function fmt(x, digits) {
  if (!Number.isFinite(x)) return 'n/a';
  if (digits !== undefined) return x.toFixed(digits);
  const ax = Math.abs(x);
  if (ax >= 1000) return Math.round(x).toString();
  if (ax >= 100) return x.toFixed(1);
  if (ax >= 10) return x.toFixed(2);
  return x.toFixed(3);
}
const range = (xs, d) => `${fmt(min(xs), d)} – ${fmt(max(xs), d)}`;

/** How often the relay connection closed during a sync. */
const closes = (m) => m.connectionLog.filter((c) => c[1] === 'closed').length;

// ---- processes ----------------------------------------------------------------------------------

const children = new Set();
function killChildren() {
  for (const c of children) {
    try {
      c.kill('SIGTERM');
    } catch {
      // already gone
    }
  }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killChildren();
    process.exit(130);
  });
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}\n${(r.stderr || '').slice(-4000)}`);
  }
  return r.stdout;
}

function cargoBuild(args) {
  log(`cargo build ${args.join(' ')}`);
  run('cargo', ['build', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The native midstate miner for `secs` on `headerHex`: hashes per second. */
function nativeRate(bin, secs, headerHex) {
  const out = JSON.parse(run(bin, [String(secs), headerHex]).trim());
  return out.hashes / out.seconds;
}

function startRelay(dataDir, logFile, extra = []) {
  const args = ['--network', 'test', '--data-dir', dataDir, '--web-dir', path.join(ROOT, 'web'), '--listen', '127.0.0.1:0', ...extra];
  return startRelayProcess({ bin: path.join(ROOT, 'target', 'release', 'tabcoin-relay'), args, logFile, rustLog: process.env.BENCH_RELAY_LOG || RELAY_LOG, children });
}

const stopProcess = (child) => stopChild(child, { children });

/** Why the relay closed connections, from its log: reason → count. */
function closeReasons(logFile) {
  const counts = {};
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return counts;
  }
  // eslint-disable-next-line no-control-regex
  for (const line of text.replace(/\x1b\[[0-9;]*m/g, '').split('\n')) {
    const m = line.match(/closing: (.*?)\s+conn=/);
    if (m) counts[m[1]] = (counts[m[1]] || 0) + 1;
  }
  return counts;
}

/** CPU time (user + system) of a process so far, ms. */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** The ids of `root` and all its descendants (from /proc). */
function processTree(root) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  const out = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    todo.push(...(children.get(p) || []));
  }
  return out;
}

/** CPU time of this process and everything it started (reaped children included), ms. */
function ourCpuMs() {
  let ms = 0;
  for (const pid of processTree(process.pid)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ms += ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / 100;
    } catch {
      // gone meanwhile
    }
  }
  return ms;
}

/** The machine's CPU time so far, all CPUs: busy (steal included) and total, ms. */
function machineCpuMs() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const busy = user + nice + system + irq + softirq + (steal || 0);
  return { busy: (busy * 1000) / 100, total: ((busy + idle + iowait) * 1000) / 100 };
}

/**
 * Share of the machine's CPU capacity that something other than this benchmark used (other
 * processes, and time the hypervisor gave to other guests) between `start()` and `stop()`.
 */
function loadMeter() {
  const m0 = machineCpuMs();
  const o0 = ourCpuMs();
  return () => {
    const m1 = machineCpuMs();
    const o1 = ourCpuMs();
    const total = m1.total - m0.total;
    return total > 0 ? Math.max(0, (m1.busy - m0.busy - (o1 - o0)) / total) : NaN;
  };
}


// ---- the machine --------------------------------------------------------------------------------

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const field = (name) => cpuinfo.split('\n').find((l) => l.split(':')[0].trim() === name)?.split(':').slice(1).join(':').trim();
  const flags = (field('flags') || '').split(/\s+/);
  let rustc = 'unknown';
  try {
    rustc = run('rustc', ['--version']).trim();
  } catch {
    // keep unknown
  }
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return {
    cpu: field('model name') || 'unknown',
    cpus: os.cpus().length,
    shaNi: flags.includes('sha_ni'),
    kernel: `${os.type()} ${os.release()}`,
    rustc,
    node: process.version,
    date: `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())} UTC`,
  };
}

// ---- the run ------------------------------------------------------------------------------------

async function main() {
  if (process.env.BENCH_FROM_JSON) {
    // Re-render the section from the results of an earlier run (BENCH_JSON=FILE).
    const section = docSection(JSON.parse(readFileSync(process.env.BENCH_FROM_JSON, 'utf8')));
    console.log(section);
    if (process.env.BENCH_NO_DOC !== '1') writeDoc(section);
    return;
  }
  const started = Date.now();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tabcoin-browser-bench-'));
  let relay = null;
  let relayFree = null;
  let relayHeavy = null;
  let browser = null;
  try {
    // Builds (no-ops when nothing changed). Two builds of the hashrate example: scalar SHA-256
    // (the code wasm runs) and the default one, which uses SHA-NI when the CPU has it.
    cargoBuild(['--release', '-p', 'tabcoin-relay', '--bin', 'tabcoin-relay', '--example', 'make_chain']);
    const hashrateBin = path.join(ROOT, 'target', 'release', 'examples', 'hashrate');
    const soft = path.join(tmp, 'hashrate-soft');
    const native = path.join(tmp, 'hashrate-native');
    if (want('p1')) {
      cargoBuild(['--release', '-p', 'tabcoin-core', '--example', 'hashrate', '--features', 'sha2/force-soft']);
      copyFileSync(hashrateBin, soft);
      cargoBuild(['--release', '-p', 'tabcoin-core', '--example', 'hashrate']);
      copyFileSync(hashrateBin, native);
    }

    // The chain: a file the page fetches and a relay database holding the same blocks.
    const benchData = path.join(ROOT, 'web', 'bench-data');
    mkdirSync(benchData, { recursive: true });
    const chainFile = path.join(benchData, 'chain.bin');
    const dataDir = path.join(tmp, 'relay-data');
    log(`make_chain ${CHAIN_BLOCKS}`);
    const made = JSON.parse(run(path.join(ROOT, 'target', 'release', 'examples', 'make_chain'), [String(CHAIN_BLOCKS), chainFile, dataDir]).trim());
    log(`chain: ${made.blocks} blocks, native import ${made.native_import_ms} ms`);
    // P7's second chain: fewer, signature-heavy blocks (`--payments`).
    let madeHeavy = null;
    const dataDirHeavy = path.join(tmp, 'relay-data-heavy');
    if (want('p7')) {
      log(`make_chain ${HEAVY_BLOCKS} --payments ${HEAVY_PAYMENTS}`);
      madeHeavy = JSON.parse(
        run(path.join(ROOT, 'target', 'release', 'examples', 'make_chain'), [String(HEAVY_BLOCKS), path.join(benchData, 'chain-heavy.bin'), dataDirHeavy, '--payments', String(HEAVY_PAYMENTS)]).trim(),
      );
      log(`heavy chain: ${madeHeavy.blocks} blocks, native import ${madeHeavy.native_import_ms} ms`);
    }

    // The relay's log stays after the run (target/ is ignored by git).
    const logDir = path.join(ROOT, 'target', 'browser-bench');
    mkdirSync(logDir, { recursive: true });
    // A second relay on a copy of the database with the per-peer message rate limit out of the
    // way, to see what a sync costs without the relay's limits (P7).
    const dataDirFree = path.join(tmp, 'relay-data-unlimited');
    cpSync(dataDir, dataDirFree, { recursive: true });
    const relayLog = path.join(logDir, 'relay.log');
    const relayFreeLog = path.join(logDir, 'relay-unlimited.log');
    relay = await startRelay(dataDir, relayLog);
    relayFree = await startRelay(dataDirFree, relayFreeLog, ['--messages-per-sec', String(UNLIMITED_RATE)]);
    if (madeHeavy) relayHeavy = await startRelay(dataDirHeavy, path.join(logDir, 'relay-heavy.log'));
    log(`relays at ${relay.url} (pid ${relay.pid}) and ${relayFree.url} (pid ${relayFree.pid}, --messages-per-sec ${UNLIMITED_RATE})`);
    const wsUrl = `${relay.url.replace(/^http/, 'ws')}/ws`;
    const wsUrlFree = `${relayFree.url.replace(/^http/, 'ws')}/ws`;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const chromiumVersion = browser.version();
    const context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    await page.goto(`${relay.url}/bench.html`);
    await page.waitForFunction(() => window.bench || window.benchError, null, { timeout: 60_000 });
    const benchError = await page.evaluate(() => window.benchError);
    if (benchError) throw new Error(`bench page: ${benchError}`);
    const call = (fn, ...args) => page.evaluate(([fn, args]) => window.bench[fn](...args), [fn, args]);
    const info = await call('info');
    log(`Chromium ${chromiumVersion}, hardwareConcurrency ${info.hardwareConcurrency}, header ${info.header}`);

    // ---- P1, P2: one thread, same header -------------------------------------------------------
    const load = {}; // share of the machine other processes used, per figure
    const impls = ['wasm-simd', 'wasm', 'noble', 'noble-midstate', 'hashwasm', 'hashwasm-midstate', 'native-soft', 'native'];
    const rates = Object.fromEntries(impls.map((i) => [i, []]));
    if (want('p1')) {
      const check = await call('hashCheck');
      log(`hash check: ${JSON.stringify(check)}`);
      const measure = async (impl, ms) => {
        if (impl === 'native-soft') return nativeRate(soft, ms / 1000, info.header);
        if (impl === 'native') return nativeRate(native, ms / 1000, info.header);
        const r = await call('hash', impl, ms);
        return (r.hashes / r.ms) * 1000;
      };
      log('P1/P2 warm-up');
      for (const impl of impls) await measure(impl, 300);
      const meter = loadMeter();
      for (let round = 0; round < R.hashRounds; round++) {
        // Rotate the order so no implementation always runs first or after the same one.
        const order = impls.map((_, i) => impls[(i + round) % impls.length]);
        for (const impl of order) rates[impl].push(await measure(impl, R.hashMs));
        log(`P1/P2 round ${round + 1}: ${impls.map((i) => `${i} ${fmt(rates[i].at(-1) / 1e6)}`).join(', ')} MH/s`);
      }
      load.p1 = meter();
    }

    // ---- P3: web/worker.js, 1 worker and N --------------------------------------------------------
    const N = Math.max(2, info.hardwareConcurrency || 2);
    const pool1 = [];
    const poolN = [];
    const poolNPer = [];
    if (want('p3')) {
      log(`P3 warm-up (1 and ${N} workers)`);
      await call('pool', 1, 500);
      await call('pool', N, 500);
      const meter = loadMeter();
      for (let round = 0; round < R.poolRounds; round++) {
        const order = round % 2 ? [N, 1] : [1, N];
        for (const n of order) {
          const r = await call('pool', n, R.poolMs);
          const per = r.perWorker.map((h) => (h / r.ms) * 1000);
          if (n === 1) pool1.push(per[0]);
          else {
            poolN.push(per.reduce((a, b) => a + b, 0));
            poolNPer.push(per);
          }
        }
        log(`P3 round ${round + 1}: 1 worker ${fmt(pool1.at(-1) / 1e6)} MH/s, ${N} workers ${fmt(poolN.at(-1) / 1e6)} MH/s (${poolNPer.at(-1).map((x) => fmt(x / 1e6)).join(' + ')})`);
      }
      load.p3 = meter();
      await call('closePools');
    }

    // ---- P5: ed25519 --------------------------------------------------------------------------
    const ver = { single: [], batch: [], noble: [] };
    if (want('p5')) {
      log(`P5: preparing ${R.verifyN} signatures`);
      await call('prepareSignatures', R.verifyN);
      await call('verify', R.verifyN, false); // warm-up
      const meter = loadMeter();
      for (let round = 0; round < R.verifyRounds; round++) {
        const r = await call('verify', R.verifyN, round % 2 === 1);
        ver.single.push((r.signatures / r.wasmSingleMs) * 1000);
        ver.batch.push((r.signatures / r.wasmBatchMs) * 1000);
        ver.noble.push((r.signatures / r.nobleMs) * 1000);
        log(`P5 round ${round + 1}: wasm single ${fmt(r.wasmSingleMs)} ms, batch ${fmt(r.wasmBatchMs)} ms, noble ${fmt(r.nobleMs)} ms (${r.signatures} signatures)`);
      }
      load.p5 = meter();
    }

    // ---- P5 in the browser: the page's verification pool, N workers and 1 ------------------------
    // N is the page's pool size (web/verify-pool.js: hardwareConcurrency, at most 4; at least 2 here).
    const vpool = { n: Math.max(2, Math.min(info.hardwareConcurrency || 2, 4)), sigs: VPOOL_SIGS, one: [], many: [], busy1: [], busyN: [], job1: [], jobN: [], jobs1: [], jobsN: [], cpu1: [], cpuN: [], chunks: {} };
    if (want('p5')) {
      log(`P5 pool warm-up (1 and ${vpool.n} verification workers)`);
      await call('verifyPool', 1, vpool.sigs, 300);
      await call('verifyPool', vpool.n, vpool.sigs, 300);
      const meter = loadMeter();
      for (let round = 0; round < R.vpoolRounds; round++) {
        const order = round % 2 ? [vpool.n, 1] : [1, vpool.n];
        for (const n of order) {
          const cpu0 = ourCpuMs();
          const r = await call('verifyPool', n, vpool.sigs, R.vpoolMs);
          const cpu = (ourCpuMs() - cpu0) / r.ms;
          const one = n === 1;
          (one ? vpool.cpu1 : vpool.cpuN).push(cpu);
          (one ? vpool.one : vpool.many).push((r.signatures / r.ms) * 1000);
          (one ? vpool.busy1 : vpool.busyN).push(r.busyMs / r.ms);
          (one ? vpool.job1 : vpool.jobN).push(r.jobMs);
          (one ? vpool.jobs1 : vpool.jobsN).push(r.jobs);
          vpool.chunks[n] = r.chunks;
        }
        log(`P5 pool round ${round + 1}: 1 worker ${fmt(vpool.one.at(-1), 0)} signatures/s (CPU ${fmt(vpool.cpu1.at(-1), 2)} cores, in verifyChunk ${fmt(vpool.busy1.at(-1), 2)}), ${vpool.n} workers ${fmt(vpool.many.at(-1), 0)} signatures/s (CPU ${fmt(vpool.cpuN.at(-1), 2)} cores, in verifyChunk ${fmt(vpool.busyN.at(-1), 2)})`);
      }
      load.p5pool = meter();
      await call('closeVerifyPools');
    }

    // ---- P6: IndexedDB ------------------------------------------------------------------------
    const chain = await call('loadChain', '/bench-data/chain.bin');
    if (chain.blocks !== CHAIN_BLOCKS) throw new Error(`chain.bin holds ${chain.blocks} blocks`);
    const idb = { block: [], record: [] };
    if (want('p6')) {
      const meter = loadMeter();
      for (let round = 0; round < R.idbRounds; round++) {
        const order = round % 2 ? [true, false] : [false, true];
        for (const perRecord of order) {
          const r = await call('importIdb', perRecord);
          idb[perRecord ? 'record' : 'block'].push(r.ms);
        }
        log(`P6 round ${round + 1}: per block ${fmt(idb.block.at(-1))} ms, per record ${fmt(idb.record.at(-1))} ms`);
      }
      load.p6 = meter();
    }

    // ---- P7: initial sync ---------------------------------------------------------------------
    const syncs = []; // from the relay with its default limits
    const syncsFree = []; // from the relay without the message rate limit
    const mem = [];
    const real = [];
    const realPage = async () => {
      // The real page in a fresh context (its own IndexedDB): from navigation to the node's
      // height reaching the chain's, polled every 20 ms.
      const ctx = await browser.newContext();
      try {
        const p = await ctx.newPage();
        p.on('pageerror', (e) => pageErrors.push(`index.html: ${e}`));
        await p.goto(`${relay.url}/`);
        await p.waitForFunction(
          (h) => {
            const node = window.tabcoin && window.tabcoin.node;
            if (!node) return false;
            window.__benchNodeAt ??= performance.now();
            return node.status().height >= h;
          },
          CHAIN_BLOCKS,
          { polling: 20, timeout: 180_000 },
        );
        return p.evaluate(() => ({ synced: performance.now(), nodeStarted: window.__benchNodeAt }));
      } finally {
        await ctx.close();
      }
    };
    const syncFrom = async (rel, url, into) => {
      const c0 = cpuMs(rel.pid);
      const m = await call('sync', url, CHAIN_BLOCKS);
      m.relayCpuMs = cpuMs(rel.pid) - c0;
      if (m.rejected.length || m.storeErrors.length) throw new Error(`sync: ${JSON.stringify(m)}`);
      into.push(m);
    };
    // Context for P7's ratio: a native node doing what the tab does — a fresh relay (this
    // build, its own empty database) syncing the same chain from the same relay over
    // loopback, from spawning the process until its /api/status reports the tip (stored:
    // a relay writes each drain's blocks before it reads its next messages), polled every 5 ms.
    const nativeSyncs = [];
    const nativeSync = async () => {
      const dir = mkdtempSync(path.join(tmp, 'native-sync-'));
      const t0 = performance.now();
      const r = await startRelay(dir, path.join(logDir, 'relay-native-sync.log'), ['--allow-local-dial', '--api-requests-per-sec', '100000', '--peer', wsUrl]);
      try {
        for (;;) {
          const s = await (await fetch(`${r.url}/api/status`)).json();
          if (s.height >= CHAIN_BLOCKS) break;
          if (performance.now() - t0 > 180_000) throw new Error(`native relay sync: stuck at ${s.height}`);
          await sleep(5);
        }
        nativeSyncs.push(performance.now() - t0);
      } finally {
        await stopProcess(r.child);
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const heavy = { syncs: [], mem: [], native: [] };
    // The native baseline, timed in every round between the browser steps (so under the
    // same load as they are): `make_chain --import`, median of 3 imports (the heavy chain 1).
    const nativeRuns = [];
    const makeChain = path.join(ROOT, 'target', 'release', 'examples', 'make_chain');
    const nativeImport = (file, k) => JSON.parse(run(makeChain, ['--import', file, String(k)]).trim()).native_import_ms;
    const profiles = {};
    if (want('p7')) {
      await call('importMemory'); // warm-up
      const meter = loadMeter();
      const wsUrlHeavy = `${relayHeavy.url.replace(/^http/, 'ws')}/ws`;
      const heavyMemory = async () => {
        await call('loadChain', '/bench-data/chain-heavy.bin');
        try {
          return (await call('importMemory')).ms;
        } finally {
          await call('loadChain', '/bench-data/chain.bin');
        }
      };
      for (let round = 0; round < R.syncRounds; round++) {
        const steps = ['sync', 'free', 'memory', 'real', 'heavy', 'heavyMemory', 'native', 'nativeSync'];
        const order = steps.map((_, i) => steps[(i + round) % steps.length]);
        for (const s of order) {
          if (s === 'sync') await syncFrom(relay, wsUrl, syncs);
          else if (s === 'free') await syncFrom(relayFree, wsUrlFree, syncsFree);
          else if (s === 'memory') mem.push((await call('importMemory')).ms);
          else if (s === 'heavy') {
            const m = await call('sync', wsUrlHeavy, HEAVY_BLOCKS, 600_000);
            if (m.rejected.length || m.storeErrors.length) throw new Error(`heavy sync: ${JSON.stringify(m)}`);
            heavy.syncs.push(m);
          } else if (s === 'heavyMemory') heavy.mem.push(await heavyMemory());
          else if (s === 'nativeSync') await nativeSync();
          else if (s === 'native') {
            nativeRuns.push(nativeImport(chainFile, 3));
            heavy.native.push(nativeImport(path.join(benchData, 'chain-heavy.bin'), 1));
          }
          else real.push(await realPage());
        }
        const m = syncs.at(-1);
        const f = syncsFree.at(-1);
        const hv = heavy.syncs.at(-1);
        log(
          `P7 round ${round + 1}: sync tip ${fmt(m.tip)} ms (stored ${fmt(m.stored)} ms, ${closes(m)} disconnects, ${m.unstoredAtTip} unstored at the tip), without the rate limit ${fmt(f.tip)} ms (stored ${fmt(f.stored)} ms, ${closes(f)} disconnects); in-memory import ${fmt(mem.at(-1))} ms; real page ${fmt(real.at(-1).synced)} ms; heavy chain: sync ${fmt(hv.tip)} ms (stored ${fmt(hv.stored)} ms), in memory ${fmt(heavy.mem.at(-1))} ms; native import ${fmt(nativeRuns.at(-1))} ms, heavy ${fmt(heavy.native.at(-1))} ms; native relay sync ${fmt(nativeSyncs.at(-1))} ms`,
        );
      }
      load.p7 = meter();
      if (process.env.BENCH_PROFILE === '1') {
        // One more sync of each chain under Chromium's sampling CPU profiler (main thread):
        // where the page's time goes, by function and by kind.
        const cdp = await context.newCDPSession(page);
        await cdp.send('Profiler.enable');
        await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
        for (const [name, url, blocks] of [['chain', wsUrl, CHAIN_BLOCKS], ['heavy', wsUrlHeavy, HEAVY_BLOCKS]]) {
          await cdp.send('Profiler.start');
          const m = await call('sync', url, blocks, 600_000);
          const { profile } = await cdp.send('Profiler.stop');
          profiles[name] = { ...summariseProfile(profile), tip: m.tip, stored: m.stored };
          log(`profile of a ${name} sync (tip ${fmt(m.tip)} ms, stored ${fmt(m.stored)} ms): ${JSON.stringify(profiles[name])}`);
        }
        await cdp.detach();
      }
      await sleep(200); // let the relays' last log lines reach the files
    }
    if (pageErrors.length) log(`page errors: ${pageErrors.join(' | ')}`);

    // ---- results ------------------------------------------------------------------------------
    const r = {
      machine: { ...machine(), chromium: chromiumVersion, hardwareConcurrency: info.hardwareConcurrency, userAgent: info.userAgent },
      header: info.header,
      rounds: R,
      load,
      hash: rates,
      poolN: N,
      pool1,
      poolNRates: poolN,
      poolNPer,
      verify: ver,
      verifyN: R.verifyN,
      verifyPool: vpool,
      idb,
      chain: { ...chain, nativeImportMs: made.native_import_ms, nativeRounds: nativeRuns },
      syncs,
      syncsFree,
      nativeSyncs,
      unlimitedRate: UNLIMITED_RATE,
      closeReasons: closeReasons(relayLog),
      closeReasonsFree: closeReasons(relayFreeLog),
      mem,
      real,
      heavy: { ...heavy, chain: madeHeavy, blocks: HEAVY_BLOCKS, payments: HEAVY_PAYMENTS },
      profiles,
      pageErrors,
      seconds: (Date.now() - started) / 1000,
    };
    if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(r, null, 2));
    if (want('p7')) {
      const sync = syncSection(r);
      console.log(sync);
      if (process.env.BENCH_NO_DOC !== '1') {
        writeDoc(sync, 'browser-sync', 'browser');
        log('wrote the browser-sync section of docs/BENCHMARKS.md');
      }
    }
    if (want('p5')) {
      const p5 = p5PoolSection(r);
      console.log(p5);
      if (process.env.BENCH_NO_DOC !== '1') {
        writeDoc(p5, 'p5-browser', 'p5-native');
        log('wrote the p5-browser section of docs/BENCHMARKS.md');
      }
    }
    if (ONLY) {
      log(`done in ${fmt(r.seconds, 0)} s (BENCH_ONLY: only the P7 and P5-pool sections, if they ran, are written)`);
      return;
    }
    const section = docSection(r);
    console.log(section);
    if (process.env.BENCH_NO_DOC !== '1') {
      writeDoc(section);
      log('wrote the browser section of docs/BENCHMARKS.md');
    }
    log(`done in ${fmt(r.seconds, 0)} s`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (relay) await stopProcess(relay.child);
    if (relayFree) await stopProcess(relayFree.child);
    if (relayHeavy) await stopProcess(relayHeavy.child);
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- the P5 pool section -------------------------------------------------------------------------

function p5PoolSection(r) {
  const m = r.machine;
  const v = r.verifyPool;
  const p = pair(v.many, v.one);
  const cores = m.cpus;
  const goal = 0.8 * Math.min(v.n, cores);
  const pct = (x) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a');
  const L = [];
  L.push('<!-- p5-browser:begin -->');
  L.push(`### P5 in the browser: the page's verification workers (${m.date})`);
  L.push('');
  L.push(`Written by \`tests/bench/browser.bench.mjs\` (the P5 part; \`BENCH_ONLY=p5\` runs it) on ${m.date}: ${m.cpu} (${cores} logical CPUs, \`navigator.hardwareConcurrency\` ${m.hardwareConcurrency}), Debian Chromium ${m.chromium} (headless); wasm built by \`scripts/build-web.sh\` (profile \`release-wasm\`). Other processes took ${pct(r.load.p5pool)} of the machine's CPU time meanwhile.`);
  L.push('');
  L.push('| id | figure | A | B | A ÷ B |');
  L.push('|---|---|---|---|---|');
  L.push(`| P5 | Signature checks of a 300-payment block's job (${v.sigs} signatures), signatures/s — A: the page's pool (\`web/verify-pool.js\`) with ${v.n} workers, B: the same pool with 1 worker; goal ≥ ${fmt(goal, 1)} (0.8·min(N, cores)) | ${fmt(p.medA, 0)} | ${fmt(p.medB, 0)} | ${fmt(p.ratio, 3)} |`);
  L.push('');
  L.push(`Method: \`benchVerifyChunks(${v.sigs}, n)\` (\`wasm/src/verify.rs\`) builds a job of ${v.sigs} valid (key, 32-byte message, signature) triples — 16 keys, message i = SHA-256d of i — and splits it as the node splits a job for a pool of n workers (at least 16 signatures a chunk, at most 4 chunks per worker: ${v.chunks[v.n]} chunks for ${v.n} workers, ${v.chunks[1]} for 1). \`web/bench-verify.js\` submits it to a \`VerifyPool\` of n module workers (\`web/verify-worker.js\`, each running \`verifyChunk\`, at most 2 chunks held per worker) the way the node does (\`submit\`, results back through \`sigsVerified\`), one job after another for ${fmt(r.rounds.vpoolMs / 1000, 1)} s per side, and checks every result says "valid"; a rate is signatures ÷ wall time, hand-off, \`postMessage\` round trips and the page's event loop included. ${v.one.length} rounds, 1 and ${v.n} alternating (which goes first alternates too), after a 0.3 s warm-up of each pool; the ratio is the median of the per-round ratios. The node's own jobs carry real sighashes of a block's inputs; the cost per signature (\`verify_strict\` of a 32-byte message) is the same.`);
  L.push('');
  L.push(`Spread: 1 worker ${range(v.one, 0)}, ${v.n} workers ${range(v.many, 0)} signatures/s; ${v.n} ÷ 1 per round ${range(p.ratios)}. Median time per job: 1 worker ${fmt(median(v.job1), 1)} ms, ${v.n} workers ${fmt(median(v.jobN), 1)} ms.`);
  L.push('');
  L.push(`Cores the run got (CPU time of the bench's process tree — Chromium and its workers, the idle relays, this script — ÷ wall time, from \`/proc\`): 1 worker ${range(v.cpu1, 2)} (median ${fmt(median(v.cpu1), 2)}), ${v.n} workers ${range(v.cpuN, 2)} (median ${fmt(median(v.cpuN), 2)}). Wall time inside \`verifyChunk\`, summed over the workers, ÷ wall time (includes time a worker was runnable but descheduled): 1 worker median ${fmt(median(v.busy1), 2)}, ${v.n} workers median ${fmt(median(v.busyN), 2)}. As with the native row, other builds on this shared machine take cores from the N-worker side first: the goal needs the cores free (the ${v.n}-worker side's CPU near ${v.n}).`);
  const per1 = v.one.map((x, i) => x / v.cpu1[i]);
  const perN = v.many.map((x, i) => x / v.cpuN[i]);
  L.push('');
  L.push(`Signatures per CPU-second of that process tree (what splitting over more workers costs, whatever the load): 1 worker ${fmt(median(per1), 0)}, ${v.n} workers ${fmt(median(perN), 0)} (medians over rounds; ${v.n} ÷ 1 ${fmt(median(perN) / median(per1), 3)}).`);
  L.push('<!-- p5-browser:end -->');
  return L.join('\n');
}

// ---- the section ------------------------------------------------------------------------------

function docSection(r) {
  const m = r.machine;
  const MH = (x) => x / 1e6;
  const h = r.hash;
  const p1s = pair(h['wasm-simd'], h['native-soft']);
  const p2ns = pair(h['wasm-simd'], h.noble);
  const p2ws = pair(h['wasm-simd'], h.hashwasm);
  const pSimd = pair(h['wasm-simd'], h.wasm);
  const p1 = pair(h.wasm, h['native-soft']);
  const p1ni = pair(h.wasm, h.native);
  const p2n = pair(h.wasm, h.noble);
  const p2w = pair(h.wasm, h.hashwasm);
  const p2nm = pair(h.wasm, h['noble-midstate']);
  const p2wm = pair(h.wasm, h['hashwasm-midstate']);
  const p3 = pair(r.poolNRates, r.pool1);
  const perWorker = r.poolNPer.flat();
  const p5b = pair(r.verify.batch, r.verify.single);
  const p5n = pair(r.verify.single, r.verify.noble);
  const blocks = r.chain.blocks;
  const bps = (ms) => (blocks / ms) * 1000;
  const idbBlock = r.idb.block.map(bps);
  const idbRecord = r.idb.record.map(bps);
  const p6 = pair(idbBlock, idbRecord);
  const pct = (x) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a');
  const n = h.wasm.length;

  const rows = [
    ['P1', 'Mining, 1 thread, MH/s — A: wasm simd128 kernel (`web/pkg-simd`, what mining workers load) in one Chromium module Worker, B: native `MinerJob::step`, scalar SHA-256 (`sha2/force-soft`); target ≥ 1.6', MH(p1s.medA), MH(p1s.medB), p1s.ratio],
    ['P2', 'Mining, 1 thread, MH/s — A: wasm simd128 (same runs), B: @noble/hashes `sha256(sha256(header))` per nonce, same worker; target ≥ 6', MH(p2ns.medA), MH(p2ns.medB), p2ns.ratio],
    ['P2', 'Mining, 1 thread, MH/s — A: wasm simd128 (same runs), B: hash-wasm SHA-256 twice per nonce, same worker', MH(p2ws.medA), MH(p2ws.medB), p2ws.ratio],
    ['—', 'Mining, 1 thread, MH/s — A: wasm simd128, B: wasm scalar (`web/pkg`), same worker', MH(pSimd.medA), MH(pSimd.medB), pSimd.ratio],
    ['P1', 'Mining, 1 thread, MH/s — A: wasm scalar `MinerJob.step` in one Chromium module Worker, B: native `MinerJob::step`, scalar SHA-256 (`sha2/force-soft`)', MH(p1.medA), MH(p1.medB), p1.ratio],
    ['P1', 'Mining, 1 thread, MH/s — A: wasm (same runs), B: native `MinerJob::step`, default build (SHA-NI)', MH(p1ni.medA), MH(p1ni.medB), p1ni.ratio],
    ['P2', 'Mining, 1 thread, MH/s — A: wasm (same runs), B: @noble/hashes `sha256(sha256(header))` per nonce, same worker', MH(p2n.medA), MH(p2n.medB), p2n.ratio],
    ['P2', 'Mining, 1 thread, MH/s — A: wasm (same runs), B: hash-wasm SHA-256 twice per nonce, same worker', MH(p2w.medA), MH(p2w.medB), p2w.ratio],
    ['P2', 'Mining, 1 thread, MH/s — A: wasm (same runs), B: @noble/hashes given a midstate too', MH(p2nm.medA), MH(p2nm.medB), p2nm.ratio],
    ['P2', 'Mining, 1 thread, MH/s — A: wasm (same runs), B: hash-wasm given a midstate too', MH(p2wm.medA), MH(p2wm.medB), p2wm.ratio],
    ['P3', `Mining with the page's worker (\`web/worker.js\`), MH/s — A: ${r.poolN} workers together, B: 1 worker`, MH(p3.medA), MH(p3.medB), p3.ratio],
    ['P5', `ed25519 in wasm, signatures/s — A: batch, B: single (\`benchVerify(${r.verifyN})\`)`, p5b.medA, p5b.medB, p5b.ratio],
    ['P5', 'ed25519, signatures/s — A: wasm single (`verify_strict`), B: @noble/ed25519 `verify` on the same signatures, same worker', p5n.medA, p5n.medB, p5n.ratio],
    ['P6', `IndexedDB import of ${blocks} blocks, blocks/s — A: one transaction per block, B: one per record (\`benchImportIdb\`)`, p6.medA, p6.medB, p6.ratio],
  ];
  const table = [
    '| | figure | A | B | ratio A ÷ B |',
    '|---|---|---:|---:|---:|',
    ...rows.map(([id, name, a, b, ratio]) => `| ${id} | ${name} | ${fmt(a)} | ${fmt(b)} | ${fmt(ratio, ratio < 0.1 ? 4 : 3)} |`),
  ].join('\n');

  const memMs = median(r.mem);
  const idbBlockMs = median(r.idb.block);
  const idbRecordMs = median(r.idb.record);

  const perWorkerText = r.poolNPer.map((per) => per.map((x) => fmt(MH(x))).join(' + ')).join('; ');
  const L = [];
  L.push('<!-- browser:begin -->');
  L.push('## Browser (`tests/bench/browser.bench.mjs`, Chromium)');
  L.push('');
  L.push(
    `Written by \`tests/bench/browser.bench.mjs\` on ${m.date}: ${m.cpu} (${m.cpus} logical CPUs; sha_ni ${m.shaNi ? 'yes' : 'no'}), ${m.kernel}, Debian Chromium ${m.chromium} (headless, \`navigator.hardwareConcurrency\` = ${m.hardwareConcurrency}), ${m.rustc}; wasm built by \`scripts/build-web.sh\` (profile \`release-wasm\`, no \`wasm-opt\`); Node ${m.node}; the relay and the native examples in the release profile. The step took ${fmt(r.seconds, 0)} s.`,
  );
  L.push('');
  L.push(
    "Every pair is measured in this one run, in rounds that alternate the sides (or rotate them where there are more than two), with the browser idle while a native side runs and the other way round. A and B are the medians of each side's rates; the ratio is the median over rounds of A ÷ B within the round (the native import is one figure, the B of every round). Absolute rates move with the load of the shared 2-core machine — the share of its CPU time that other processes took while each figure ran is listed below: compare ratios.",
  );
  L.push('');
  L.push(table);
  L.push('');
  L.push('Spread (min – max over the rounds) and load:');
  L.push('');
  L.push(`- P1/P2, MH/s, ${n} rounds of ${fmt(r.rounds.hashMs / 1000, 1)} s per side: wasm ${range(h.wasm.map(MH))}, native scalar ${range(h['native-soft'].map(MH))}, native SHA-NI ${range(h.native.map(MH))}, noble ${range(h.noble.map(MH))}, noble with midstate ${range(h['noble-midstate'].map(MH))}, hash-wasm ${range(h.hashwasm.map(MH))}, hash-wasm with midstate ${range(h['hashwasm-midstate'].map(MH))}; wasm ÷ native scalar ${range(p1.ratios)}, wasm ÷ noble ${range(p2n.ratios)}, wasm ÷ hash-wasm ${range(p2w.ratios)}; other processes took ${pct(r.load.p1)} of the machine's CPU time meanwhile`);
  L.push(`- P3, ${r.pool1.length} rounds of ${fmt(r.rounds.poolMs / 1000, 1)} s per side: 1 worker ${range(r.pool1.map(MH))} MH/s; ${r.poolN} workers ${range(r.poolNRates.map(MH))} MH/s, per worker ${fmt(MH(median(perWorker)))} MH/s (median; by round: ${perWorkerText}); ${r.poolN} ÷ 1 ${range(p3.ratios)}; other processes ${pct(r.load.p3)}`);
  L.push(`- P5, ${r.verify.single.length} rounds of ${r.verifyN} signatures: wasm single ${range(r.verify.single, 0)}, batch ${range(r.verify.batch, 0)}, noble ${range(r.verify.noble, 0)} signatures/s; batch ÷ single ${range(p5b.ratios)}; wasm ÷ noble ${range(p5n.ratios)}; other processes ${pct(r.load.p5)}`);
  L.push(`- P6, ${r.idb.block.length} rounds: one transaction per block ${range(r.idb.block, 0)} ms, per record ${range(r.idb.record, 0)} ms; per block ÷ per record ${range(p6.ratios)}; other processes ${pct(r.load.p6)}`);
  if (r.pageErrors.length) L.push(`- errors the pages logged: ${r.pageErrors.slice(0, 5).join(' | ').replace(/\n/g, ' ')}`);
  L.push('');
  L.push('### How each figure is measured');
  L.push('');
  L.push(`- **The header.** 88 bytes built in JS (\`benchHeader\` in \`web/bench.js\`): version 1, fixed parent and merkle-root bytes, a fixed time, bits \`0x03000001\` (a target of 1: no hash meets it, so no run ends early), nonce 0 — \`${r.header}\`. The native example is given the same bytes.`);
  L.push(`- **P1.** wasm: \`new MinerJob(header, 0, 1)\`, then \`step(65536)\` in a loop for ${fmt(r.rounds.hashMs / 1000, 1)} s in one module Worker (\`web/bench.js\` started as a worker, nothing else in it); hashes from \`job.hashes\`, time from \`performance.now()\`. Native: \`core/examples/hashrate.rs\`, the core's \`MinerJob::step(65536)\` on one thread for the same time, built twice — \`cargo build --release -p tabcoin-core --example hashrate --features sha2/force-soft\` (sha2's portable scalar compression: the code the wasm build runs, as wasm has no SHA instructions) and without the feature (sha2 picks SHA-NI at run time). Each nonce costs two SHA-256 compressions on both sides (the midstate of the first 64 bytes is computed once; then the padded 24-byte tail, then the outer hash). Each round rotates the order of the seven P1/P2 implementations; one 0.3 s warm-up run of each first.`);
  L.push(`- **P2.** In the same worker, on the same header, nonces counting up in bytes 80..84 of a copy: @noble/hashes \`sha256(sha256(header))\` per nonce (pure JS), and hash-wasm's \`createSHA256()\` hasher — \`init(); update(header); digest('binary')\`, twice per nonce (its own wasm SHA-256; the one-shot \`sha256()\` is async and returns hex, which would time promises, not hashing). Both compare the hash with the target as the core does. That is three compressions per nonce (88 bytes take two blocks, plus the outer hash) against wasm's two, so the "given a midstate" rows redo both with the first 64 bytes hashed once per run (noble: \`clone()\` of a hasher fed them; hash-wasm: \`save()\`/\`load()\` of its state): those ratios compare the SHA-256 code alone. Before timing, every JS variant must give WebCrypto's SHA-256d for several nonces, and the wasm \`MinerJob\` on an easy target must return exactly the first nonce WebCrypto says meets it.`);
  L.push(`- **P3.** The page's own mining worker, \`web/worker.js\`, driven by its protocol (\`{type: 'job', header, generation, index, count}\`, then \`{type: 'stop'}\`): pools of 1 and of N = \`navigator.hardwareConcurrency\` = ${r.poolN} workers, each on its nonce slice, ${fmt(r.rounds.poolMs / 1000, 1)} s per round, 1 and N alternating (which goes first alternates too), after a 0.5 s warm-up of each pool. Hashes are what the workers report (\`{type: 'hashes', n}\`, about every 500 ms and once more on stop); a rate is hashes ÷ the time from posting the jobs to posting the stop. The chunk a worker is in when the stop arrives (calibrated to about 20 ms) still counts, overstating every rate by up to about ${fmt((20 / r.rounds.poolMs) * 100, 1)}%, for 1 and N alike. Per-worker rate: one worker's hashes ÷ the same window.`);
  L.push(`- **P5.** In the compute worker. wasm: \`benchVerify(${r.verifyN})\` (\`wasm/src/bench.rs\`) — ${r.verifyN} signatures by 16 keys (seeds \`[i + 1; 32]\`), message i = SHA-256d of i as a u64 LE, checked by \`sig::verify_all\` in \`VerifyMode::Single\` (\`verify_strict\` per signature), then in \`VerifyMode::Batch\` (prechecks, then \`verify_batch\` in chunks of 128), each timed with \`Date.now()\` (1 ms resolution, hence ${r.verifyN} signatures). noble: the same ${r.verifyN} (key, message, signature) triples rebuilt in JS — keys from the same seeds with \`getPublicKey\`, messages with @noble/hashes, signatures from the wasm build's \`benchSign\` (noble's own \`sign\` gives the same bytes, checked) — verified one by one with \`ed.verify(sig, msg, key, {zip215: false})\` (RFC 8032 rules, the closer of noble's two modes to \`verify_strict\`), synchronously, SHA-512 from @noble/hashes. Which side goes first alternates by round; one warm-up round.`);
  L.push(`- **P6.** \`benchImportIdb(name, blocks, perRecord)\` on the page's main thread (where the node runs), a fresh database each time (deleted after): a fresh \`Chain\` accepts the ${blocks} blocks of \`web/bench-data/chain.bin\` one by one and each block's ChangeSet is written before the next block — in one readwrite transaction over all stores (\`IdbStore::persist\`, what the node does) or in one transaction per record (\`persist_per_record\`: the block, each UTXO change, the undo data, the tip). Timed inside wasm (\`Date.now()\`), validation included on both sides. The per-block side goes first in odd rounds.`);
  L.push('');
  L.push('### Reading');
  L.push('');
  const niOverSoft = median(h.native.map((x, i) => x / h['native-soft'][i]));
  L.push(`- Mining: wasm runs the midstate miner at ${fmt(p1.ratio, 2)}× the speed of the same Rust code built natively with scalar SHA-256 (${fmt(MH(p1.medA), 2)} vs ${fmt(MH(p1.medB), 2)} MH/s) and at ${fmt(p1ni.ratio, 2)}× the default native build (${fmt(MH(p1ni.medB), 2)} MH/s): per core, a tab mines ${fmt(1 / p1ni.ratio, 1)}× slower than a native miner on this CPU. Natively, the SHA-NI build runs at ${fmt(niOverSoft, 1)}× the scalar one (median of the rounds); wasm has no SHA instructions, so that factor is out of a tab's reach, while the compiled code itself runs at ${fmt(p1.ratio, 2)}× native scalar speed. Against JavaScript the wasm miner is ${fmt(p2n.ratio, 1)}× @noble/hashes and ${fmt(p2w.ratio, 1)}× hash-wasm per nonce; given the same midstate, ${fmt(p2nm.ratio, 1)}× and ${fmt(p2wm.ratio, 1)}×. hash-wasm's SHA-256 is wasm too, but per nonce it makes six calls into its module (init, update, digest, twice) and copies the data in and the digest out each time: an API made for long inputs, paid per 88-byte message.`);
  const othersCpus = r.load.p3 * m.cpus;
  const protocolGap = 1 - p3.medB / p1.medA;
  L.push(
    `- Workers: ${r.poolN} \`web/worker.js\` workers make ${fmt(p3.ratio, 2)}× the hashes of one (${fmt(MH(p3.medA), 2)} vs ${fmt(MH(p3.medB), 2)} MH/s; ${fmt(MH(median(perWorker)), 2)} MH/s per worker)` +
      (othersCpus > 0.3
        ? `; but other processes kept ${fmt(othersCpus, 1)} of the machine's ${m.cpus} CPUs busy on average while this ran, so ${r.poolN} workers could not each have a CPU: on this shared machine the figure says more about the neighbours than about Chromium, which runs each module Worker on its own thread.`
        : '.') +
      ` One such worker against P1's bare \`step\` loop: ${fmt(MH(p3.medB), 2)} vs ${fmt(MH(p1.medA), 2)} MH/s` +
      (Math.abs(protocolGap) < 0.1 ? ' — within 10%: the protocol (20 ms chunks, MessageChannel yields, a report every 500 ms) costs little.' : ` (${fmt(Math.abs(protocolGap) * 100, 0)}% ${protocolGap > 0 ? 'less' : 'more'}${othersCpus > 0.3 ? '; under that load, and measured minutes apart, this comparison is weak' : ''}).`),
  );
  L.push(
    `- ed25519: in wasm, batch verification runs at ${fmt(p5b.ratio, 2)}× single (${fmt(p5b.medA, 0)} vs ${fmt(p5b.medB, 0)} signatures/s; the core section measures the same pair natively)` +
      (p5b.ratio < 1 ? ', so `VerifyMode::Single` is the right default in the browser too' : '') +
      `. wasm single verification is ${fmt(p5n.ratio, 1)}× @noble/ed25519 (${fmt(p5n.medB, 0)} signatures/s).`,
  );
  L.push(`- IndexedDB: one transaction per block imports ${fmt(p6.medA, 0)} blocks/s, one per record ${fmt(p6.medB, 0)} (${fmt(p6.ratio, 2)}×). Validation is a small part of either: the same import in memory takes ${fmt(memMs, 1)} ms of the ${fmt(idbBlockMs, 0)} ms, so about ${fmt(((idbBlockMs - memMs) / idbBlockMs) * 100, 0)}% of a per-block import is IndexedDB, about ${fmt((idbBlockMs - memMs) / blocks, 2)} ms per block. The cost is per transaction rather than per byte: the same records in more, smaller transactions take ${fmt(p6.ratio, 1)}× as long, and the whole chain is only ${fmt(r.chain.bytes / 1024, 0)} KiB.`);
  L.push('<!-- browser:end -->');
  return L.join('\n');
}

// ---- the initial-sync section (P7) ----------------------------------------------------------

function syncSection(r) {
  const m = r.machine;
  const blocks = r.chain.blocks;
  const hv = r.heavy;
  const hBlocks = hv.blocks;
  const bps = (n) => (ms) => (n / ms) * 1000;
  // The native import of each round (older results: the one timed by make_chain at the start).
  const nativeList = r.chain.nativeRounds?.length ? r.chain.nativeRounds : [r.chain.nativeImportMs];
  const hNativeList = hv.native?.length ? hv.native : [hv.chain.native_import_ms];
  const nativeMs = median(nativeList);
  const hNativeMs = median(hNativeList);
  const vs = (n, natives) => (msList) => pair(msList.map(bps(n)), msList.map((_, i) => bps(n)(natives[Math.min(i, natives.length - 1)])));
  const vsNative = vs(blocks, nativeList);
  const vsHeavy = vs(hBlocks, hNativeList);
  const tipMs = r.syncs.map((s) => s.tip);
  const storedMs = r.syncs.map((s) => s.stored);
  const freeTipMs = r.syncsFree.map((s) => s.tip);
  const freeStoredMs = r.syncsFree.map((s) => s.stored);
  const realMs = r.real.map((x) => x.synced);
  const hTipMs = hv.syncs.map((s) => s.tip);
  const hStoredMs = hv.syncs.map((s) => s.stored);
  const p7 = vsNative(tipMs);
  const p7s = vsNative(storedMs);
  const p7f = vsNative(freeTipMs);
  const p7fs = vsNative(freeStoredMs);
  const p7r = vsNative(realMs);
  const p7m = vsNative(r.mem);
  const h7 = vsHeavy(hTipMs);
  const h7s = vsHeavy(hStoredMs);
  const h7m = vsHeavy(hv.mem);
  const med = (list, k) => median(list.map((s) => s[k]));
  const disconnects = r.syncs.map(closes);
  const disconnectsFree = r.syncsFree.map(closes);
  const pct = (x) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a');
  const slower = (ratio) => fmt(1 / ratio, 1);
  const rows = [
    ['P7', `Initial sync of the ${blocks}-block chain, blocks/s — A: fresh \`BrowserNode\` from the relay as shipped, start → tip at ${blocks} **stored in IndexedDB**, B: native import; goal ≤ 5× slower`, p7s],
    ['P7', 'Same syncs, start → tip in memory (the write queue not yet drained), B: native import', p7],
    ['P7', `Same chain from a relay with \`--messages-per-sec ${r.unlimitedRate}\`, start → tip stored, B: native import`, p7fs],
    ['P7', 'Same, start → tip in memory, B: native import', p7f],
    ['P7', `The real page (\`index.html\`, fresh context, relay as shipped): navigation → height ${blocks}, B: native import`, p7r],
    ['P7', 'Import in memory, blocks/s — A: wasm `benchImportMemory` (no network, no IndexedDB), B: native import', p7m],
    ...(r.nativeSyncs?.length
      ? [
          ['P7', `Context, not a goal — A: a fresh native relay (this build, empty database) syncing the same chain from the same relay, process spawn → tip at ${blocks} stored (redb), B: native import`, vsNative(r.nativeSyncs)],
          ['P7', 'Context — A: the browser sync, start → tip stored (the first row\'s A), B: that native relay sync', pair(storedMs.map(bps(blocks)), r.nativeSyncs.map(bps(blocks)))],
        ]
      : []),
    ['P7', `Initial sync of the ${hBlocks}-block chain of ${hv.payments}-payment blocks, blocks/s — A: fresh \`BrowserNode\`, relay as shipped, start → tip **stored**, B: native import; goal ≤ 3× slower`, h7s],
    ['P7', 'Same syncs, start → tip in memory, B: native import', h7],
    ['P7', `Import of the ${hBlocks} heavy blocks in memory — A: wasm \`benchImportMemory\`, B: native import`, h7m],
  ];
  const table = [
    '| | figure | A | B | ratio A ÷ B | A is × slower |',
    '|---|---|---:|---:|---:|---:|',
    ...rows.map(([id, name, p]) => `| ${id} | ${name} | ${fmt(p.medA)} | ${fmt(p.medB)} | ${fmt(p.ratio, p.ratio < 0.1 ? 4 : 3)} | ${slower(p.ratio)} |`),
  ].join('\n');
  const phaseKeys = [
    ['started', '`BrowserNode.start` returned (database opened, keys loaded or made)'],
    ['open', 'WebSocket to the relay open'],
    ['peer', 'handshake done'],
    ['firstSync', 'first sync progress (headers in)'],
    ['firstTip', 'first block connected'],
    ['tip', 'tip at the chain height'],
    ['stored', 'that tip stored in IndexedDB (the write queue drained)'],
  ];
  const L = [];
  L.push('<!-- browser-sync:begin -->');
  L.push('## Browser initial sync (P7, `tests/bench/browser.bench.mjs`, Chromium)');
  L.push('');
  L.push(
    `Written by \`tests/bench/browser.bench.mjs\` (the P7 part; \`BENCH_ONLY=p7\` runs only it) on ${m.date}: ${m.cpu} (${m.cpus} logical CPUs), ${m.kernel}, Debian Chromium ${m.chromium} (headless), ${m.rustc}; wasm built by \`scripts/build-web.sh\` (profile \`release-wasm\`, no \`wasm-opt\`); the relay and \`make_chain\` in the release profile. ${r.syncs.length} rounds; each round rotates the order of its eight steps (sync, sync without the rate limit, in-memory import, real page, heavy-chain sync, heavy-chain in-memory import, native imports of both chains, a native relay's sync). Other processes took ${pct(r.load.p7)} of the machine's CPU time meanwhile.`,
  );
  L.push('');
  L.push(table);
  L.push('');
  L.push(`Phases (ms after \`BrowserNode.start\` was called; medians of ${r.syncs.length}):`);
  L.push('');
  L.push(`| phase | ${blocks} blocks, relay as shipped | ${blocks} blocks, no rate limit | ${hBlocks} heavy blocks |`);
  L.push('|---|---:|---:|---:|');
  for (const [k, name] of phaseKeys) L.push(`| ${name} | ${fmt(med(r.syncs, k), 1)} | ${fmt(med(r.syncsFree, k), 1)} | ${fmt(med(hv.syncs, k), 1)} |`);
  L.push(`| blocks the write queue still held at the tip | ${fmt(med(r.syncs, 'unstoredAtTip'), 0)} | ${fmt(med(r.syncsFree, 'unstoredAtTip'), 0)} | ${fmt(med(hv.syncs, 'unstoredAtTip'), 0)} |`);
  L.push(`| \`tip\` + \`sync\` events the page received | ${fmt(med(r.syncs, 'events'), 0)} | ${fmt(med(r.syncsFree, 'events'), 0)} | ${fmt(med(hv.syncs, 'events'), 0)} |`);
  L.push(`| times the relay closed the connection | ${disconnects.join(', ')} | ${disconnectsFree.join(', ')} | ${hv.syncs.map(closes).join(', ')} |`);
  L.push(`| relay CPU time per sync | ${fmt(med(r.syncs, 'relayCpuMs'), 0)} | ${fmt(med(r.syncsFree, 'relayCpuMs'), 0)} | n/a |`);
  L.push('');
  L.push(`- Native import (median of the rounds): ${fmt(nativeMs, 1)} ms for the ${blocks}-block chain (${fmt(r.chain.bytes / 1024, 0)} KiB; ${range(nativeList, 1)}), ${fmt(hNativeMs, 0)} ms for the heavy chain (${range(hNativeList, 0)}); wasm in memory ${range(r.mem, 1)} and ${range(hv.mem, 0)} ms. Syncs from the relay as shipped: ${range(tipMs, 0)} ms to the tip, ${range(storedMs, 0)} ms stored; without the rate limit ${range(freeTipMs, 0)} / ${range(freeStoredMs, 0)} ms; the real page ${range(realMs, 0)} ms; heavy chain ${range(hTipMs, 0)} / ${range(hStoredMs, 0)} ms (min – max).`);
  const prof = r.profiles || {};
  for (const [name, label] of [['chain', `the ${blocks}-block chain`], ['heavy', 'the heavy chain']]) {
    const p = prof[name];
    if (!p) continue;
    const k = p.kinds;
    L.push(
      `- Where the page's main thread spends a sync of ${label} (one extra sync under Chromium's sampling profiler, 0.1 ms interval; tip ${fmt(p.tip, 0)} ms, stored ${fmt(p.stored, 0)} ms): wasm ${fmt(k.wasm, 0)} ms, JS ${fmt(k.js, 0)} ms, garbage collection ${fmt(k.gc, 0)} ms, the browser's own work on the thread ("program": IndexedDB and WebSocket plumbing, IPC) ${fmt(k.program, 0)} ms, idle ${fmt(k.idle, 0)} ms. Most self time: ${p.top.slice(0, 12).map(([f, ms]) => `${f.replace(/\|/g, '/')} ${fmt(ms, 1)}`).join('; ')}.`,
    );
  }
  L.push('');
  L.push('How it is measured:');
  L.push('');
  L.push(`- The chains: \`make_chain ${blocks}\` (\`relay/examples/make_chain.rs\`) — test-network blocks 30 s apart ending just before now, coinbase only plus a payment every tenth block; and \`make_chain ${hBlocks} --payments ${hv.payments}\` — after the first coinbase matures one block splits it into ${hv.payments} coins, then every block holds ${hv.payments} one-input two-output payments (${fmt(hv.chain.bytes / 1024 / 1024, 1)} MiB, ${hv.chain.signatures} signatures). Each writes the blocks to \`web/bench-data/\` and a relay database. The native import (B of every row) is timed in every round, as one of the round's steps: \`make_chain --import FILE\`, the median of three imports of the same blocks into a fresh \`Chain\` in memory (\`accept_block\`, no storage; the heavy chain one import), and each round's browser figures are divided by that round's native figure, so both sides run under the same load (the machine's load moved the native import from 24 to 205 ms between runs). Three relays serve those databases: \`target/release/tabcoin-relay --network test --data-dir DIR --web-dir web --listen 127.0.0.1:0\` as shipped (the ${blocks}-block chain, and the heavy chain), and the same with \`--messages-per-sec ${r.unlimitedRate}\` on a copy of the first.`);
  L.push(`- Browser sync: \`BrowserNode.start({relay: 'ws://127.0.0.1:PORT/ws', network: 'test', dbName})\` with a fresh database on the bench page's main thread and, as the page ships it (\`web/app.js\`), blocks' signature checks handed to the worker pool (\`web/verify-pool.js\`, \`onVerify\`); timed with \`performance.now()\` from just before \`start\` to the first \`tip\` event at or above the chain's height, and on until the database's \`meta/tip\` record (read every 5 ms over a second connection) is that block; then the node is stopped and its database deleted. The real page: \`index.html\` in a fresh browser context, from navigation until \`window.tabcoin.node.status().height\` reaches ${blocks} (polled every 20 ms). In-memory import: \`benchImportMemory(blocks)\` on the main thread, blocks decoded before the timer. Relay CPU time: utime + stime from \`/proc/PID/stat\` across each sync. With \`BENCH_PROFILE=1\` one more sync of each chain runs under the DevTools protocol's \`Profiler\` (the bench page's thread; samples bucketed by kind and by function, self time).`);
  L.push('- Native relay sync (context rows): each round, `target/release/tabcoin-relay --network test --data-dir EMPTY_DIR --web-dir web --listen 127.0.0.1:0 --allow-local-dial --api-requests-per-sec 100000 --peer ws://RELAY/ws` (the relay as shipped but for the API rate its polling needs, serving the 2000-block chain), timed with `performance.now()` in the bench script from just before spawning it until its `/api/status` (polled every 5 ms) reports the chain\'s height; a relay writes what a drain of its messages stored before it reads the next ones, so the tip it reports is stored. It pays what the tab pays but the browser: process start, a new database, the WebSocket, handshake, headers, the same block requests, validation and the store.');
  L.push('- The store measured: IndexedDB schema 4 (`docs/STORAGE.md`): per write transaction one `headers` chunk record, each body and its undo data in one `blocks` record, one `txindex` chunk record, one `utxo` log chunk record (folded into a snapshot of the node\'s set when the log outweighs the last one and 1 MiB), the tip once. The write queue (`wasm/src/queue.rs`, `Limits::BROWSER`) merges up to 256 ChangeSets or 4 MiB per transaction and holds the node back at 64 unstored blocks or 8 MiB until 16 blocks and 2 MiB are left.');
  L.push('<!-- browser-sync:end -->');
  return L.join('\n');
}

function writeDoc(section, name = 'browser', after = 'relay') {
  const file = path.join(ROOT, 'docs', 'BENCHMARKS.md');
  let doc = readFileSync(file, 'utf8');
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) {
    doc = doc.slice(0, i) + section + doc.slice(j + end.length);
  } else {
    // First run: after the relay section if there is one, else at the end.
    const anchor = `<!-- ${after}:end -->`;
    const k = doc.indexOf(anchor);
    if (k >= 0) {
      const at = k + anchor.length;
      doc = `${doc.slice(0, at)}\n\n${section}${doc.slice(at)}`;
    } else {
      doc = `${doc.replace(/\s*$/, '')}\n\n${section}\n`;
    }
  }
  writeFileSync(file, doc);
}

main().catch((e) => {
  console.error(e);
  killChildren();
  process.exit(1);
});
