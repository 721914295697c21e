// End-to-end: three things the page said that were not true. Two relays, each behind a
// forwarding proxy it advertises as its URL (tests/lib/proxy.mjs), so the test can partition
// the network: side A is R1 and tab A (R1's page), side B is R2 and tab B (R2's page).
//
//   TABCOIN_RELAY_BIN=target/debug/tabcoin-relay CHROMIUM_PATH=/usr/bin/chromium node --test tests/ui-truths.test.mjs
//
// 1. Stopping mining: the hashrate reads 0 beside "Idle", never the last rate.
// 2. The balances (PENDING among them) stay on one line, inside their box, at every width.
// 3. A payment and a post whose block a reorganisation orphans: their result lines go back to
//    "waiting for a block", then name their block in the new chain.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  byTestId,
  freePort,
  launchBrowser,
  mineUntil,
  openTab,
  saveConsole,
  screenshot,
  startMiningUi,
  startRelay,
  status,
  stopMiningUi,
  testIdText,
  unexpectedErrors,
  waitConverged,
  waitFor,
  waitJoined,
  waitStatus,
  wallet,
} from './lib/harness.mjs';
import { startProxy } from './lib/proxy.mjs';

const RELAY_ARGS = ['--api-requests-per-sec', '10000', '--max-per-ip', '64', '--max-http-per-ip', '256'];
/** Widths the page lays out for: small phones, phones, one column, two columns, three columns. */
const WIDTHS = [320, 375, 600, 800, 1280];

const txOf = (tab, txid) => tab.page.evaluate((id) => window.tabcoin.node.tx(id), txid);
const relayPeers = (st) => st.peers.filter((p) => p.kind === 'relay');

