// The wallet key at rest (issue 13, point 2): without a passphrase the page says the key is
// stored unencrypted; with one, IndexedDB holds only the sealed key, the wallet starts locked
// after every reload, unlocks with the passphrase (and only with it), locks on demand, changes
// passphrase, exports encrypted, and an import offers a copy of the key it replaces.
//
//   TABCOIN_RELAY_BIN=target/debug/tabcoin-relay CHROMIUM_PATH=/usr/bin/chromium node --test tests/keylock.test.mjs

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';

import { byTestId, launchBrowser, openTab, saveConsole, screenshot, startRelay, unexpectedErrors, waitFor, waitJoined, waitReadyOf } from './lib/harness.mjs';

const PASS1 = 'correct horse battery';
const PASS2 = 'staple and more staple';
const OTHER_KEY = '11'.repeat(32);

/** meta/KEY of the tab's node database as hex ('' for an empty value, null when absent). */
function metaHex(tab, key) {
  return tab.page.evaluate(
    (key) =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open('tabcoin-test');
        req.onerror = () => reject(req.error);
        req.onsuccess = () => {
          const db = req.result;
          const get = db.transaction('meta').objectStore('meta').get(key);
          get.onerror = () => reject(get.error);
          get.onsuccess = () => {
            db.close();
            const v = get.result;
            resolve(v == null ? null : Array.from(new Uint8Array(v.buffer ?? v), (b) => b.toString(16).padStart(2, '0')).join(''));
          };
        };
      }),
    key,
  );
}

const state = (tab) => byTestId(tab.page, 'keylock').getAttribute('data-state');
const waitState = (tab, want) => waitFor(async () => (await state(tab)) === want, { timeout: 60_000, message: `key state ${want}` });
const exportKey = (tab) => tab.page.evaluate(() => window.tabcoin.node.exportKey());

async function setPassphrase(tab, next, current = null) {
  const { page } = tab;
  if (current !== null) await byTestId(page, 'passphrase-current').fill(current);
  await byTestId(page, 'passphrase-new').fill(next);
  await byTestId(page, 'passphrase-repeat').fill(next);
  await byTestId(page, 'passphrase-submit').click();
}

async function unlock(tab, pass) {
  await byTestId(tab.page, 'unlock-passphrase').fill(pass);
  await byTestId(tab.page, 'unlock-submit').click();
}

async function reload(tab) {
  await tab.page.reload({ waitUntil: 'domcontentloaded' });
  await waitReadyOf(tab);
}

