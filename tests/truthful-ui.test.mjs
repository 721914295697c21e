// End-to-end (issue 13, item 3): mining and the page say only what is true. One relay on the
// test network, two browser nodes; the relay is killed in the last test (offline behaviour).
//
//   TABCOIN_RELAY_BIN=target/debug/tabcoin-relay CHROMIUM_PATH=/usr/bin/chromium node --test tests/truthful-ui.test.mjs

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  byTestId,
  launchBrowser,
  openTab,
  saveConsole,
  screenshot,
  sleep,
  startMiningUi,
  startRelay,
  status,
  stopMiningUi,
  testIdText,
  unexpectedErrors,
  waitFor,
  waitJoined,
  wallet,
} from './lib/harness.mjs';

const TEST_TIMEOUT = 120_000;

/** The page's mining pill (state attribute and text). */
async function miningPill(page) {
  const pill = page.locator('#mining-state');
  return { state: await pill.getAttribute('data-state'), text: (await pill.textContent()).trim() };
}

/** The newest activity entry whose text matches `re`, or null. */
async function activityEntry(page, re) {
  const texts = await page.locator('#activity li .msg').allTextContents();
  return texts.find((t) => re.test(t)) ?? null;
}

async function search(page, q) {
  await byTestId(page, 'explorer-search').fill(q);
  await byTestId(page, 'explorer-search').press('Enter');
}

