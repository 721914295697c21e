// End-to-end: real relays (tabcoin-relay, test network, loopback) and real Chromium tabs
// running the page. One browser context per node: contexts share no IndexedDB.
//
//   TABCOIN_RELAY_BIN=target/debug/tabcoin-relay CHROMIUM_PATH=/usr/bin/chromium node --test tests/
//
// Artefacts (screenshots, relay logs, console logs) go to tests/artifacts/.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  blockHashes,
  byTestId,
  launchBrowser,
  mineInPage,
  mineUntil,
  openTab,
  relayBans,
  saveConsole,
  screenshot,
  settledMetric,
  sleep,
  startRelay,
  status,
  summary,
  tempDir,
  testIdText,
  unexpectedErrors,
  waitConverged,
  waitFor,
  waitJoined,
  waitReadyOf,
  waitStatus,
  wallet,
} from './lib/harness.mjs';

const TEST_TIMEOUT = 120_000;
const HEX64 = /^[0-9a-f]{64}$/;

/** Block hashes of the tab's active chain, newest first, down to genesis (at most 500: the API's cap). */
async function wholeChain(tab) {
  const { height } = await status(tab);
  const n = Math.min(height + 1, 500);
  const hashes = await blockHashes(tab, n);
  assert.equal(hashes.length, n, `${tab.name}: node.blocks(${n}) returns ${n} blocks`);
  return hashes;
}

/** The UI header agrees with the node: network, connection, sync state and height. */
async function assertHeaderShows(tab, { network = 'test' } = {}) {
  const { page } = tab;
  await waitFor(
    async () => {
      const st = await status(tab);
      const shown = {
        network: await testIdText(page, 'status-network'),
        connection: await testIdText(page, 'status-connection'),
        synced: await byTestId(page, 'status-synced').getAttribute('data-synced'),
        height: await testIdText(page, 'status-height'),
        peers: await testIdText(page, 'peer-count'),
        storage: await byTestId(page, 'storage-persisted').getAttribute('data-persisted'),
      };
      const ok =
        shown.network.includes(network) &&
        shown.connection === 'Connected' &&
        shown.synced === 'true' &&
        shown.height.replace(/[^\d]/g, '') === String(st.height) &&
        Number(shown.peers) >= 1 &&
        (shown.storage === 'true' || shown.storage === 'false');
      return ok ? shown : (tab.lastShown = shown) && null;
    },
    { timeout: 15_000, interval: 250, message: `${tab.name}: header testids show network ${network}, Connected, synced, the node's height, ≥1 peer, the storage answer` },
  ).catch((e) => {
    e.message += `\n${tab.name} header shows ${JSON.stringify(tab.lastShown)}`;
    throw e;
  });
}

// -------------------------------------------------------------------------------------------------

