// The page checks block signatures in its pool of verification workers (web/verify-pool.js,
// web/verify-worker.js; PROTOCOL §7 "Signature jobs"): a tab syncs signature-heavy blocks
// (300 payments each) through the pool, rejects a block with one bad signature through it,
// falls back to verifying on the page when the workers cannot load or do not answer, and does
// not trust results that are not results.
//
// The chains come from `relay/examples/sig_chain.rs` (255 funding blocks, then blocks of 300
// payments; with --bad a last block whose transaction 261 has one flipped signature bit, stored
// as the relay's tip behind a forged verdict, so the relay serves it).
//
//   cargo build -p tabcoin-relay --example sig_chain
//   TABCOIN_RELAY_BIN=target/debug/tabcoin-relay CHROMIUM_PATH=/usr/bin/chromium node --test tests/verify-pool.test.mjs

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';

import { ROOT, launchBrowser, openTab, saveConsole, startRelay, tempDir, unexpectedErrors, waitFor, waitJoined, waitStatus } from './lib/harness.mjs';

const TEST_TIMEOUT = 180_000;
const relays = [];
const temps = [];
let browser;

after(async () => {
  if (browser) await browser.close();
  for (const r of relays) await r.stop();
  for (const t of temps) await t.remove();
});

/** A relay serving a sig_chain database: `good` heavy blocks, then a bad one if `bad`. */
async function sigChainRelay(name, good, bad) {
  const bin = process.env.TABCOIN_SIG_CHAIN_BIN || path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'debug', 'examples', 'sig_chain');
  assert.ok(existsSync(bin), `${bin} missing: cargo build -p tabcoin-relay --example sig_chain`);
  const tmp = await tempDir(`tabcoin-${name}-`);
  temps.push(tmp);
  const made = JSON.parse(execFileSync(bin, [tmp.dir, String(good), ...(bad ? ['--bad'] : [])], { encoding: 'utf8' }).trim());
  const relay = await startRelay({ name, dataDir: tmp.dir });
  relays.push(relay);
  return { relay, made };
}

const verifyStats = (tab) => tab.page.evaluate(() => window.tabcoin.node.verifyStats());
const poolStats = (tab) => tab.page.evaluate(() => window.tabcoin.verifier && { ...window.tabcoin.verifier.stats, size: window.tabcoin.verifier.size });

// The tab drops (and may ban) the relay that served the bad block: the page says so.
const REJECTION = [
  { pattern: /rejected|invalid signature|banned|misbehav/i, reason: 'the bad block and its sender' },
  { pattern: /WebSocket|ERR_CONNECTION|closed/i, reason: 'the relay dropped after the bad block' },
];

test('a tab syncs 300-payment blocks through its verification workers and rejects a bad signature there', { timeout: TEST_TIMEOUT }, async () => {
  const { relay, made } = await sigChainRelay('sigs-bad', 2, true);
  browser ??= await launchBrowser();
  const tab = await openTab(browser, relay.url, { name: 'sigs-bad' });
  try {
    // Every job the node hands out (one per heavy block) is answered by the pool; the last
    // one's verdict is the bad signature.
    const stats = await waitFor(
      async () => {
        const s = await verifyStats(tab);
        return s.failed >= 1 ? s : null;
      },
      { timeout: 120_000, message: 'the bad block verified by the pool' },
    );
    const st = await waitStatus(tab, (s) => s.height === made.height - 1, { timeout: 30_000, message: 'the two good heavy blocks accepted' });
    assert.notEqual(st.tip, made.tip, 'the bad block is not the tip');
    // The bad block stays rejected: no later job connects it.
    assert.equal((await tab.page.evaluate(() => window.tabcoin.node.status())).height, made.height - 1);
    assert.ok(stats.workers >= 1, `the node splits jobs for the pool's workers: ${JSON.stringify(stats)}`);
    assert.ok(stats.handed >= 3 && stats.answered >= 3, `three 300-signature jobs went through the pool: ${JSON.stringify(stats)}`);
    assert.equal(stats.redone, 0, 'every answer of the pool was usable');
    const pool = await poolStats(tab);
    assert.ok(pool.chunksOnWorkers >= pool.chunks && pool.chunks >= 3 * 2, `workers verified every chunk: ${JSON.stringify(pool)}`);
    assert.equal(pool.chunksInPlace, 0, 'no chunk fell back to the page');
    assert.ok(pool.failedChunks >= 1, 'a worker found the bad signature');
    const activity = await tab.page.locator('#activity').innerText();
    assert.match(activity, /rejected:.*signature/i, 'the page says the block was rejected for its signature');
    assert.deepEqual(unexpectedErrors(tab, REJECTION), [], 'page errors');
  } finally {
    await saveConsole(tab);
  }
});

test('a tab whose verification workers cannot load verifies on the page and stays correct', { timeout: TEST_TIMEOUT }, async () => {
  const { relay, made } = await sigChainRelay('sigs-noworkers', 2, true);
  browser ??= await launchBrowser();
  const context = await browser.newContext();
  // The worker script is unreachable (as after a failed update): every worker fails to start.
  await context.route('**/verify-worker.js', (route) => route.abort());
  const tab = await openTab(browser, relay.url, { context, name: 'sigs-noworkers' });
  try {
    await waitFor(async () => (await verifyStats(tab)).failed >= 1, { timeout: 120_000, message: 'the bad block verified' });
    await waitStatus(tab, (s) => s.height === made.height - 1, { timeout: 30_000, message: 'the good heavy blocks accepted' });
    const pool = await poolStats(tab);
    assert.ok(pool.workerErrors >= 1, `workers were lost: ${JSON.stringify(pool)}`);
    assert.equal(pool.chunksOnWorkers, 0, 'no worker answered');
    assert.ok(pool.chunksInPlace >= pool.chunks && pool.chunks >= 6, 'every chunk was verified on the page instead');
    assert.equal((await tab.page.evaluate(() => window.tabcoin.node.status())).height, made.height - 1, 'the bad block is still rejected');
    const allowed = [...REJECTION, { pattern: /verify-worker|Failed to fetch|worker/i, reason: 'the worker script is blocked on purpose' }];
    assert.deepEqual(unexpectedErrors(tab, allowed), [], 'page errors');
  } finally {
    await saveConsole(tab);
  }
});

