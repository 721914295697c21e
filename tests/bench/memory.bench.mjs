// The tab's memory against chain size (issue 10): a fresh BrowserNode in headless Chromium
// syncs each of the relay memory bench's chains (1×, 2×, 4×, cached under target/membench/ by
// `cargo bench -p tabcoin-relay --bench memory`, which scripts/bench.sh runs first) from a relay
// on 127.0.0.1, and the bench reads the wasm memory and the JS heap once the tip is stored.
// Writes the `memory-tab` section of docs/BENCHMARKS.md.
//
//   node tests/bench/memory.bench.mjs          # needs web/ built (scripts/build-web.sh)
//   BENCH_NO_DOC=1 …                            # print only
//   MEMBENCH_TAB_SCALES=1,2 …                   # which chains (none by default: see SCALES)
//   MEMBENCH_WEB_DIR=DIR …                      # serve another built copy of web/
//
// Loopback only; the relay and Chromium it starts are stopped at the end. Not named *.test.mjs.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, startRelayProcess, stopProcess as stopChild } from './lib.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CACHE = path.join(ROOT, 'target', 'membench');
const WEB = process.env.MEMBENCH_WEB_DIR || path.join(ROOT, 'web');
/**
 * The chains the tab syncs (MEMBENCH_TAB_SCALES=1,2,4). None unless asked: a tab took 3 minutes
 * for the 1× chain (4,000 blocks, 187 MiB) and 7 for the 2× chain on the shared 2-core machine,
 * and `npm run bench` must stay under 15 minutes with the relay memory bench already near 10.
 */
const SCALES = (process.env.MEMBENCH_TAB_SCALES || '').split(',').filter(Boolean).map(Number);
/** Upper bound on one sync (a failure beyond it, not a figure). */
const SYNC_TIMEOUT_MS = 20 * 60_000;
const BEGIN = '<!-- memory-tab:begin -->';
const END = '<!-- memory-tab:end -->';

const log = (...a) => console.error('[memory bench]', ...a);
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** The newest complete chain cache the relay bench wrote: [{scale, blocks, bytes, tip, dir}]. */
function chains() {
  if (!existsSync(CACHE)) return null;
  const dirs = readdirSync(CACHE)
    .filter((d) => d.startsWith('chain-') && existsSync(path.join(CACHE, d, 'meta.txt')))
    .map((d) => path.join(CACHE, d));
  if (dirs.length === 0) return null;
  // The default chain first (4,000 blocks of 1×), else any.
  const dir = dirs.find((d) => path.basename(d).includes('-4000x')) ?? dirs[0];
  return readFileSync(path.join(dir, 'meta.txt'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const [scale, blocks, bytes, tip] = l.split(/\s+/);
      return { scale: Number(scale), blocks: Number(blocks), bytes: Number(bytes), tip, dir: path.join(dir, `db-${scale}x`) };
    });
}

function startRelay(dataDir, logFile) {
  const args = ['--network', 'test', '--data-dir', dataDir, '--web-dir', WEB, '--listen', '127.0.0.1:0', '--messages-per-sec', '100000'];
  return startRelayProcess({ bin: path.join(ROOT, 'target', 'release', 'tabcoin-relay'), args, logFile, timeoutMs: 60_000, children });
}

const stopProcess = (child) => stopChild(child, { graceMs: 30_000, children });