describe('mining and the UI say only what is true', { timeout: 600_000 }, () => {
  let relay;
  let browser;
  const tabs = {};
  let killedAt = null;

  before(async () => {
    relay = await startRelay({ name: 'R' });
    browser = await launchBrowser();
    tabs.A = await openTab(browser, `${relay.url}/`, { name: 'A' });
    tabs.B = await openTab(browser, `${relay.url}/`, { name: 'B' });
    for (const t of Object.values(tabs)) await waitJoined(t);
  });

  after(async () => {
    for (const t of Object.values(tabs)) await saveConsole(t, `truthful-${t.name}`).catch(() => {});
    await browser?.close();
    await relay?.stop();
  });

  test('the test network mines at real time: the page waits for the clock and says so; found counts and heights are right', { timeout: TEST_TIMEOUT }, async () => {
    const { A } = tabs;
    const goal = (await status(A)).height + 30;
    await startMiningUi(A);
    // Every hash or two is a block here: within a second the chain's median time catches up
    // with the clock and the page must say that it waits for it (not show a bare hashrate).
    // The pill and its note are read in one step: on a busy machine the wait can end (and the
    // note change) between two separate reads.
    const both = () =>
      A.page.evaluate(() => ({
        pill: document.querySelector('#mining-state')?.textContent.trim(),
        note: document.querySelector('#mining-note')?.textContent ?? '',
      }));
    const waiting = await waitFor(async () => {
      const b = await both();
      return b.pill === 'Waiting for the clock' ? b : null;
    }, { timeout: 30_000, message: 'A: mining pill "Waiting for the clock"' });
    await screenshot(A.page, '13-mining-waits-for-clock');
    assert.match(waiting.note, /may not be stamped before \d\d:\d\d:\d\d/, `the note says until when: ${waiting.note}`);
    await waitFor(async () => (await status(A)).height >= goal, { timeout: 60_000, interval: 200, message: `A reaches height ${goal}` });
    await stopMiningUi(A);

    // No block is stamped ahead of the clock (before: 30 blocks ran ~25 s ahead, and longer
    // bursts past the 120 s future-drift limit, where mining stalled).
    const nowS = await A.page.evaluate(() => Math.floor(Date.now() / 1000));
    const blocks = await A.page.evaluate(() => window.tabcoin.node.blocks(500));
    const ahead = Math.max(...blocks.map((b) => b.time)) - nowS;
    assert.ok(ahead <= 0, `the newest block time is ${ahead} s ahead of the clock`);

    // "Blocks found" counts the blocks the node took: here every block of the chain but genesis
    // (A is the only miner).
    const st = await status(A);
    const me = (await wallet(A)).address;
    const mine = blocks.filter((b) => b.height > 0 && b.miner === me).length;
    assert.equal(mine, st.height, 'A mined every block');
    await waitFor(async () => Number(await testIdText(A.page, 'mining-found')) === mine, { timeout: 5_000, message: `mining-found = ${mine}` });

    // The activity log names the heights of the blocks found (before: one too high).
    const found = await activityEntry(A.page, /^Found /);
    assert.ok(found, 'the activity log has a Found entry');
    const last = Number(found.match(/(?:at height|to) ([\d,]+)/)[1].replace(/,/g, ''));
    assert.equal(last, st.height, `the newest Found entry ends at the tip: ${found}`);
  });

  test('the peers table shows the URL the tab dialed and the relay height as the chain grows', { timeout: TEST_TIMEOUT }, async () => {
    const { A, B } = tabs;
    for (const t of [A, B]) {
      const { height } = await status(t);
      await waitFor(
        async () => {
          const rows = await t.page.locator('#peers tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent.trim())));
          return rows.some((r) => r[2] === relay.wsUrl && Number(r[3].replace(/,/g, '')) === height);
        },
        { timeout: 15_000, message: `${t.name}: a peers row with ${relay.wsUrl} at height ${height}` },
      );
    }
    await screenshot(A.page, '13-peers-live-height');
  });

  test('the explorer finds blocks by height and hash, transactions by txid, and addresses', { timeout: TEST_TIMEOUT }, async () => {
    const { B } = tabs;
    const st = await status(B);
    assert.ok(st.height >= 30);
    const title = () => B.page.locator('#block-title').textContent();
    const close = async () => {
      await B.page.keyboard.press('Escape');
      await waitFor(async () => !(await byTestId(B.page, 'block-detail').isVisible()), { timeout: 5_000, message: 'dialog closed' });
    };

    // By height, any height of the chain (before: only the latest 100).
    await search(B.page, '2');
    await waitFor(async () => (await title()) === 'Block 2', { timeout: 5_000, message: 'Block 2 shown' });
    const hash2 = await B.page.evaluate(() => window.tabcoin.node.blockAt(2));
    assert.ok((await byTestId(B.page, 'block-detail').textContent()).includes(hash2));
    await close();

    // By hash.
    await search(B.page, st.tip);
    await waitFor(async () => (await title()) === `Block ${st.height}`, { timeout: 5_000, message: 'tip shown by hash' });
    await close();

    // By txid: the coinbase of block 2.
    const txid = await B.page.evaluate((h) => window.tabcoin.node.block(h).txs[0].txid, hash2);
    await search(B.page, txid);
    await waitFor(async () => (await title()) === 'Transaction', { timeout: 5_000, message: 'transaction shown' });
    assert.equal(await byTestId(B.page, 'tx-status').getAttribute('data-status'), 'confirmed');
    assert.ok((await byTestId(B.page, 'block-detail').textContent()).includes(txid));
    await close();

    // By address: A's, paid by every coinbase.
    const addrA = (await wallet(tabs.A)).address;
    await search(B.page, addrA);
    await waitFor(async () => (await title()) === 'Address', { timeout: 5_000, message: 'address shown' });
    const rows = await byTestId(B.page, 'address-tx').count();
    assert.equal(rows, Math.min(100, st.height), 'one row per coinbase paying A');
    await screenshot(B.page, '13-explorer-address');
    await close();

    // What is not there is said plainly.
    await search(B.page, String(st.height + 1000));
    await waitFor(async () => /no block at height/.test(await B.page.locator('#search-result').textContent()), { timeout: 5_000, message: 'no-such-height message' });
    await search(B.page, 'f'.repeat(64));
    await waitFor(async () => /No block and no transaction/.test(await B.page.locator('#search-result').textContent()), { timeout: 5_000, message: 'unknown id message' });
  });

  test('a fee rate out of bounds is refused with a clear error, before the wallet is asked', { timeout: TEST_TIMEOUT }, async () => {
    const { A, B } = tabs;
    const addrB = (await wallet(B)).address;
    const page = A.page;
    await byTestId(page, 'send-to').fill(addrB);
    await byTestId(page, 'send-amount').fill('1');
    for (const [fee, re] of [
      ['1000000000000', /Fee rate: the fee rate must be at most 100,000,000 base units per 1,000 bytes/],
      ['10', /Fee rate: the fee rate must be at least 1,000 base units per 1,000 bytes/],
    ]) {
      await byTestId(page, 'send-fee').fill(fee);
      await page.locator('#send-form').evaluate((f) => f.requestSubmit());
      await waitFor(async () => re.test(await page.locator('#send-result').textContent()), { timeout: 5_000, message: `fee ${fee}: ${re}` });
      assert.equal(await byTestId(page, 'send-fee').getAttribute('aria-invalid'), 'true');
    }
    await screenshot(page, '13-fee-rate-bounds');
    // The node checks the same bounds itself.
    const err = await page.evaluate((to) => {
      try {
        window.tabcoin.node.send(to, '1', 1e12);
        return null;
      } catch (e) {
        return String(e.message || e);
      }
    }, addrB);
    assert.match(err, /fee rate: at most 100000000/);
    await byTestId(page, 'send-fee').fill('1000');
    await byTestId(page, 'send-amount').fill('');
  });

  test('posts are shown bidi-isolated, each line in its own direction', { timeout: TEST_TIMEOUT }, async () => {
    const { A, B } = tabs;
    const text = 'שלום עולם\nhello, world';
    await A.page.locator('#post-text').fill(text);
    await A.page.locator('#post-form').evaluate((f) => f.requestSubmit());
    const txid = await waitFor(async () => (await A.page.locator('#post-result').getAttribute('data-txid')) || null, { timeout: 10_000, message: 'A posted' });
    for (const t of [A, B]) {
      const item = t.page.locator(`[data-testid="feed-item"][data-txid="${txid}"] .feed-text`);
      await waitFor(async () => (await item.count()) === 1, { timeout: 15_000, message: `${t.name}: the post is in the feed` });
      const look = await item.evaluate((e) => ({ dir: e.getAttribute('dir'), bidi: getComputedStyle(e).unicodeBidi, text: e.textContent }));
      assert.deepEqual(look, { dir: 'auto', bidi: 'plaintext', text }, `${t.name}: the post text is isolated, direction per line`);
    }
    await screenshot(B.page, '13-post-bidi');
  });

  test('a follower tab of the same profile shows the leader node\'s live state, read-only, and says which tab runs it', { timeout: TEST_TIMEOUT }, async () => {
    const { A, B } = tabs;
    tabs.F = await openTab(browser, `${relay.url}/`, { name: 'F', context: B.context, waitReady: false });
    const { F } = tabs;
    await waitFor(() => byTestId(F.page, 'other-tab-banner').isVisible(), { timeout: 20_000, message: 'F shows other-tab-banner' });
    const shown = async () => Number((await testIdText(F.page, 'status-height')).replace(/[^\d]/g, '') || -1);
    await waitFor(async () => (await shown()) === (await status(B)).height, { timeout: 15_000, message: 'F shows B’s height' });
    assert.match(await testIdText(F.page, 'other-tab-detail'), /runs in the Tabcoin tab opened at \d\d:\d\d:\d\d/);
    // Live: A mines, B follows, and F shows B's new height.
    const goal = (await status(B)).height + 2;
    await startMiningUi(A);
    await waitFor(async () => (await status(B)).height >= goal, { timeout: 30_000, message: `B reaches ${goal}` });
    await stopMiningUi(A);
    await waitFor(async () => (await shown()) === (await status(B)).height && (await shown()) >= goal, { timeout: 15_000, message: 'F shows B’s new height' });
    assert.equal(await F.page.evaluate(() => window.tabcoin.node), null, 'F runs no node');
    assert.equal(await byTestId(F.page, 'mining-toggle').isDisabled(), true, 'F cannot mine');
    await screenshot(F.page, '13-follower-tab');
    await F.page.close();
  });

  test('offline, mining pauses and says why, the same template is never mined again, and the header counts down to the retry', { timeout: TEST_TIMEOUT }, async () => {
    const { A } = tabs;
    await startMiningUi(A);
    await waitFor(async () => ['mining', 'waiting'].includes((await miningPill(A.page)).state), { timeout: 15_000, message: 'A mining' });
    killedAt = Date.now();
    await relay.kill();
    await waitFor(async () => (await miningPill(A.page)).text === 'Paused: offline', { timeout: 20_000, message: 'A: mining pill "Paused: offline"' });
    await waitFor(async () => /^retrying in \d+ s/.test(await A.page.locator('#conn-detail').textContent()), {
      timeout: 20_000,
      message: 'A: the header counts down to the next dial ("retrying in N s")',
    });
    await screenshot(A.page, '13-offline-paused-retrying');
    const before = { found: Number(await testIdText(A.page, 'mining-found')), height: (await status(A)).height };
    assert.equal(await A.page.evaluate(() => window.tabcoin.miner.template), null, 'no template is being mined offline');
    // Before: a solved template was re-sent after 5 s and "found" again, every 5 s, offline.
    await sleep(7_000);
    const now = { found: Number(await testIdText(A.page, 'mining-found')), height: (await status(A)).height };
    assert.deepEqual(now, before, 'nothing found and nothing mined while offline');
    assert.equal((await miningPill(A.page)).text, 'Paused: offline');
    await stopMiningUi(A);

    const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const allowed = [{ pattern: new RegExp(`^WebSocket connection to '${escape(relay.wsUrl)}' failed`), reason: 'redials of the killed relay', after: killedAt }];
    for (const t of Object.values(tabs)) {
      const bad = unexpectedErrors(t, allowed);
      assert.deepEqual(bad, [], `${t.name} logged errors:\n${bad.map((e) => `${e.kind}: ${e.text}`).join('\n')}`);
    }
  });
});