describe('the wallet key is protected at rest', { timeout: 600_000 }, () => {
  let relay;
  let browser;
  let tab;
  let seed;

  before(async () => {
    relay = await startRelay({ name: 'keylock' });
    browser = await launchBrowser();
  });

  after(async () => {
    if (tab) await saveConsole(tab, 'keylock-A').catch(() => {});
    await browser?.close();
    await relay?.stop();
  });

  test('without a passphrase the tab works and says the key is unencrypted', { timeout: 120_000 }, async () => {
    tab = await openTab(browser, `${relay.url}/`, { name: 'A' });
    await waitJoined(tab);
    await waitState(tab, 'plain');
    assert.match(await byTestId(tab.page, 'wallet-protection').textContent(), /unencrypted/);
    seed = await exportKey(tab);
    assert.equal(await metaHex(tab, 'wallet'), seed, 'the plain key is what is stored');
  });

  test('a passphrase leaves only the sealed key at rest; reloads start locked', { timeout: 180_000 }, async () => {
    await setPassphrase(tab, PASS1);
    await waitState(tab, 'unlocked');
    assert.equal(await metaHex(tab, 'wallet'), '', 'no plain key left');
    const sealed = await metaHex(tab, 'wallet-sealed');
    assert.ok(sealed && sealed.length > 64 * 2, 'the sealed key is stored');
    assert.ok(!sealed.includes(seed), 'the sealed value does not contain the key');

    await reload(tab);
    await waitState(tab, 'locked');
    await assert.rejects(exportKey(tab), /locked/);
    assert.equal(await byTestId(tab.page, 'wallet-confirmed').textContent(), '—');
    await screenshot(tab.page, 'wallet-locked');

    await unlock(tab, 'not the passphrase');
    await waitFor(async () => /wrong passphrase/.test(await byTestId(tab.page, 'keylock-result').textContent()), { timeout: 60_000, message: 'wrong passphrase refused' });
    assert.equal(await state(tab), 'locked');
    await unlock(tab, PASS1);
    await waitState(tab, 'unlocked');
    assert.equal(await exportKey(tab), seed);
  });

  test('lock on demand, encrypted export, change of passphrase', { timeout: 180_000 }, async () => {
    await byTestId(tab.page, 'lock-wallet').click();
    await waitState(tab, 'locked');
    await assert.rejects(exportKey(tab), /locked/);

    await byTestId(tab.page, 'export-encrypted').click();
    const text = await waitFor(async () => (await byTestId(tab.page, 'encrypted-key-output').textContent()) || null, { message: 'the encrypted export' });
    assert.match(text, /^tabcoin-sealed-key-v1:/);
    assert.ok(!text.includes(seed));
    const opened = await tab.page.evaluate(
      async ({ text, pass }) => {
        const ks = await import(new URL('./keystore.js', location.href).href);
        const s = await ks.open(ks.parseExport(text), pass);
        return Array.from(s, (b) => b.toString(16).padStart(2, '0')).join('');
      },
      { text, pass: PASS1 },
    );
    assert.equal(opened, seed, 'the encrypted export opens with the passphrase');

    await unlock(tab, PASS1);
    await waitState(tab, 'unlocked');
    await setPassphrase(tab, PASS2, PASS1);
    await waitFor(async () => /changed/.test(await byTestId(tab.page, 'keylock-result').textContent()), { timeout: 60_000, message: 'passphrase changed' });
    await reload(tab);
    await waitState(tab, 'locked');
    await unlock(tab, PASS1);
    await waitFor(async () => /wrong passphrase/.test(await byTestId(tab.page, 'keylock-result').textContent()), { timeout: 60_000, message: 'the old passphrase refused' });
    await unlock(tab, PASS2);
    await waitState(tab, 'unlocked');
    assert.equal(await exportKey(tab), seed);
  });

  test('an import offers a copy of the key it replaces and keeps the passphrase', { timeout: 180_000 }, async () => {
    const { page } = tab;
    await byTestId(page, 'import-key-input').fill(OTHER_KEY);
    await byTestId(page, 'import-key-submit').click();
    const link = byTestId(page, 'import-backup');
    await waitFor(() => link.isVisible(), { message: 'the backup link' });
    // The page's CSP (connect-src) forbids fetching the blob: URL; a download is what a user gets.
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const backup = await readFile(await download.path(), 'utf8');
    assert.match(download.suggestedFilename(), /^tabcoin-key-.*\.txt$/);
    const expected = await page.evaluate(async () => {
      const ks = await import(new URL('./keystore.js', location.href).href);
      return ks.exportText(window.tabcoin.node.sealedKey());
    });
    assert.equal(backup.trim(), expected, 'the offered copy is the current (encrypted) key');

    await byTestId(page, 'import-key-confirm').click();
    await waitFor(async () => /replaced/.test(await byTestId(page, 'import-key-result').textContent()), { timeout: 60_000, message: 'key replaced' });
    assert.equal(await exportKey(tab), OTHER_KEY);
    assert.equal(await metaHex(tab, 'wallet'), '', 'the imported key is not stored plain');
    await reload(tab);
    await waitState(tab, 'locked');
    await unlock(tab, PASS2);
    await waitState(tab, 'unlocked');
    assert.equal(await exportKey(tab), OTHER_KEY);
  });

  test('no console errors', () => {
    const bad = unexpectedErrors(tab);
    assert.deepEqual(bad, [], bad.map((e) => `${e.kind}: ${e.text}`).join('\n'));
  });
});