/** Waits until `url`/api/status reports `height` (the relay has loaded its store). */
async function waitHeight(url, height) {
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    try {
      const s = await (await fetch(`${url}/api/status`)).json();
      if (s.height >= height) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) throw new Error(`relay ${url} never reached height ${height}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * In the page: a fresh BrowserNode (fresh database) syncs from `relay` until its tip is
 * `tipHash` at `height` and the database's stored tip is that block; the node stays running.
 */
async function pageSync({ relay, height, tipHash, timeoutMs }) {
  const wasmMod = await import('./pkg/tabcoin_wasm.js');
  const exportsOf = await wasmMod.default();
  const dbName = `memory-${Date.now()}`;
  const t0 = performance.now();
  let reached;
  const atTip = new Promise((r) => (reached = r));
  const onEvent = (ev) => {
    if (ev.kind === 'tip' && ev.height >= height) reached(performance.now() - t0);
  };
  const node = await wasmMod.BrowserNode.start({ relay, network: 'test', dbName, onEvent, onTemplate: () => {} });
  window.memNode = node;
  window.memDb = dbName;
  const timer = new Promise((_, rej) => setTimeout(() => rej(new Error(`no tip at ${height} after ${timeoutMs} ms: ${JSON.stringify(node.status())}`)), timeoutMs));
  const tipMs = await Promise.race([atTip, timer]);
  // The stored tip: the meta store's `tip` record names the synced block.
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  for (;;) {
    const stored = await new Promise((resolve, reject) => {
      const req = indexedDB.open(dbName);
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const db = req.result;
        const g = db.transaction('meta').objectStore('meta').get('tip');
        g.onsuccess = () => {
          db.close();
          resolve(g.result ? hex(new Uint8Array(g.result)) : null);
        };
        g.onerror = () => {
          db.close();
          reject(g.error);
        };
      };
    });
    if (stored === tipHash) break;
    if (performance.now() - t0 > timeoutMs) throw new Error('the stored tip never reached the synced tip');
    await new Promise((r) => setTimeout(r, 20));
  }
  const storedMs = performance.now() - t0;
  const st = node.status();
  return { tipMs, storedMs, height: st.height, wasmBytes: exportsOf.memory.buffer.byteLength, storage: st.storage ?? null };
}

async function pageStop() {
  window.memNode.stop();
  window.memNode.free();
  await new Promise((resolve) => {
    const req = indexedDB.deleteDatabase(window.memDb);
    req.onsuccess = req.onerror = req.onblocked = () => resolve();
  });
}

function section(r) {
  const mib = (b) => (b / 1048576).toFixed(1);
  const L = [];
  L.push(BEGIN);
  L.push('## Tab memory against chain size (`node tests/bench/memory.bench.mjs`)');
  L.push('');
  L.push(
    `Written by \`tests/bench/memory.bench.mjs\` on ${r.date}: ${r.cpu} (${os.cpus().length} logical CPUs), Debian Chromium ${r.chromium} (headless), wasm built by \`scripts/build-web.sh\`. For each of the relay memory bench's chains (the \`memory\` section: ~50 KB blocks whose UTXO set stays the same size as the chain grows), a relay (release build, \`--messages-per-sec 100000\`) serves the chain's database and \`web/\`; in one page of \`bench.html\`, a fresh \`BrowserNode\` (fresh IndexedDB database, default prune budget) syncs from it until its tip is the chain's tip and IndexedDB's stored tip is that block. Then the bench forces a garbage collection (DevTools \`HeapProfiler.collectGarbage\`) and reads the JS heap in use (\`Runtime.getHeapUsage\`) and the wasm linear memory (\`memory.buffer.byteLength\`: it only grows, so it is the peak). Each chain in a fresh browser context.`,
  );
  L.push('');
  L.push('| chain | blocks | chain MiB | sync to stored tip, s | wasm memory, MiB | wasm ÷ chain bytes | JS heap used, MiB | JS heap ÷ chain bytes |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const m of r.rows) {
    L.push(`| ${m.scale}× | ${m.blocks} | ${mib(m.bytes)} | ${(m.storedMs / 1000).toFixed(1)} | ${mib(m.wasmBytes)} | ${(m.wasmBytes / m.bytes).toFixed(3)} | ${mib(m.jsUsed)} | ${(m.jsUsed / m.bytes).toFixed(3)} |`);
  }
  const left = [1, 2, 4].filter((s) => !r.rows.some((m) => m.scale === s));
  if (left.length) {
    L.push('');
    L.push(`- Not measured in this run: the ${left.map((s) => `${s}×`).join(' and ')} chain${left.length > 1 ? 's' : ''} (\`MEMBENCH_TAB_SCALES\` names the chains a run measures; \`npm run bench\` measures none unless it is set, to stay under 15 minutes).`);
  }
  const at = (s) => r.rows.find((m) => m.scale === s);
  if (at(2) && at(4)) {
    const d = (k) => (at(4)[k] - at(2)[k]) / (at(4).bytes - at(2).bytes);
    L.push('');
    L.push(`- Slope from the 2× to the 4× chain (bytes per chain byte): wasm memory ${d('wasmBytes').toFixed(3)}, JS heap ${d('jsUsed').toFixed(3)}. (No figure for the tab before the issue-10 work: its page does not run from this build's relay and bench page.)`);
  }
  L.push(END);
  return L.join('\n') + '\n';
}

