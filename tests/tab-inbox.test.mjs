// A relay that floods a tab while the tab's store holds its reads back (issue: the tab's
// per-connection inbox). One real relay R sits behind a forwarder F on 127.0.0.1 that the test
// controls (R advertises F's URL, so every node reaches R through F). Tab A opens the page at F.
// The test holds A's store back (`node.testHoldStore(true)`: a test-only knob the page never
// calls, as if the write queue stayed full), then makes F stop forwarding R's frames on A's
// connection and push 96 well-framed 1 MB binary messages instead: far more than the protocol
// lets a relay push unrequested. The tab must close that connection with the inbox's reason,
// its wasm memory must not have taken the flood, and once released the tab redials and the
// relay keeps serving it: a block mined by another tab B reaches A.
//
//   TABCOIN_RELAY_BIN=target/debug/tabcoin-relay CHROMIUM_PATH=/usr/bin/chromium node --test tests/tab-inbox.test.mjs

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';

import { freePort, launchBrowser, mineInPage, openTab, saveConsole, startRelay, status, waitFor, waitStatus } from './lib/harness.mjs';

const FLOOD_MESSAGES = 96;
const FLOOD_BYTES = 1_000_000;

/** A WebSocket frame header for an unmasked final binary frame of `len` bytes (server → client). */
function binaryFrameHead(len) {
  const head = Buffer.alloc(10);
  head[0] = 0x82;
  head[1] = 127;
  head.writeBigUInt64BE(BigInt(len), 2);
  return head;
}

/** The length of the first whole frame in `buf` (server frames: unmasked), or 0 if incomplete. */
function frameLength(buf) {
  if (buf.length < 2) return 0;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return 0;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return 0;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  if (buf[1] & 0x80) off += 4;
  return buf.length >= off + len ? off + len : 0;
}

/**
 * Forwards 127.0.0.1:<port> to the relay at `targetPort`. A page's WebSocket (it has an
 * Origin) is forwarded frame by frame from the relay, so `flood()` can switch every such
 * connection open at that moment from the relay's frames to the flood at a frame boundary.
 */
async function startFlooder(targetPort) {
  const port = await freePort();
  const pages = new Set();
  const stats = { flooded: 0, closedByTab: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect({ port: targetPort, host: '127.0.0.1' });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    let head = Buffer.alloc(0);
    const onHead = (chunk) => {
      head = Buffer.concat([head, chunk]);
      if (!head.includes('\r\n\r\n')) return;
      client.off('data', onHead);
      upstream.write(head);
      client.pipe(upstream);
      const text = head.toString('latin1');
      const page = /^upgrade:\s*websocket/im.test(text) && /^origin:/im.test(text);
      if (!page) {
        upstream.pipe(client);
        return;
      }
      const conn = { client, flooding: false };
      pages.add(conn);
      client.on('close', () => {
        pages.delete(conn);
        if (conn.flooding) stats.closedByTab++;
      });
      // The relay's response head, then its frames one by one.
      let buf = Buffer.alloc(0);
      let headDone = false;
      upstream.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        if (!headDone) {
          const at = buf.indexOf('\r\n\r\n');
          if (at < 0) return;
          client.write(buf.subarray(0, at + 4));
          buf = buf.subarray(at + 4);
          headDone = true;
        }
        for (let n; (n = frameLength(buf)); buf = buf.subarray(n)) {
          if (!conn.flooding) client.write(buf.subarray(0, n));
        }
      });
    };
    client.on('data', onHead);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    stats,
    /** Floods every page connection open now; resolves with how many. */
    flood() {
      const targets = [...pages];
      const payload = Buffer.alloc(FLOOD_BYTES, 0xee);
      for (const conn of targets) {
        conn.flooding = true;
        stats.flooded++;
        for (let k = 0; k < FLOOD_MESSAGES && !conn.client.destroyed; k++) {
          conn.client.write(binaryFrameHead(FLOOD_BYTES));
          conn.client.write(payload);
        }
      }
      return targets.length;
    },
    close() {
      for (const c of pages) c.client.destroy();
      server.close();
    },
  };
}

