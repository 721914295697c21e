// End-to-end harness: real relay processes on loopback and real Chromium tabs (playwright-core).
//
// Every relay runs on 127.0.0.1 with a port picked here (so its --public-url can name it),
// logs to tests/artifacts/relay-PORT.log, and is killed when the test process exits. Every
// browser node is one `browser.newContext()` (contexts share no storage, so each is its own
// node with its own IndexedDB and wallet); every tab records console errors and page errors so
// a test can assert there were none.

import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

export { sleep };

// ---- polling ----------------------------------------------------------------------------------

/**
 * Polls `fn` until it returns a truthy value (which is returned). On timeout, throws with
 * `message` and the last value or error seen, so a failure says what was observed.
 */
export async function waitFor(fn, { timeout = 30_000, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const seen = lastErr ? `last error: ${lastErr.message || lastErr}` : `last value: ${describe(last)}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${message} (${seen})`);
    }
    await sleep(interval);
  }
}

function describe(v) {
  try {
    const s = JSON.stringify(v);
    return s && s.length > 600 ? `${s.slice(0, 600)}…` : s;
  } catch {
    return String(v);
  }
}

// ---- relays -----------------------------------------------------------------------------------

const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A TCP port that was free a moment ago (bind to 0, read it, close). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function checkWebBuilt() {
  const pkg = path.join(ROOT, 'web', 'pkg', 'tabcoin_wasm.js');
  if (!existsSync(pkg)) throw new Error(`${pkg} is missing: run \`bash scripts/build-web.sh\` (npm run build:web) first`);
}

export function relayBin() {
  const bin = process.env.TABCOIN_RELAY_BIN || path.join(ROOT, 'target', 'debug', 'tabcoin-relay');
  if (!existsSync(bin)) {
    throw new Error(`relay binary ${bin} not found: run \`cargo build -p tabcoin-relay\` or set TABCOIN_RELAY_BIN`);
  }
  return bin;
}

/**
 * Starts a relay on the test network. `args` are extra flags (e.g. ['--peer', url]);
 * `dataDir` keeps its database there (default: --in-memory); `port` reuses a port (a restart),
 * otherwise a free one is picked; `webDir` serves another copy of the page (default web/);
 * `publicUrl` is the URL it advertises (default its own /ws, e.g. a proxy's instead);
 * `allowLocalDial: false` makes it dial no loopback URL (its links then all come in).
 * Resolves once /api/status answers.
 */
export async function startRelay({
  args = [],
  dataDir = null,
  name = 'relay',
  port: fixedPort = null,
  webDir = path.join(ROOT, 'web'),
  publicUrl = null,
  allowLocalDial = true,
} = {}) {
  const bin = relayBin();
  checkWebBuilt();
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = fixedPort ?? (await freePort());
    const url = `http://127.0.0.1:${port}`;
    const wsUrl = `ws://127.0.0.1:${port}/ws`;
    const logFile = path.join(ARTIFACTS, `relay-${port}${fixedPort ? `-${Date.now()}` : ''}.log`);
    const flags = [
      '--network', 'test',
      '--listen', `127.0.0.1:${port}`,
      '--web-dir', webDir,
      '--public-url', publicUrl ?? wsUrl,
      // Every relay of the tests runs on 127.0.0.1: let them dial each other (unless a test
      // wants a relay whose links all come in, e.g. through a proxy it controls).
      ...(allowLocalDial ? ['--allow-local-dial'] : []),
      ...(dataDir ? ['--data-dir', dataDir] : ['--in-memory']),
      ...args,
    ];
    const log = createWriteStream(logFile);
    log.write(`# ${name}: ${bin} ${flags.join(' ')}\n`);
    const child = spawn(bin, flags, {
      cwd: ROOT,
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    let exited = null;
    const exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        exited = { code, signal };
        children.delete(child);
        resolve(exited);
      });
    });
    try {
      await waitFor(
        async () => {
          if (exited) throw new Error(`relay exited early (${describe(exited)}); see ${logFile}`);
          const r = await fetch(`${url}/api/status`);
          return r.ok;
        },
        { timeout: 20_000, interval: 100, message: `relay ${name} on port ${port} to answer /api/status` },
      );
    } catch (e) {
      lastErr = e;
      child.kill('SIGKILL');
      await exitPromise;
      if (!exited || fixedPort || attempt === 2) throw e;
      continue; // most likely the port was taken meanwhile: try another
    }
    const relay = {
      name,
      port,
      url,
      wsUrl,
      logFile,
      pid: child.pid,
      get exited() {
        return exited;
      },
      /** SIGTERM and wait for a clean exit (SIGKILL after 10 s). */
      async stop() {
        if (exited) return exited;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const r = await exitPromise;
        clearTimeout(t);
        return r;
      },
      /** SIGKILL: the relay vanishes without closing anything (failover tests). */
      async kill() {
        if (exited) return exited;
        child.kill('SIGKILL');
        return exitPromise;
      },
      status: () => getJson(`${url}/api/status`),
      peers: () => getJson(`${url}/api/peers`),
      metrics: () => getMetrics(url),
    };
    return relay;
  }
  throw lastErr;
}