describe('one relay, three browser nodes', { timeout: 600_000 }, () => {
  let relay;
  let browser;
  const tabs = {};

  before(async () => {
    relay = await startRelay({ name: 'R' });
    browser = await launchBrowser();
  });

  after(async () => {
    for (const t of Object.values(tabs)) await saveConsole(t, `single-${t.name}`).catch(() => {});
    await browser?.close();
    await relay?.stop();
  });

  test('three tabs join; A mines; B and C receive every block', { timeout: TEST_TIMEOUT }, async (ctx) => {
    for (const name of ['A', 'B', 'C']) tabs[name] = await openTab(browser, `${relay.url}/`, { name });
    const { A, B, C } = tabs;
    for (const t of [A, B, C]) {
      const st = await waitJoined(t);
      assert.equal(st.network, 'test');
      assert.ok(st.peers.some((p) => p.kind === 'relay' && p.url === relay.wsUrl), `${t.name} is connected to the relay: ${JSON.stringify(summary(st))}`);
    }
    // Three browser nodes, three node ids.
    const ids = new Set(await Promise.all([A, B, C].map(async (t) => (await status(t)).nodeId)));
    assert.equal(ids.size, 3, 'each context is its own node');
    await waitFor(async () => (await relay.status()).peers_browser === 3, { message: 'relay sees 3 browser peers' });
    for (const t of [A, B, C]) await assertHeaderShows(t);
    await screenshot(A.page, '01-A-joined');

    const start = (await status(A)).height;
    const mined = await mineUntil(A, { height: start + 4 });
    const tip = await waitConverged(A, [B, C], { minHeight: mined.height });
    const [top] = await A.page.evaluate(() => window.tabcoin.node.blocks(1));
    ctx.diagnostic(`mined to height ${tip.height} (goal ${start + 4}); tip time − now = ${top.time - Math.floor(Date.now() / 1000)} s`);
    const chainA = await wholeChain(A);
    assert.deepEqual(await wholeChain(B), chainA, 'B has every block of A');
    assert.deepEqual(await wholeChain(C), chainA, 'C has every block of A');
    const r = await relay.status();
    assert.ok(r.height >= tip.height, 'the relay has the chain too');

    // The UI shows the mined blocks and the found count.
    await waitFor(async () => Number(await testIdText(A.page, 'mining-found')) >= 4, { message: 'A mining-found ≥ 4' });
    for (const t of [A, B, C]) {
      const st = await status(t);
      await waitFor(async () => (await byTestId(t.page, 'block-row').first().getAttribute('data-hash')) === st.tip, {
        timeout: 10_000,
        message: `${t.name}: first block-row is the tip ${st.tip}`,
      });
      const h = await byTestId(t.page, 'block-row').first().getAttribute('data-height');
      assert.equal(Number(h), st.height);
      await assertHeaderShows(t);
    }
    // Block detail opens on a click.
    await byTestId(B.page, 'block-row').first().click();
    await waitFor(() => byTestId(B.page, 'block-detail').isVisible(), { timeout: 5_000, message: 'block-detail visible' });
    assert.ok((await byTestId(B.page, 'block-detail').textContent()).includes(tip.tip), 'block-detail shows the hash');
    await screenshot(B.page, '01-B-block-detail');
    await B.page.keyboard.press('Escape');
    for (const t of [A, B, C]) await screenshot(t.page, `01-${t.name}-after-mining`);
  });

  test('A pays B through the send form; the payment confirms and B sees it', { timeout: TEST_TIMEOUT }, async () => {
    const { A, B, C } = tabs;
    const addrB = await waitFor(async () => {
      const a = await testIdText(B.page, 'wallet-address');
      return a.startsWith('ttab_') ? a : null;
    }, { message: 'B wallet-address' });
    assert.equal(addrB, (await wallet(B)).address, 'wallet-address is the node wallet address');
    const before = await wallet(A);
    assert.ok(Number(before.confirmed) >= 2, `A has mature coins: ${JSON.stringify(before)}`);

    await byTestId(A.page, 'send-to').fill(addrB);
    await byTestId(A.page, 'send-amount').fill('1.5');
    await byTestId(A.page, 'send-fee').fill('1000');
    await byTestId(A.page, 'send-submit').click();
    const result = byTestId(A.page, 'send-result');
    const txid = await waitFor(async () => (await result.getAttribute('data-txid')) || null, { timeout: 10_000, message: 'send-result data-txid' }).catch(async (e) => {
      e.message += `; send-result says ${JSON.stringify(await result.textContent())}`;
      throw e;
    });
    assert.match(txid, HEX64);
    assert.ok((await result.textContent()).includes(txid), 'send-result shows the txid');
    await screenshot(A.page, '02-A-sent');

    // Unconfirmed: in every mempool, pending for B.
    for (const t of [A, B, C]) await waitStatus(t, (s) => s.mempool.count >= 1, { message: 'the payment in the mempool' });
    await waitFor(async () => Number((await wallet(B)).pending) === 1.5, { message: 'B pending 1.5' });
    await waitFor(async () => Number(await testIdText(B.page, 'mempool-count')) >= 1, { timeout: 10_000, message: 'B mempool-count ≥ 1' });
    await waitFor(async () => (await byTestId(B.page, 'wallet-pending').getAttribute('data-value')) === '1.5', { timeout: 10_000, message: 'B wallet-pending shows 1.5' });

    // A mines until its pool is empty (the payment is in a block); B then has that block.
    const h0 = (await status(A)).height;
    const minedAt = await mineUntil(A, { until: (s, h) => s.height > h && s.mempool.count === 0, arg: h0, message: 'the payment mined' });
    await waitConverged(A, [B, C], { minHeight: minedAt.height });
    await waitFor(async () => Number((await wallet(B)).confirmed) === 1.5, { timeout: 30_000, message: 'B confirmed balance 1.5' });
    const inBlock = await B.page.evaluate((id) => {
      const n = window.tabcoin.node;
      for (const row of n.blocks(500)) {
        const b = n.block(row.hash);
        if (b.txs.some((t) => t.txid === id)) return { height: b.height, confirmations: b.confirmations };
      }
      return null;
    }, txid);
    assert.ok(inBlock && inBlock.confirmations >= 1, `B's chain holds the payment: ${JSON.stringify(inBlock)}`);
    const wB = await wallet(B);
    assert.equal(wB.pending, '0');
    await waitFor(async () => (await byTestId(B.page, 'wallet-confirmed').getAttribute('data-value')) === '1.5', { timeout: 10_000, message: 'B wallet-confirmed data-value 1.5' });
    assert.match(await testIdText(B.page, 'wallet-confirmed'), /1\.5/);
    await screenshot(B.page, '02-B-received');
  });

  test('a post from A appears in C’s feed, pending and then mined', { timeout: TEST_TIMEOUT }, async () => {
    const { A, B, C } = tabs;
    const text = `Hello from tab A at ${new Date().toISOString()} ✓`;
    await byTestId(A.page, 'post-text').fill(text);
    await byTestId(A.page, 'post-submit').click();
    const result = byTestId(A.page, 'post-result');
    const txid = await waitFor(async () => (await result.getAttribute('data-txid')) || null, { timeout: 10_000, message: 'post-result data-txid' }).catch(async (e) => {
      e.message += `; post-result says ${JSON.stringify(await result.textContent())}`;
      throw e;
    });
    assert.match(txid, HEX64);

    // Unconfirmed, the post already shows in C's feed.
    const itemC = C.page.locator(`[data-testid="feed"] [data-testid="feed-item"][data-txid="${txid}"]`);
    await waitFor(async () => (await itemC.count()) === 1 && (await itemC.textContent()).includes(text), { timeout: 15_000, message: 'the post in C’s feed (pending)' });
    const pending = (await C.page.evaluate(() => window.tabcoin.node.feed(10))).find((p) => p.txid === txid);
    assert.equal(pending?.height, null, 'the feed entry is unconfirmed');
    await screenshot(C.page, '03-C-post-pending');

    // Mined: C shows it with its block height.
    const h0 = (await status(A)).height;
    await mineUntil(A, { until: (s, h) => s.height > h && s.mempool.count === 0, arg: h0, message: 'the post mined' });
    await waitConverged(A, [B, C]);
    const mined = await waitFor(async () => (await C.page.evaluate(() => window.tabcoin.node.feed(10))).find((p) => p.txid === txid && p.height !== null), {
      message: 'the post confirmed in C’s node.feed',
    });
    assert.equal(mined.text, text);
    assert.equal(mined.author, (await wallet(A)).address, 'the author is A');
    await waitFor(async () => (await itemC.count()) === 1 && (await itemC.textContent()).includes(`#${mined.height}`), {
      timeout: 10_000,
      message: `C's feed-item shows block #${mined.height}`,
    });
    await screenshot(C.page, '03-C-post-mined');
  });

  test('B reloads and restores its chain from IndexedDB, not from the relay', { timeout: TEST_TIMEOUT }, async (ctx) => {
    const { A, B, C } = tabs;
    // A chain worth restoring: at least 20 blocks.
    if ((await status(A)).height < 20) await mineUntil(A, { height: 20 });
    await waitConverged(A, [B, C]);
    // B's store writes trail its chain by a few milliseconds (one IndexedDB transaction per
    // block); the page offers no "all written" signal, so give them a moment.
    await sleep(1_000);
    const beforeSt = await status(B);
    const beforeW = await wallet(B);
    assert.ok(beforeSt.height >= 20, `a chain worth restoring: height ${beforeSt.height}`);
    const sentBefore = await settledMetric(relay, 'tabcoin_blocks_sent_total');

    const t0 = Date.now();
    await B.page.reload({ waitUntil: 'domcontentloaded' });
    await waitReadyOf(B);
    const first = await status(B);
    const tReady = Date.now() - t0;
    assert.equal(first.height, beforeSt.height, 'right after start, B already has its whole chain');
    assert.equal(first.tip, beforeSt.tip);
    assert.equal(first.nodeId, beforeSt.nodeId, 'the node identity survives the reload');
    const afterW = await wallet(B);
    assert.equal(afterW.address, beforeW.address, 'the wallet key survives the reload');
    assert.equal(afterW.confirmed, beforeW.confirmed);

    await waitJoined(B);
    ctx.diagnostic(`after the reload: node ready in ${tReady} ms, connected and synced in ${Date.now() - t0} ms`);
    const sentAfter = await settledMetric(relay, 'tabcoin_blocks_sent_total');
    const sent = sentAfter - sentBefore;
    assert.ok(sent < beforeSt.height, `the relay sent ${sent} blocks for a reload at height ${beforeSt.height} (expected far fewer than the chain)`);
    ctx.diagnostic(`reload at height ${beforeSt.height}: relay sent ${sent} blocks`);
    assert.ok(sent <= 2, `nothing new was mined, so the relay sends (next to) no block: ${sent}`);
    await assertHeaderShows(B);
    await screenshot(B.page, '04-B-reloaded');

    // And B still follows the chain.
    const h = (await status(A)).height;
    await mineUntil(A, { height: h + 2 });
    await waitConverged(A, [B, C], { minHeight: h + 2 });
  });

  test('B’s key, exported through the page, restores B’s wallet in a fresh profile G', { timeout: TEST_TIMEOUT }, async () => {
    const { B } = tabs;
    await byTestId(B.page, 'export-key').click();
    await byTestId(B.page, 'export-key-confirm').click();
    const key = await waitFor(async () => {
      const k = await testIdText(B.page, 'key-output');
      return HEX64.test(k) ? k : null;
    }, { timeout: 5_000, message: 'B key-output shows 64 hex digits' });
    assert.equal(key, await B.page.evaluate(() => window.tabcoin.node.exportKey()));
    const wB = await wallet(B);

    tabs.G = await openTab(browser, `${relay.url}/`, { name: 'G' });
    const { G } = tabs;
    await waitConverged(B, [G]);
    assert.notEqual((await wallet(G)).address, wB.address, 'a fresh profile has its own wallet');
    await byTestId(G.page, 'import-key-input').fill(key);
    await byTestId(G.page, 'import-key-submit').click();
    await byTestId(G.page, 'import-key-confirm').click();
    await waitFor(async () => (await testIdText(G.page, 'wallet-address')) === wB.address, { timeout: 10_000, message: 'G wallet-address becomes B’s' });
    const wG = await wallet(G);
    assert.equal(wG.address, wB.address);
    assert.equal(wG.confirmed, wB.confirmed, 'the balance follows the key');
    await waitFor(async () => (await byTestId(G.page, 'wallet-confirmed').getAttribute('data-value')) === wB.confirmed, { timeout: 10_000, message: 'G wallet-confirmed shows B’s balance' });
    await screenshot(G.page, '04-G-imported-key');
  });

  test('no console errors in any tab, no error banner, no bans', async () => {
    assert.deepEqual(await relayBans(relay), [], `the relay banned an honest tab (${relay.logFile})`);
    for (const t of Object.values(tabs)) {
      assert.equal(await byTestId(t.page, 'error-banner').isVisible(), false, `${t.name} shows no error-banner: ${await testIdText(t.page, 'error-banner')}`);
    }
    for (const t of Object.values(tabs)) {
      const bad = unexpectedErrors(t);
      assert.deepEqual(bad, [], `${t.name} logged errors:\n${bad.map((e) => `${e.kind}: ${e.text}`).join('\n')}`);
    }
  });
});