/** The tab's wasm memory and JS heap, in bytes. */
function memoryOf(tab) {
  return tab.page.evaluate(async () => {
    const wasm = await import(new URL('./pkg/tabcoin_wasm.js', location.href).href);
    const exports = await wasm.default();
    return { wasm: exports.memory.buffer.byteLength, js: performance.memory?.usedJSHeapSize ?? 0 };
  });
}

let browser;
let relay;
let flooder;
const tabs = [];

before(async () => {
  const relayPort = await freePort();
  flooder = await startFlooder(relayPort);
  relay = await startRelay({ name: 'inbox-relay', port: relayPort, publicUrl: flooder.wsUrl });
  browser = await launchBrowser();
});

after(async () => {
  for (const t of tabs) await saveConsole(t).catch(() => {});
  await browser?.close();
  flooder?.close();
  await relay?.stop?.();
});

test('a relay flooding a held-back tab is dropped at its inbox budget; the relay serves the tab again', { timeout: 240_000 }, async () => {
  const a = await openTab(browser, `${flooder.url}/`, { name: 'inbox-A' });
  tabs.push(a);
  await waitStatus(a, (s) => s.connected && s.synced, { timeout: 60_000, message: 'A connected and synced' });

  await a.page.evaluate(() => window.tabcoin.node.testHoldStore(true));
  const before = await memoryOf(a);
  assert.equal(flooder.flood(), 1, 'one page connection to flood');

  const dropped = await waitFor(() => a.log.find((l) => l.includes(`dropping the relay ${flooder.wsUrl}: inbox full: `)), {
    timeout: 60_000,
    message: 'the tab dropping the flooding connection (inbox full)',
  });
  assert.match(dropped, /inbox full: \d+ unread messages of \d+ bytes pass the budget of 4096 messages, 30020480 bytes/);
  // The page's activity log says so too, not only the console.
  const shown = await waitFor(async () => {
    const texts = await a.page.locator('#activity li .msg').allTextContents();
    return texts.find((t) => t.startsWith(`Connection to ${flooder.wsUrl} closed by this tab: inbox full: `));
  }, { timeout: 30_000, message: 'the activity log telling why the tab dropped the relay' });
  assert.match(shown, /closed by this tab: inbox full: \d+ unread messages of \d+ bytes pass the budget/);
  await waitFor(() => flooder.stats.closedByTab === 1, { message: 'the flooded socket closed by the tab' });
  const afterFlood = await memoryOf(a);
  const grew = afterFlood.wasm - before.wasm;
  console.log(`# wasm memory ${before.wasm} -> ${afterFlood.wasm} bytes (+${grew}); JS heap ${before.js} -> ${afterFlood.js}`);
  // The inbox budget is about 30 MB; the flood 96 MB. Generous margin for everything else.
  assert.ok(grew < 56_000_000, `wasm memory grew by ${grew} bytes during a ${FLOOD_MESSAGES * FLOOD_BYTES}-byte flood`);
  assert.ok(afterFlood.js - before.js < 56_000_000, `JS heap grew by ${afterFlood.js - before.js} bytes`);

  // Released, the tab redials the relay (a closed link, not a ban) and is served again.
  await a.page.evaluate(() => window.tabcoin.node.testHoldStore(false));
  await waitStatus(a, (s) => s.connected, { timeout: 60_000, message: 'A reconnected' });
  const b = await openTab(browser, `${flooder.url}/`, { name: 'inbox-B' });
  tabs.push(b);
  await waitStatus(b, (s) => s.connected && s.synced, { timeout: 60_000, message: 'B connected and synced' });
  const mined = await mineInPage(b, 1);
  await waitFor(async () => (await status(a)).tip === mined.tip, { timeout: 60_000, message: `A has B's block ${mined.tip}` });
  const bans = a.log.filter((l) => /banned/i.test(l));
  assert.deepEqual(bans, [], 'no ban for a flood the inbox refused');
  assert.deepEqual(a.errors, [], 'no console errors in A');
});
