// The page works under the relay's own Content-Security-Policy: module scripts, the wasm
// package ('wasm-unsafe-eval'), module workers that mine, the service worker that keeps the
// page for offline use, the web app manifest, the WebSocket to the relay and the stylesheet.
// The page carries the same policy in a <meta> element (all but the header-only
// frame-ancestors), so its offline copy runs under it too. Any CSP violation (reported by the browser as a `securitypolicyviolation`
// event or a console error) fails the test.
//
//   TABCOIN_RELAY_BIN=target/debug/tabcoin-relay CHROMIUM_PATH=/usr/bin/chromium node --test tests/csp.test.mjs

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { launchBrowser, openTab, startMiningUi, startRelay, stopMiningUi, unexpectedErrors, waitJoined, waitStatus } from './lib/harness.mjs';

let relay;
let browser;

after(async () => {
  if (browser) await browser.close();
  if (relay) await relay.stop();
});

test('the page runs, syncs and mines under its own CSP', { timeout: 120_000 }, async () => {
  relay = await startRelay({ name: 'csp' });
  const res = await fetch(`${relay.url}/`);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp ?? '', /script-src 'self' 'wasm-unsafe-eval'/, 'the page is served with the CSP');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const html = await res.text();
  const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]*)">/.exec(html)?.[1];
  assert.ok(meta, 'index.html carries a CSP <meta> element');
  const directives = (p) => p.split(';').map((d) => d.trim().replace(/\s+/g, ' ')).filter(Boolean).sort();
  assert.deepEqual(
    directives(meta),
    directives(csp).filter((d) => !d.startsWith('frame-ancestors')),
    'the <meta> policy is the header policy without frame-ancestors',
  );
  const sw = await fetch(`${relay.url}/sw.js`);
  assert.ok(sw.ok && /javascript/.test(sw.headers.get('content-type')), 'sw.js is served as JavaScript');

  browser = await launchBrowser();
  const context = await browser.newContext();
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`),
    );
  });
  const tab = await openTab(browser, relay.url, { context, name: 'csp' });
  await waitJoined(tab);
  const version = await tab.page.evaluate(() => window.tabcoin.offline.ready);
  assert.match(version ?? '', /^[0-9a-f]{16}$/, 'the service worker installed under the CSP');
  assert.ok(await tab.page.evaluate(() => fetch('manifest.webmanifest').then((r) => r.json()).then((m) => m.name)), 'the manifest loads');
  // Mining runs in module workers that load the wasm package themselves.
  await startMiningUi(tab, { workers: 1 });
  await waitStatus(tab, (st) => st.height >= 2, { timeout: 60_000, message: 'the tab mined under the CSP' });
  await stopMiningUi(tab);
  const violations = await tab.page.evaluate(() => window.__cspViolations);
  assert.deepEqual(violations, [], 'CSP violations');
  const errors = unexpectedErrors(tab).filter((e) => /Content Security Policy|Refused to/i.test(e.text));
  assert.deepEqual(errors, [], 'console errors about the CSP');
  assert.deepEqual(unexpectedErrors(tab), [], 'page errors');
});
