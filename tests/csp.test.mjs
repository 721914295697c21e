// The page works under the relay's own Content-Security-Policy: module scripts, the wasm
// package ('wasm-unsafe-eval'), module workers that mine, the WebSocket to the relay and the
// stylesheet. Any CSP violation (reported by the browser as a `securitypolicyviolation`
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