function splice(old, sec) {
  const b = old.indexOf(BEGIN);
  const e = old.indexOf(END);
  if (b >= 0 && e > b) {
    let after = old.slice(e + END.length);
    if (after.startsWith('\n')) after = after.slice(1);
    return old.slice(0, b) + sec + after;
  }
  const sep = old === '' || old.endsWith('\n\n') ? '' : old.endsWith('\n') ? '\n' : '\n\n';
  return old + sep + sec;
}

async function main() {
  if (SCALES.length === 0) {
    log('no MEMBENCH_TAB_SCALES (e.g. 1,2,4): skipping the tab memory bench');
    return;
  }
  const made = chains();
  if (!made) {
    log(`no chains under ${CACHE}: run \`cargo bench -p tabcoin-relay --bench memory\` first; skipping`);
    return;
  }
  if (!existsSync(path.join(WEB, 'pkg', 'tabcoin_wasm.js'))) throw new Error(`${WEB}/pkg is not built (scripts/build-web.sh)`);
  const logDir = path.join(CACHE, 'run');
  mkdirSync(logDir, { recursive: true });
  const t0 = Date.now();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const chromiumVersion = browser.version();
  const rows = [];
  try {
    for (const c of made.filter((m) => SCALES.includes(m.scale))) {
      const relay = await startRelay(c.dir, path.join(logDir, `tab-relay-${c.scale}x.log`));
      try {
        await waitHeight(relay.url, c.blocks);
        const context = await browser.newContext();
        const page = await context.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        await page.goto(`${relay.url}/bench.html`);
        await page.waitForFunction(() => window.bench || window.benchError, null, { timeout: 120_000 });
        const wsUrl = `${relay.url.replace(/^http/, 'ws')}/ws`;
        const res = await page.evaluate(pageSync, { relay: wsUrl, height: c.blocks, tipHash: c.tip, timeoutMs: SYNC_TIMEOUT_MS });
        const cdp = await context.newCDPSession(page);
        await cdp.send('HeapProfiler.enable');
        await cdp.send('HeapProfiler.collectGarbage');
        const heap = await cdp.send('Runtime.getHeapUsage');
        const row = { ...c, ...res, jsUsed: heap.usedSize, jsTotal: heap.totalSize };
        log(`${c.scale}x: ${c.blocks} blocks stored in ${(res.storedMs / 1000).toFixed(1)} s; wasm ${(res.wasmBytes / 1048576).toFixed(1)} MiB, JS heap ${(heap.usedSize / 1048576).toFixed(1)} MiB${errors.length ? `; page errors: ${errors.join(' | ')}` : ''}`);
        rows.push(row);
        await page.evaluate(pageStop);
        await context.close();
      } finally {
        await stopProcess(relay.child);
      }
    }
  } finally {
    await browser.close();
  }
  const cpu = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] ?? 'unknown CPU';
  const d = new Date();
  const date = `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)} UTC`;
  const sec = section({ rows, date, cpu, chromium: chromiumVersion });
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  console.log(sec);
  if (process.env.BENCH_NO_DOC !== '1' && rows.length > 0) {
    const doc = path.join(ROOT, 'docs', 'BENCHMARKS.md');
    writeFileSync(doc, splice(existsSync(doc) ? readFileSync(doc, 'utf8') : '', sec));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
