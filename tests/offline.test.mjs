// The page outlives the relay that served it (issue 13, point 1).
//
// R1 serves a copy of web/ and R2 links to R1. Tab D opens R1's page: the service worker keeps
// the page, and D learns R2. R1 is killed; meanwhile tab F on R2 mines. D reloads: the page
// boots from the service worker's cache and the node syncs F's blocks through R2 (the relays
// it knows are kept in IndexedDB, the dead origin is only one of them). Then R1 comes back on
// its port serving a new version of the page: D's update check installs it in the background,
// the page offers it, keeps running the old version (old files) until the user accepts, and
// reloads into the new one.
//
//   TABCOIN_RELAY_BIN=target/debug/tabcoin-relay CHROMIUM_PATH=/usr/bin/chromium node --test tests/offline.test.mjs

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ROOT,
  byTestId,
  launchBrowser,
  mineInPage,
  openTab,
  relayBans,
  saveConsole,
  screenshot,
  startRelay,
  status,
  summary,
  tempDir,
  unexpectedErrors,
  waitFor,
  waitJoined,
  waitReadyOf,
  waitStatus,
} from './lib/harness.mjs';

/** A copy of web/ in `dir` with its precache list regenerated; returns its version. */
async function copyWeb(dir, edit = null) {
  await cp(path.join(ROOT, 'web'), dir, {
    recursive: true,
    filter: (src) => !/[\\/](bench-data|node_modules)([\\/]|$)/.test(src),
  });
  if (edit) await edit(dir);
  const out = execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'precache.mjs'), dir], { encoding: 'utf8' });
  return /version ([0-9a-f]+)/.exec(out)[1];
}

const escape = (u) => u.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('the page survives the death of the relay that served it', { timeout: 600_000 }, () => {
  let r1;
  let r1b;
  let r2;
  let webA;
  let webB;
  let versionA;
  let versionB;
  let browser;
  const tabs = {};
  let killedAt = null;
  let backAt = null;

  before(async () => {
    webA = await tempDir('tabcoin-webA-');
    webB = await tempDir('tabcoin-webB-');
    versionA = await copyWeb(webA.dir);
    r1 = await startRelay({ name: 'R1', webDir: webA.dir });
    r2 = await startRelay({ name: 'R2', args: ['--peer', r1.wsUrl] });
    browser = await launchBrowser();
  });

  after(async () => {
    for (const t of Object.values(tabs)) await saveConsole(t, `offline-${t.name}`).catch(() => {});
    await browser?.close();
    for (const r of [r1, r1b, r2]) await r?.stop();
    await webA?.remove();
    await webB?.remove();
  });

  test('the tab reloads from its offline copy after R1 died and syncs through R2', { timeout: 240_000 }, async (ctx) => {
    await waitFor(async () => (await r1.status()).peers_relay === 1 && (await r2.status()).peers_relay === 1, { message: 'R1 and R2 linked' });
    tabs.D = await openTab(browser, `${r1.url}/`, { name: 'D' });
    const { D } = tabs;
    await waitJoined(D);
    const kept = await D.page.evaluate(() => window.tabcoin.offline.ready);
    assert.equal(kept, versionA, 'the service worker keeps the version R1 serves');
    await waitFor(() => D.page.evaluate(() => !!navigator.serviceWorker.controller), { message: 'the service worker controls the page' });
    await waitStatus(D, (s) => s.knownRelays.includes(r2.wsUrl), { timeout: 60_000, message: `R2 (${r2.wsUrl}) among known relays` });

    killedAt = Date.now();
    await r1.kill();
    // While D is away, F (on R2) extends the chain: D must fetch these blocks from R2.
    tabs.F = await openTab(browser, `${r2.url}/`, { name: 'F' });
    const { F } = tabs;
    await waitJoined(F);
    const before = (await status(D)).height;
    await mineInPage(F, 3);
    const target = await status(F);
    assert.ok(target.height >= before + 3);

    await D.page.reload({ waitUntil: 'domcontentloaded' });
    await waitReadyOf(D);
    const st = await waitStatus(D, (s) => s.connected && s.tip === target.tip, { timeout: 90_000, message: 'synced F’s tip through R2' });
    ctx.diagnostic(`D after the reload: ${JSON.stringify(summary(st))}`);
    assert.ok(st.peers.some((p) => p.url === r2.wsUrl), 'D is connected to R2');
    assert.ok(!st.peers.some((p) => p.url === r1.wsUrl), 'not to the dead R1');
    assert.equal(await byTestId(D.page, 'app-version').getAttribute('data-version'), versionA);
    await screenshot(D.page, 'offline-boot');
  });

  test('a new version served by R1 is installed whole, offered, and applied only when accepted', { timeout: 180_000 }, async () => {
    const { D } = tabs;
    const MARK = '/* tabcoin-offline-test: version B */';
    versionB = await copyWeb(webB.dir, async (dir) => {
      const css = path.join(dir, 'style.css');
      await writeFile(css, `${await readFile(css, 'utf8')}\n${MARK}\n`);
    });
    assert.notEqual(versionB, versionA);
    r1b = await startRelay({ name: 'R1b', port: r1.port, webDir: webB.dir, args: ['--peer', r2.wsUrl] });
    backAt = Date.now();
    await D.page.evaluate(() => window.tabcoin.offline.checkForUpdate());
    const banner = byTestId(D.page, 'update-banner');
    await waitFor(() => banner.isVisible(), { timeout: 60_000, message: 'the update banner' });
    assert.match(await banner.textContent(), new RegExp(versionB));
    await screenshot(D.page, 'update-available');

    // Until accepted, the page keeps running on the old version's files.
    const oldCss = await D.page.evaluate(() => fetch('style.css').then((r) => r.text()));
    assert.ok(!oldCss.includes(MARK), 'the old page still gets the old files');
    assert.equal(await byTestId(D.page, 'app-version').getAttribute('data-version'), versionA);

    await Promise.all([D.page.waitForEvent('load', { timeout: 60_000 }), byTestId(D.page, 'update-apply').click()]);
    await waitReadyOf(D);
    await waitFor(async () => (await byTestId(D.page, 'app-version').getAttribute('data-version')) === versionB, { message: 'the new version runs' });
    const newCss = await D.page.evaluate(() => fetch('style.css').then((r) => r.text()));
    assert.ok(newCss.includes(MARK), 'the new page gets the new files');
    assert.equal(await banner.isVisible(), false);
    await waitJoined(D);
    await screenshot(D.page, 'update-applied');
  });

  test('no console errors except the dead origin’s, no bans', async () => {
    for (const r of [r1, r1b, r2].filter(Boolean)) assert.deepEqual(await relayBans(r), [], `relay ${r.name} banned an honest node (${r.logFile})`);
    // While R1 is dead, Chromium logs each failed redial and the failed status fetch of the
    // page's origin (the page then starts from the stored chain); the page cannot prevent it.
    const allowed = [
      { pattern: new RegExp(`^WebSocket connection to '${escape(r1.wsUrl)}' failed`), reason: 'redials of the killed R1', after: killedAt ?? 0, before: (backAt ?? Date.now()) + 5_000 },
      { pattern: /^Failed to load resource: net::ERR_CONNECTION_REFUSED/, reason: 'api/status of the dead origin', after: killedAt ?? 0, before: backAt ?? Date.now() },
    ];
    for (const t of Object.values(tabs)) {
      const bad = unexpectedErrors(t, allowed);
      assert.deepEqual(bad, [], `${t.name} logged errors:\n${bad.map((e) => `${e.kind}: ${e.text}`).join('\n')}`);
    }
  });
});
