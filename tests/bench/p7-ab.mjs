// P7 side by side, by hand (not part of `npm run bench`): two release relays on copies of one
// relay database, each serving its own web directory (e.g. web/ and a copy of web/ built from
// an older wasm/) and binary, one Chromium, one bench page per relay, and `bench.sync` (fresh
// BrowserNode, fresh IndexedDB, start → tip stored) on each page in turn, the order swapped
// every round after one warm-up round. Prints each round, the medians of the phases and the
// median of A ÷ B (stored) per round.
//
//   target/release/examples/make_chain 2000 web/bench-data/chain.bin DATA_DIR
//   DATA=DATA_DIR B_WEB=OLD_WEB_DIR node tests/bench/p7-ab.mjs
//
// Env: A_WEB / B_WEB (default web/ for both), A_BIN / B_BIN (default target/release/tabcoin-relay),
// A_EXTRA / B_EXTRA (more relay flags), ROUNDS (6), HEIGHT (2000), TRACE=1 (record every frame
// and tip event: bench.sync's trace, saved with the results in target/p7/last.json),
// PROFILE=A,B (one more sync per side under the DevTools CPU profiler, summarised).
// Loopback only; the relays are stopped at exit.

import { spawn } from 'node:child_process';
import { cpSync, createWriteStream, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { summariseProfile } from './lib.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DATA = process.env.DATA;
if (!DATA) throw new Error('DATA=DIR: a relay database (make_chain 2000 FILE DIR)');
mkdirSync(path.join(ROOT, 'target/p7'), { recursive: true });
const HEIGHT = Number(process.env.HEIGHT || 2000);
const ROUNDS = Number(process.env.ROUNDS || 6);
const TRACE = process.env.TRACE === '1';
const sides = {
  A: { web: process.env.A_WEB || path.join(ROOT, 'web'), bin: process.env.A_BIN || path.join(ROOT, 'target/release/tabcoin-relay'), extra: (process.env.A_EXTRA || '').split(' ').filter(Boolean) },
  B: { web: process.env.B_WEB || path.join(ROOT, 'web'), bin: process.env.B_BIN || path.join(ROOT, 'target/release/tabcoin-relay'), extra: (process.env.B_EXTRA || '').split(' ').filter(Boolean) },
};
const children = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGTERM')));
async function startRelay(side, name) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `p7-${name}-`));
  cpSync(DATA, dir, { recursive: true });
  const child = spawn(side.bin, ['--network', 'test', '--data-dir', dir, '--web-dir', side.web, '--listen', '127.0.0.1:0', ...side.extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  children.push(child);
  child.stderr.pipe(createWriteStream(path.join(ROOT, `target/p7/relay-${name}.log`)));
  return new Promise((res, rej) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/open (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) res({ url: m[1], pid: child.pid });
    });
    child.on('exit', (c) => rej(new Error(`relay exit ${c}`)));
  });
}


const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const relays = { A: await startRelay(sides.A, 'A'), B: await startRelay(sides.B, 'B') };
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
const pages = {};
for (const k of ['A', 'B']) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  p.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.error(k, m.text()); });
  await p.goto(`${relays[k].url}/bench.html`);
  await p.waitForFunction(() => window.bench || window.benchError, null, { timeout: 60000 });
  pages[k] = p;
}
const res = { A: [], B: [] };
const traces = { A: [], B: [] };
for (let r = -1; r < ROUNDS; r++) {
  const order = r % 2 ? ['A', 'B'] : ['B', 'A'];
  for (const k of order) {
    const ws = `${relays[k].url.replace(/^http/, 'ws')}/ws`;
    const m = await pages[k].evaluate(([ws, h, t]) => window.bench.sync(ws, h, 120000, t), [ws, HEIGHT, TRACE]);
    if (r < 0) continue; // warm-up
    res[k].push(m);
    if (m.trace) traces[k].push(m.trace);
  }
  if (r >= 0) console.log(`round ${r}: A tip ${res.A.at(-1).tip.toFixed(0)} stored ${res.A.at(-1).stored.toFixed(0)} | B tip ${res.B.at(-1).tip.toFixed(0)} stored ${res.B.at(-1).stored.toFixed(0)}`);
}
const ratios = res.A.map((a, i) => a.stored / res.B[i].stored);
for (const k of ['A', 'B']) {
  const f = (key) => median(res[k].map((m) => m[key])).toFixed(1);
  console.log(`${k}: started ${f('started')} open ${f('open')} peer ${f('peer')} firstSync ${f('firstSync')} firstTip ${f('firstTip')} tip ${f('tip')} stored ${f('stored')} unstoredAtTip ${f('unstoredAtTip')} events ${f('events')}`);
}
console.log(`A/B stored per round: ${ratios.map((x) => x.toFixed(2)).join(' ')}; median ${median(ratios).toFixed(3)}`);
writeFileSync(path.join(ROOT, 'target/p7/last.json'), JSON.stringify({ res, traces }));
if (process.env.PROFILE) {
  for (const k of process.env.PROFILE.split(',')) {
    const cdp = await pages[k].context().newCDPSession(pages[k]);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
    await cdp.send('Profiler.start');
    const ws = `${relays[k].url.replace(/^http/, 'ws')}/ws`;
    const m = await pages[k].evaluate(([ws, h]) => window.bench.sync(ws, h, 120000, false), [ws, HEIGHT]);
    const { profile } = await cdp.send('Profiler.stop');
    const sum = summariseProfile(profile, 40);
    console.log(`profile ${k}: tip ${m.tip.toFixed(0)} stored ${m.stored.toFixed(0)}`, JSON.stringify(sum.kinds));
    for (const [f, ms] of sum.top) console.log(`   ${ms}\t${f}`);
  }
}
await browser.close();
process.exit(0);