test('results a worker garbles are not trusted: the node verifies those jobs itself and still rejects the bad block', { timeout: TEST_TIMEOUT }, async () => {
  const { relay, made } = await sigChainRelay('sigs-garbled', 2, true);
  browser ??= await launchBrowser();
  const context = await browser.newContext();
  // A worker that answers every chunk with 13 bytes that are no result (status 0xff).
  const garbling = `self.postMessage({ type: 'ready' });
self.onmessage = (e) => self.postMessage({ type: 'result', id: e.data.id, result: new Uint8Array(13).fill(0xff), ms: 0 });`;
  await context.route('**/verify-worker.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: garbling }));
  const tab = await openTab(browser, relay.url, { context, name: 'sigs-garbled' });
  try {
    const stats = await waitFor(
      async () => {
        const s = await verifyStats(tab);
        return s.redone >= 3 ? s : null;
      },
      { timeout: 120_000, message: 'three jobs redone by the node' },
    );
    await waitStatus(tab, (s) => s.height === made.height - 1, { timeout: 30_000, message: 'the good heavy blocks accepted' });
    assert.equal(stats.answered, 0, `no garbled answer counted as an answer: ${JSON.stringify(stats)}`);
    const pool = await poolStats(tab);
    assert.ok(pool.chunksOnWorkers >= 6, `the garbling workers answered: ${JSON.stringify(pool)}`);
    await waitFor(async () => /rejected:.*signature/i.test(await tab.page.locator('#activity').innerText()), { timeout: 30_000, message: 'the bad block rejected' });
    assert.equal((await tab.page.evaluate(() => window.tabcoin.node.status())).height, made.height - 1, 'the bad block is not connected');
    assert.deepEqual(unexpectedErrors(tab, REJECTION), [], 'page errors');
  } finally {
    await saveConsole(tab);
  }
});

test('chunks of a worker that never answers are verified on the page after the timeout', { timeout: TEST_TIMEOUT }, async () => {
  const relay = await startRelay({ name: 'sigs-hang' });
  relays.push(relay);
  browser ??= await launchBrowser();
  const context = await browser.newContext();
  // A worker that loads and then never answers (as if stuck or crashed without an error event).
  const hanging = `self.postMessage({ type: 'ready' });
self.onmessage = () => {};`;
  await context.route('**/verify-worker.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: hanging }));
  const tab = await openTab(browser, relay.url, { context, name: 'sigs-hang' });
  try {
    // The page's own module and pool class, with a short timeout: one 300-signature job of
    // valid signatures (benchVerifyChunks), split for 2 workers.
    const r = await tab.page.evaluate(async () => {
      const wasm = await import('./pkg/tabcoin_wasm.js');
      const { VerifyPool } = await import('./verify-pool.js');
      const pool = new VerifyPool(wasm, { size: 2, chunkTimeoutMs: 500 });
      const chunks = wasm.benchVerifyChunks(300, 2);
      const results = await new Promise((resolve) => {
        pool.attach({ sigsVerified: (_ticket, res) => (resolve(res), true) });
        pool.submit(1, chunks);
      });
      pool.terminate();
      return { stats: pool.stats, chunks: chunks.length, results: results.map((x) => Array.from(x)) };
    });
    assert.equal(r.results.length, r.chunks);
    assert.ok(r.results.every((x) => x.length === 13 && x[8] === 0), 'every chunk verified valid');
    assert.ok(r.stats.workerErrors >= 2, `both workers lost on the timeout: ${JSON.stringify(r.stats)}`);
    assert.equal(r.stats.chunksOnWorkers, 0);
    assert.equal(r.stats.chunksInPlace, r.chunks, 'every chunk verified on the page');
  } finally {
    await saveConsole(tab);
  }
});

test('a clean chain of 300-payment blocks syncs through the workers with no error', { timeout: TEST_TIMEOUT }, async () => {
  const { relay, made } = await sigChainRelay('sigs-good', 3, false);
  browser ??= await launchBrowser();
  // The workers run under the page's CSP (the relay's header and the page's <meta>).
  const context = await browser.newContext();
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI}`));
  });
  const tab = await openTab(browser, relay.url, { context, name: 'sigs-good' });
  try {
    const st = await waitJoined(tab, { timeout: 120_000 });
    assert.equal(st.height, made.height);
    assert.equal(st.tip, made.tip);
    const stats = await verifyStats(tab);
    assert.ok(stats.handed >= 3 && stats.answered >= 3 && stats.failed === 0, JSON.stringify(stats));
    const pool = await poolStats(tab);
    assert.ok(pool.chunksOnWorkers >= 6 && pool.chunksInPlace === 0, JSON.stringify(pool));
    assert.equal(pool.workersReady, pool.size, 'every worker loaded its wasm');
    assert.deepEqual(await tab.page.evaluate(() => window.__cspViolations), [], 'CSP violations');
    assert.deepEqual(unexpectedErrors(tab), [], 'page errors');
  } finally {
    await saveConsole(tab);
  }
});