describe('the page says only what is true', { timeout: 600_000 }, () => {
  let browser;
  const relays = {};
  const proxies = {};
  const tabs = {};
  let cutAt = null;
  let healedAt = null;

  before(async () => {
    const ports = { R1: await freePort(), R2: await freePort() };
    // Side A: P1's page and whoever names P1's URL in its hello (R1); side B: the rest.
    const sideOfOrigin = (o) => (o === proxies.R1.url ? 'A' : 'B');
    proxies.R1 = await startProxy(ports.R1, { name: 'P1', side: 'A', sideOfOrigin, sideOfHello: () => 'B', sourceNet: '127.0.1' });
    const sideOfHello = (payload) => (payload ? (payload.includes(Buffer.from(proxies.R1.wsUrl)) ? 'A' : 'B') : null);
    proxies.R2 = await startProxy(ports.R2, { name: 'P2', side: 'B', sideOfOrigin, sideOfHello, sourceNet: '127.0.2' });
    relays.R1 = await startRelay({ name: 'R1', port: ports.R1, publicUrl: proxies.R1.wsUrl, args: RELAY_ARGS });
    relays.R2 = await startRelay({ name: 'R2', port: ports.R2, publicUrl: proxies.R2.wsUrl, args: [...RELAY_ARGS, '--peer', proxies.R1.wsUrl] });
    await waitFor(async () => (await relays.R1.status()).peers_relay >= 1 && (await relays.R2.status()).peers_relay >= 1, { timeout: 60_000, message: 'R1–R2 linked' });
    browser = await launchBrowser();
    tabs.A = await openTab(browser, `${proxies.R1.url}/`, { name: 'A', timeout: 120_000 });
    tabs.B = await openTab(browser, `${proxies.R2.url}/`, { name: 'B', timeout: 120_000 });
    for (const t of Object.values(tabs)) await waitJoined(t, { timeout: 60_000 });
  });

  after(async () => {
    for (const t of Object.values(tabs)) await saveConsole(t, `ui-truths-${t.name}`).catch(() => {});
    await browser?.close();
    for (const r of Object.values(relays)) await r.stop();
    for (const p of Object.values(proxies)) await p.close();
  });

  test('the storage line names no block range while the chain holds only genesis', { timeout: 60_000 }, async () => {
    const { A } = tabs;
    assert.equal(await A.page.evaluate(() => window.tabcoin.node.status().height), 0, 'the relays start a fresh chain');
    await waitFor(async () => ((await A.page.locator('#storage-kept').textContent()) || '').trim() !== '', { timeout: 10_000, message: 'A: storage line shown' });
    const line = (await A.page.locator('#storage-kept').textContent()).trim();
    assert.match(line, /^keeps no blocks yet \(0\.0 MB of [0-9.]+ [MG]B\)$/, `storage line at height 0: ${line}`);
  });

  test('when mining stops, the hashrate reads 0 beside "Idle", never the last rate', { timeout: 120_000 }, async () => {
    const { A } = tabs;
    // Every state the page shows is checked after each change of the pill or the hashrate
    // (a MutationObserver runs before the browser paints what changed).
    await A.page.evaluate(() => {
      const pill = document.getElementById('mining-state');
      const rate = document.getElementById('mining-hashrate');
      window.__staleIdle = [];
      const check = () => {
        if (pill.dataset.state === 'idle' && rate.dataset.hps !== '0') window.__staleIdle.push(`${pill.textContent.trim()} beside ${rate.textContent.trim()}`);
      };
      window.__staleObserver = new MutationObserver(check);
      for (const e of [pill, rate]) window.__staleObserver.observe(e, { attributes: true, childList: true, characterData: true, subtree: true });
    });
    await startMiningUi(A);
    await waitFor(async () => Number(await byTestId(A.page, 'mining-hashrate').getAttribute('data-hps')) > 0, { timeout: 30_000, message: 'A: a hashrate above 0 while mining' });
    const running = await testIdText(A.page, 'mining-hashrate');
    await stopMiningUi(A);
    await waitFor(async () => (await A.page.locator('#mining-state').getAttribute('data-state')) === 'idle', { timeout: 5_000, message: 'A: mining pill idle' });
    // Until the hashrate's own timer has run too (it is not what makes it right).
    await waitFor(async () => (await byTestId(A.page, 'mining-hashrate').getAttribute('data-hps')) === '0', { timeout: 10_000, message: 'A: hashrate 0' });
    const stale = await A.page.evaluate(() => {
      window.__staleObserver.disconnect();
      return window.__staleIdle;
    });
    await screenshot(A.page, 'ui-truths-1-idle-hashrate');
    assert.deepEqual(stale, [], `the page showed a rate beside Idle (the rate while mining was ${running})`);
    assert.equal((await A.page.locator('#mining-state').textContent()).trim(), 'Idle');
    assert.equal(await testIdText(A.page, 'mining-hashrate'), '0 H/s');
    // Blocks were mined: the storage line now names the range it keeps.
    const height = await A.page.evaluate(() => window.tabcoin.node.status().height);
    await waitFor(async () => /^keeps blocks 1\.\.[0-9,]+ \(/.test(((await A.page.locator('#storage-kept').textContent()) || '').trim()), { timeout: 10_000, message: `A: storage line names blocks 1..${height}` });
  });

  test('the balances stay on one line inside their box at every width the page supports (PENDING did wrap mid-number)', { timeout: 180_000 }, async () => {
    const { A, B } = tabs;
    // A needs mature coins; a long amount (all eight decimals) is what wrapped.
    await mineUntil(A, { until: () => Number(window.tabcoin.node.wallet().confirmed) >= 200, timeout: 90_000, message: 'A has 200 mature coins' });
    const amount = '123.45678901';
    await byTestId(A.page, 'send-to').fill((await wallet(B)).address);
    await byTestId(A.page, 'send-amount').fill(amount);
    await byTestId(A.page, 'send-submit').click();
    const txid = await waitFor(async () => (await byTestId(A.page, 'send-result').getAttribute('data-txid')) || null, { timeout: 15_000, message: 'A: send-result data-txid' });
    await waitFor(async () => (await byTestId(B.page, 'wallet-pending').getAttribute('data-value')) === amount, { timeout: 30_000, message: `B: pending ${amount}` });

    const failures = [];
    for (const width of WIDTHS) {
      await B.page.setViewportSize({ width, height: 900 });
      const boxes = await B.page.evaluate(() =>
        ['wallet-confirmed', 'wallet-immature', 'wallet-pending', 'wallet-spending'].map((id) => {
          const e = document.getElementById(id);
          const r = e.getBoundingClientRect();
          const box = e.closest('.balance').getBoundingClientRect();
          return { id, text: e.textContent, lines: e.getClientRects().length, left: r.left, right: r.right, boxLeft: box.left, boxRight: box.right };
        }),
      );
      for (const b of boxes) {
        if (b.lines !== 1) failures.push(`${width} px: #${b.id} "${b.text}" takes ${b.lines} lines`);
        if (b.left < b.boxLeft || b.right > b.boxRight) failures.push(`${width} px: #${b.id} "${b.text}" spills out of its box (${b.left}–${b.right} in ${b.boxLeft}–${b.boxRight})`);
      }
      if (width === 320 || width === 1280) await screenshot(B.page, `ui-truths-2-balances-${width}`);
    }
    await B.page.setViewportSize({ width: 1280, height: 1000 });
    assert.deepEqual(failures, []);

    // The payment confirms: both sides start the next test from one chain holding it.
    await mineUntil(A, { until: (s, id) => window.tabcoin.node.tx(id)?.status === 'confirmed', arg: txid, timeout: 60_000, message: 'the payment confirms' });
    await waitConverged(A, [B], { minHeight: (await status(A)).height, timeout: 60_000 });
  });

  test('a payment and a post whose block is orphaned by a reorganisation read "waiting for a block" again, then their block in the new chain', { timeout: 300_000 }, async () => {
    const { A, B } = tabs;
    const { R1, R2 } = relays;
    const P1 = proxies.R1;
    await waitConverged(A, [B], { timeout: 60_000 });
    cutAt = Date.now();
    for (const p of Object.values(proxies)) p.cut();
    await waitFor(async () => (await R1.status()).peers_relay === 0, { timeout: 30_000, message: 'R1 cut off from R2' });
    await waitStatus(A, (s) => relayPeers(s).length >= 1 && relayPeers(s).every((p) => p.url === P1.wsUrl), { timeout: 30_000, message: 'only R1 left' });
    await waitStatus(B, (s) => s.connected && !relayPeers(s).some((p) => p.url === P1.wsUrl), { timeout: 30_000, message: 'no link to R1' });
    const fork = (await status(A)).height;

    // Side A: a payment and a post, mined into side A's next block.
    await byTestId(A.page, 'send-to').fill((await wallet(B)).address);
    await byTestId(A.page, 'send-amount').fill('1.5');
    await byTestId(A.page, 'send-submit').click();
    const pay = await waitFor(async () => (await byTestId(A.page, 'send-result').getAttribute('data-txid')) || null, { timeout: 15_000, message: 'A: send-result data-txid' });
    await byTestId(A.page, 'post-text').fill(`posted on side A, ${new Date().toISOString()}`);
    await byTestId(A.page, 'post-submit').click();
    const post = await waitFor(async () => (await byTestId(A.page, 'post-result').getAttribute('data-txid')) || null, { timeout: 15_000, message: 'A: post-result data-txid' });
    const lines = async () => ({ send: await testIdText(A.page, 'send-result'), post: await testIdText(A.page, 'post-result') });
    const linesSay = (re, what) =>
      waitFor(async () => {
        const l = await lines();
        return re.test(l.send) && re.test(l.post) ? l : null;
      }, { timeout: 20_000, message: `A: both result lines say ${what}` });
    await linesSay(/ · waiting for a block$/, '"waiting for a block"');

    await mineUntil(A, { until: (s, ids) => ids.every((id) => window.tabcoin.node.tx(id)?.status === 'confirmed'), arg: [pay, post], timeout: 60_000, message: 'side A confirms both' });
    const first = (await txOf(A, post)).height;
    assert.equal((await txOf(A, pay)).height, first, 'the payment and the post share side A’s block');
    await linesSay(new RegExp(` · in block #${first}$`), `"in block #${first}"`);
    await screenshot(A.page, 'ui-truths-3-in-side-A-block');

    // Side B mines a longer branch (equal work per block on the test network) without them.
    const heightA = (await status(A)).height;
    await mineUntil(B, { height: heightA + 1, timeout: 60_000, message: 'side B outgrows side A' });
    assert.equal((await txOf(B, post)), null, 'side B never saw the post');

    healedAt = Date.now();
    for (const p of Object.values(proxies)) p.heal();
    const tipB = (await status(B)).tip;
    await waitStatus(A, (s) => s.tip === tipB, { timeout: 60_000, message: 'A reorganises onto side B’s tip' });
    await waitFor(async () => (await R1.status()).tip === tipB && (await R2.status()).tip === tipB, { timeout: 60_000, message: 'both relays on side B’s tip' });
    for (const id of [pay, post]) assert.equal((await txOf(A, id))?.status, 'mempool', `A: ${id} is back in the pool`);
    // The block the lines named is gone: they say so.
    const back = await linesSay(/ · waiting for a block$/, '"waiting for a block" again');
    assert.doesNotMatch(`${back.send}\n${back.post}`, /in block/);
    await screenshot(A.page, 'ui-truths-3-orphaned');

    // Mined again in the new chain: the lines name the new block.
    await mineUntil(A, { until: (s, ids) => ids.every((id) => window.tabcoin.node.tx(id)?.status === 'confirmed'), arg: [pay, post], timeout: 60_000, message: 'the new chain confirms both' });
    const second = (await txOf(A, post)).height;
    assert.ok(second > fork, `confirmed above the fork (${second} > ${fork})`);
    assert.equal((await txOf(A, pay)).height, second);
    await linesSay(new RegExp(` · in block #${second}$`), `"in block #${second}"`);
    await screenshot(A.page, 'ui-truths-3-in-new-block');
  });

  test('no console errors but dials across the partition', async () => {
    const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const dial = new RegExp(`^WebSocket connection to '(${Object.values(proxies).map((p) => esc(p.wsUrl)).join('|')})' failed`);
    const allowed = cutAt ? [{ pattern: dial, reason: 'dials across the partition', after: cutAt, before: (healedAt ?? Date.now()) + 30_000 }] : [];
    for (const t of Object.values(tabs)) {
      const bad = unexpectedErrors(t, allowed);
      assert.deepEqual(bad, [], `${t.name} logged errors:\n${bad.map((e) => `${e.kind}: ${e.text}`).join('\n')}`);
    }
  });
});