// -------------------------------------------------------------------------------------------------

describe('two relays: tabs fail over when their relay dies', { timeout: 600_000 }, () => {
  let r1;
  let r2;
  let r2Data;
  let browser;
  const tabs = {};
  let killedAt = null;
  let r2Down = null; // [killed, restarted] times of R2
  const relaysSeen = [];

  before(async () => {
    r2Data = await tempDir();
    r1 = await startRelay({ name: 'R1' });
    r2 = await startRelay({ name: 'R2', args: ['--peer', r1.wsUrl], dataDir: r2Data.dir });
    relaysSeen.push(r1, r2);
    browser = await launchBrowser();
  });

  after(async () => {
    for (const t of Object.values(tabs)) await saveConsole(t, `failover-${t.name}`).catch(() => {});
    await browser?.close();
    await r1?.stop();
    await r2?.stop();
    await r2Data?.remove();
  });

  test('tabs on R1 learn R2, survive kill -9 of R1 and keep converging through R2', { timeout: 180_000 }, async (ctx) => {
    await waitFor(async () => (await r1.status()).peers_relay === 1 && (await r2.status()).peers_relay === 1, { message: 'R1 and R2 linked' });
    // The page comes from R1 and R1 dies: without an HTTP cache, what the page would fetch
    // from its origin later fails for sure (see the UI mining test below).
    tabs.D = await openTab(browser, `${r1.url}/`, { name: 'D', noHttpCache: true });
    tabs.E = await openTab(browser, `${r1.url}/`, { name: 'E', noHttpCache: true });
    const { D, E } = tabs;
    for (const t of [D, E]) {
      await waitJoined(t);
      await waitStatus(t, (s) => s.knownRelays.includes(r2.wsUrl), { timeout: 60_000, message: `R2 (${r2.wsUrl}) among known relays` });
    }
    const start = (await status(D)).height;
    await mineUntil(D, { height: start + 3 });
    await waitConverged(D, [E], { minHeight: start + 3 });
    const tipD = await status(D);
    await waitFor(async () => (await r2.status()).tip === tipD.tip, { message: 'R2 has the tabs’ tip' });
    for (const t of [D, E]) await screenshot(t.page, `05-${t.name}-before-kill`);
    for (const t of [D, E]) ctx.diagnostic(`${t.name} before the kill: ${JSON.stringify(summary(await status(t)))}`);

    killedAt = Date.now();
    await r1.kill();
    for (const t of [D, E]) {
      await waitStatus(
        t,
        (s) => s.connected && s.peers.some((p) => p.url === r2.wsUrl) && !s.peers.some((p) => p.url === r1.wsUrl),
        { timeout: 60_000, message: 'connected to R2 and no longer to R1' },
      );
    }
    ctx.diagnostic(`tabs on R2 ${Date.now() - killedAt} ms after the kill`);
    await waitFor(async () => (await r2.status()).peers_browser === 2, { message: 'R2 serves both tabs' });
    // Blocks mined after the kill travel D → R2 → E. (Mined with the page's wasm on D's main
    // thread: the page's own mining workers need worker.js from the dead origin — tested below.)
    const h = (await status(D)).height;
    await mineInPage(D, 3);
    await waitConverged(D, [E], { minHeight: h + 3 });
    const tip = await status(D);
    await waitFor(async () => (await r2.status()).tip === tip.tip, { message: 'R2 has the new tip' });
    assert.deepEqual(await wholeChain(E), await wholeChain(D));
    for (const t of [D, E]) await screenshot(t.page, `05-${t.name}-after-failover`);
  });

  test('the header still says Connected after the failover', { timeout: 60_000 }, async () => {
    for (const t of Object.values(tabs)) await assertHeaderShows(t);
  });

  test('R2 is killed and restarted on its port and database: the tabs reconnect to it', { timeout: 180_000 }, async (ctx) => {
    const { D, E } = tabs;
    const before = await r2.status();
    const killed = Date.now();
    await r2.kill();
    for (const t of [D, E]) await waitStatus(t, (s) => !s.connected, { timeout: 30_000, message: 'no relay left' });
    await screenshot(D.page, '05-D-no-relay');
    r2 = await startRelay({ name: 'R2 restarted', port: r2.port, dataDir: r2Data.dir });
    relaysSeen.push(r2);
    r2Down = [killed, Date.now()];
    const after = await r2.status();
    assert.equal(after.tip, before.tip, 'R2 kept its chain through kill -9');
    assert.equal(after.node_id, before.node_id, 'and its identity');
    for (const t of [D, E]) {
      await waitStatus(t, (s) => s.connected && s.peers.some((p) => p.url === r2.wsUrl), { timeout: 90_000, message: 'reconnected to the restarted R2' });
    }
    ctx.diagnostic(`tabs back on R2 ${Date.now() - r2Down[1]} ms after its restart`);
    const h = (await status(D)).height;
    await mineInPage(D, 2);
    await waitConverged(D, [E], { minHeight: h + 2 });
    await waitFor(async () => (await r2.status()).tip === (await status(D)).tip, { message: 'the restarted R2 has the new tip' });
    for (const t of [D, E]) await screenshot(t.page, `05-${t.name}-after-restart`);
  });

  test('mining from the UI still works after the relay that served the page died', { timeout: 90_000 }, async () => {
    const { D, E } = tabs;
    const h = (await status(D)).height;
    try {
      await mineUntil(D, { height: h + 2, timeout: 20_000 });
    } catch (e) {
      await screenshot(D.page, '05-D-mining-after-origin-died');
      const banner = (await byTestId(D.page, 'error-banner').isVisible()) ? await testIdText(D.page, 'error-banner') : '(no error-banner)';
      e.message += `\nerror-banner: ${banner}`;
      throw e;
    }
    await waitConverged(D, [E], { minHeight: h + 2 });
  });

  test('no console errors except the failed dials of dead relays, no bans', async () => {
    for (const r of relaysSeen) assert.deepEqual(await relayBans(r), [], `relay ${r.name} banned an honest node (${r.logFile})`);
    // Chromium itself logs "WebSocket connection to 'ws://…' failed" for every redial of a
    // relay that is down (the node keeps retrying it with backoff); the page cannot prevent it.
    const escape = (u) => u.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const dialFailed = (url) => new RegExp(`^WebSocket connection to '${escape(url)}' failed`);
    const allowed = [{ pattern: dialFailed(r1.wsUrl), reason: 'redials of the killed relay R1', after: killedAt ?? 0 }];
    if (r2Down) allowed.push({ pattern: dialFailed(r2.wsUrl), reason: 'redials of R2 while it was down', after: r2Down[0], before: r2Down[1] + 5_000 });
    for (const t of Object.values(tabs)) {
      const bad = unexpectedErrors(t, allowed);
      assert.deepEqual(bad, [], `${t.name} logged errors:\n${bad.map((e) => `${e.kind}: ${e.text}`).join('\n')}`);
    }
  });
});