/**
 * Lines of the relay's log where it banned or penalised a peer. In these tests every node is
 * honest, so any such line is a bug, or a relay and a wasm package built from different
 * sources (rebuild both).
 */
export async function relayBans(relay) {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(relay.logFile, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => /\bbanned\b|misbehav/i.test(l));
}

export async function getJson(url) {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return r.json();
}

/** Prometheus text → { 'name' or 'name{labels}': number }. */
export async function getMetrics(baseUrl) {
  const r = await fetch(`${baseUrl}/metrics`, { cache: 'no-store' });
  if (!r.ok) throw new Error(`GET ${baseUrl}/metrics: HTTP ${r.status}`);
  const out = {};
  for (const line of (await r.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/**
 * A relay metric once it has settled: the relay refreshes its metrics on its 500 ms tick, so
 * read until two reads a tick apart agree.
 */
export async function settledMetric(relay, name, { timeout = 10_000 } = {}) {
  let prev = null;
  return waitFor(
    async () => {
      const v = (await relay.metrics())[name] ?? 0;
      const same = prev !== null && v === prev;
      prev = v;
      if (!same) await sleep(600);
      return same ? { value: v } : null;
    },
    { timeout, interval: 0, message: `metric ${name} to settle` },
  ).then((r) => r.value);
}

export async function tempDir(prefix = 'tabcoin-e2e-') {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

// ---- browser ----------------------------------------------------------------------------------

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * Opens `url` in a page of `context` (a new context unless one is given: one context = one
 * node). Console errors and page errors are collected in `tab.errors`. Unless
 * `waitReady: false`, waits until `window.tabcoin.ready` resolved (the node runs).
 */
export async function openTab(browser, url, { context = null, name = 'tab', waitReady = true, timeout = 60_000, noHttpCache = false } = {}) {
  const ctx = context || (await browser.newContext({ viewport: { width: 1280, height: 1000 } }));
  // Routing every request disables Playwright's HTTP cache for the context: each fetch of the
  // page's files (worker.js, the wasm package) goes to the server, as after the browser's
  // heuristic cache lifetime ran out.
  if (noHttpCache && !context) await ctx.route('**/*', (route) => route.continue());
  const page = await ctx.newPage();
  const tab = { name, page, context: ctx, errors: [], log: [] };
  watchPage(tab);
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  if (waitReady) await waitReadyOf(tab, { timeout });
  return tab;
}

function watchPage(tab) {
  tab.page.on('console', (msg) => {
    const entry = `[${new Date().toISOString()}] ${msg.type()}: ${msg.text()}`;
    tab.log.push(entry);
    if (msg.type() === 'error') tab.errors.push({ kind: 'console', text: msg.text(), at: Date.now() });
  });
  tab.page.on('pageerror', (err) => {
    tab.log.push(`[${new Date().toISOString()}] pageerror: ${err.stack || err.message}`);
    tab.errors.push({ kind: 'pageerror', text: err.stack || err.message, at: Date.now() });
  });
  tab.page.on('crash', () => tab.errors.push({ kind: 'crash', text: 'page crashed', at: Date.now() }));
}

/** Resolves once the page's node runs (`window.tabcoin.ready`); rejects with the page's reason. */
export async function waitReadyOf(tab, { timeout = 60_000 } = {}) {
  await tab.page.waitForFunction(() => window.tabcoin && window.tabcoin.ready, null, { timeout });
  await tab.page.evaluate(
    (ms) =>
      Promise.race([
        window.tabcoin.ready.then(() => true),
        new Promise((_, rej) => setTimeout(() => rej(new Error(`window.tabcoin.ready did not resolve within ${ms} ms`)), ms)),
      ]),
    timeout,
  );
}

/** `node.status()` of a tab. */
export function status(tab) {
  return tab.page.evaluate(() => window.tabcoin.node.status());
}

export function wallet(tab) {
  return tab.page.evaluate(() => window.tabcoin.node.wallet());
}

/** Hashes of the newest `n` blocks of the tab's active chain, newest first. */
export function blockHashes(tab, n = 50) {
  return tab.page.evaluate((k) => window.tabcoin.node.blocks(k).map((b) => b.hash), n);
}

/** Polls the tab's status until `pred(status)` holds; returns that status. */
export async function waitStatus(tab, pred, { timeout = 30_000, message = 'status predicate' } = {}) {
  let last;
  try {
    return await waitFor(
      async () => {
        last = await status(tab);
        return pred(last) ? last : null;
      },
      { timeout, interval: 150, message: `${tab.name}: ${message}` },
    );
  } catch (e) {
    if (last) e.message += `\n${tab.name} status: ${describe(summary(last))}`;
    throw e;
  }
}

/** The interesting part of a status, for failure messages. */
export function summary(st) {
  if (!st) return st;
  return {
    height: st.height,
    tip: st.tip?.slice(0, 16),
    synced: st.synced,
    connected: st.connected,
    mining: st.mining,
    peers: (st.peers || []).map((p) => `${p.kind}:${p.url || p.id}@${p.height}`),
    knownRelays: st.knownRelays,
  };
}

/** Waits until the node is connected to a relay and synced. */
export function waitJoined(tab, opts = {}) {
  return waitStatus(tab, (s) => s.connected && s.synced, { message: 'connected and synced', ...opts });
}

/** Waits until every tab has the same tip as `leader` (at height ≥ minHeight). */
export async function waitConverged(leader, tabs, { minHeight = 0, timeout = 30_000 } = {}) {
  return waitFor(
    async () => {
      const sts = await Promise.all([leader, ...tabs].map(status));
      const [l] = sts;
      if (l.height < minHeight) return null;
      return sts.every((s) => s.tip === l.tip) ? l : null;
    },
    { timeout, interval: 200, message: `${[leader, ...tabs].map((t) => t.name).join(', ')} to share one tip at height ≥ ${minHeight}` },
  ).catch(async (e) => {
    const sts = await Promise.all([leader, ...tabs].map((t) => status(t).then((s) => `${t.name}: ${describe(summary(s))}`, (err) => `${t.name}: ${err.message}`)));
    e.message += `\n${sts.join('\n')}`;
    throw e;
  });
}

// ---- page UI helpers (data-testid contract) -----------------------------------------------------

export function byTestId(page, id) {
  return page.locator(`[data-testid="${id}"]`);
}

/** Text of a testid element, trimmed. */
export async function testIdText(page, id) {
  return ((await byTestId(page, id).first().textContent()) || '').trim();
}

/** Waits until the mining toggle is enabled, sets one worker and starts mining by clicking. */
export async function startMiningUi(tab, { workers = 1 } = {}) {
  const { page } = tab;
  const toggle = byTestId(page, 'mining-toggle');
  await waitFor(async () => !(await toggle.isDisabled()), { timeout: 10_000, message: `${tab.name}: mining-toggle enabled` });
  await byTestId(page, 'mining-workers').selectOption(String(workers));
  if ((await toggle.getAttribute('data-running')) !== 'true') await toggle.click();
  await waitFor(async () => (await toggle.getAttribute('data-running')) === 'true', { timeout: 5_000, message: `${tab.name}: mining-toggle data-running=true` });
}

export async function stopMiningUi(tab) {
  const toggle = byTestId(tab.page, 'mining-toggle');
  if ((await toggle.getAttribute('data-running')) === 'true') await toggle.click();
  await waitFor(async () => (await toggle.getAttribute('data-running')) === 'false', { timeout: 5_000, message: `${tab.name}: mining-toggle data-running=false` });
}

/**
 * Mines with the tab's UI until the tab's own status satisfies `until(status)` (default: its
 * height reached `height`), then stops mining with the same button. The condition is checked
 * inside the page every few milliseconds and the stop click happens there too: on the test
 * network a worker finds blocks as fast as templates arrive (dozens a second), and every block
 * must be later than the median of the eleven before it, so each extra block pushes block time
 * ahead of the wall clock (which may be at most 120 s behind). Keep bursts short.
 * `until(status, arg)` must be self-contained (it is serialised into the page); pass what it
 * needs as `arg` (JSON).
 */
export async function mineUntil(tab, { height = null, until = null, arg = null, timeout = 60_000, message = null } = {}) {
  const src = until ? until.toString() : '(s, h) => s.height >= h';
  if (!until) arg = Number(height);
  await startMiningUi(tab);
  try {
    const st = await tab.page.evaluate(
      ({ src, arg, timeout }) =>
        new Promise((resolve, reject) => {
          const pred = new Function(`return (${src});`)();
          const toggle = document.querySelector('[data-testid="mining-toggle"]');
          const t0 = performance.now();
          const iv = setInterval(() => {
            const s = window.tabcoin.node.status();
            const done = pred(s, arg);
            if (done || performance.now() - t0 > timeout) {
              clearInterval(iv);
              if (toggle.dataset.running === 'true') toggle.click();
              if (done) resolve(s);
              else reject(new Error(`mining goal ${src} not reached in ${timeout} ms; height ${s.height}`));
            }
          }, 5);
        }),
      { src, arg, timeout },
    );
    return st;
  } catch (e) {
    e.message = `${tab.name}: ${message || 'mining'}: ${e.message}`;
    throw e;
  } finally {
    await stopMiningUi(tab).catch(() => {});
  }
}

/**
 * Mines `count` blocks on the tab's node without the page's mining workers: asks the node for
 * templates (`node.setMining(true)`; the page keeps the newest in `window.tabcoin.miner.template`)
 * and solves each with the wasm `MinerJob` of the module the page already loaded, on the
 * main thread, then hands the header to `node.submitHeader`. Needs nothing from the server,
 * so it works after the relay that served the page is gone. Returns the final status.
 */
export async function mineInPage(tab, count, { timeout = 30_000 } = {}) {
  return tab.page.evaluate(
    async ({ count, timeout }) => {
      const { node, miner } = window.tabcoin;
      if (!miner) throw new Error('the page does not expose window.tabcoin.miner (where templates arrive)');
      const wasm = await import(new URL('./pkg/tabcoin_wasm.js', location.href).href);
      const t0 = performance.now();
      const start = node.status().height;
      const tick = () => new Promise((r) => setTimeout(r, 5));
      node.setMining(true);
      try {
        while (node.status().height < start + count) {
          if (performance.now() - t0 > timeout) throw new Error(`mined ${node.status().height - start} of ${count} blocks in ${timeout} ms`);
          const t = miner.template;
          if (!t) {
            await tick();
            continue;
          }
          const job = new wasm.MinerJob(t.header, 0, 1);
          let found;
          while (!(found = job.step(100_000)) && job.hashes < 1e8) {
            /* a few hashes at test difficulty */
          }
          job.free();
          const before = node.status().tip;
          if (found) node.submitHeader(found);
          // Wait for the node to take the block (or for a fresher template).
          const w0 = performance.now();
          while (node.status().tip === before && miner.template === t && performance.now() - w0 < 2_000) await tick();
        }
      } finally {
        node.setMining(false);
      }
      return node.status();
    },
    { count, timeout },
  );
}

// ---- artefacts -----------------------------------------------------------------------------------

export async function screenshot(page, name) {
  const file = path.join(ARTIFACTS, `${name.replace(/[^\w.-]+/g, '_')}.png`);
  await page.screenshot({ path: file, fullPage: true }).catch((e) => {
    console.error(`screenshot ${name} failed: ${e.message}`);
  });
  return file;
}

/**
 * Writes a tab's console messages and the page's own activity list (newest first) to
 * tests/artifacts/NAME.console.log, for failure analysis.
 */
export async function saveConsole(tab, name = tab.name) {
  const { writeFile } = await import('node:fs/promises');
  let activity = '(page closed)';
  if (!tab.page.isClosed()) {
    activity = await tab.page
      .locator('#activity')
      .innerText({ timeout: 2_000 })
      .catch((e) => `(unavailable: ${e.message})`);
  }
  const text = `# console\n${tab.log.join('\n')}\n\n# page activity (newest first)\n${activity}\n`;
  await writeFile(path.join(ARTIFACTS, `${name.replace(/[^\w.-]+/g, '_')}.console.log`), text);
}

/**
 * Console errors of `tab` that no `allowed` entry explains. Each allowed entry is
 * `{ pattern: RegExp, reason: string, after?: ms-epoch, before?: ms-epoch }` (only errors
 * logged within [after, before] match).
 */
export function unexpectedErrors(tab, allowed = []) {
  return tab.errors.filter(
    (e) => !allowed.some((a) => a.pattern.test(e.text) && (a.after === undefined || e.at >= a.after) && (a.before === undefined || e.at <= a.before)),
  );
}