// -------------------------------------------------------------------------------------------------

describe('one node per browser profile (Web Locks)', { timeout: 300_000 }, () => {
  let relay;
  let browser;
  const tabs = {};

  before(async () => {
    relay = await startRelay({ name: 'RL' });
    browser = await launchBrowser();
  });

  after(async () => {
    for (const t of Object.values(tabs)) await saveConsole(t, `locks-${t.name}`).catch(() => {});
    await browser?.close();
    await relay?.stop();
  });

  test('a second tab of the same profile waits, then takes over when the first closes', { timeout: TEST_TIMEOUT }, async () => {
    tabs.F1 = await openTab(browser, `${relay.url}/`, { name: 'F1' });
    const { F1 } = tabs;
    const st1 = await waitJoined(F1);
    const w1 = await wallet(F1);
    await mineUntil(F1, { height: st1.height + 2 });
    const mined = await status(F1);
    await waitFor(async () => (await relay.status()).tip === mined.tip, { message: 'the relay has F1’s blocks' });

    tabs.F2 = await openTab(browser, `${relay.url}/`, { name: 'F2', context: F1.context, waitReady: false });
    const { F2 } = tabs;
    const banner = byTestId(F2.page, 'other-tab-banner');
    await waitFor(() => banner.isVisible(), { timeout: 20_000, message: 'F2 shows other-tab-banner' });
    assert.equal(await byTestId(F1.page, 'other-tab-banner').isVisible(), false, 'F1 runs the node: no banner');
    // F2 does not start a second node: no node object, no second browser peer at the relay.
    await waitFor(async () => (await relay.status()).peers_browser === 1, { message: 'relay sees one browser peer' });
    await sleep(2_000); // a tab that wrongly started a node would have dialed the relay by now
    assert.equal(await F2.page.evaluate(() => window.tabcoin.node), null, 'F2 has no node while F1 runs');
    assert.equal((await relay.status()).peers_browser, 1, 'still one browser peer');
    assert.equal(await byTestId(F2.page, 'mining-toggle').isDisabled(), true, 'F2 cannot mine');
    await screenshot(F2.page, '06-F2-other-tab');

    await F1.page.close();
    await waitReadyOf(F2, { timeout: 30_000 });
    // F1's store writes finished seconds ago; F2 starts from them, before any sync.
    assert.equal((await status(F2)).height, mined.height, 'F2 starts with the chain F1 stored');
    await waitFor(async () => !(await banner.isVisible()), { timeout: 10_000, message: 'the banner hides after the takeover' });
    const st2 = await waitJoined(F2);
    assert.ok(st2.height >= mined.height);
    assert.equal((await wallet(F2)).address, w1.address, 'same profile, same wallet');
    await assertHeaderShows(F2);
    await screenshot(F2.page, '06-F2-took-over');
  });

  test('no console errors, no bans', async () => {
    assert.deepEqual(await relayBans(relay), [], `the relay banned an honest tab (${relay.logFile})`);
    for (const t of Object.values(tabs)) {
      const bad = unexpectedErrors(t);
      assert.deepEqual(bad, [], `${t.name} logged errors:\n${bad.map((e) => `${e.kind}: ${e.text}`).join('\n')}`);
    }
  });
});
