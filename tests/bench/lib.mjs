// Helpers the browser-side benches share (browser.bench.mjs, memory.bench.mjs, p7-ab.mjs):
// starting and stopping a relay process on loopback, and boiling down a DevTools CPU profile.
// Not a test file (node --test does not pick up *.mjs without .test).

import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Spawns a relay binary with `args` (which must make it listen on 127.0.0.1:0) and resolves
 * once it prints where it listens: `{ child, url, pid }`. Its stderr, and stdout, go to
 * `logFile`; `children` (a Set, optional) gets the process so the caller can kill it at exit.
 */
export function startRelayProcess({ bin, args, logFile, rustLog = 'warn', timeoutMs = 30_000, children }) {
  const child = spawn(bin, args, { cwd: ROOT, env: { ...process.env, RUST_LOG: rustLog }, stdio: ['ignore', 'pipe', 'pipe'] });
  children?.add(child);
  const out = createWriteStream(logFile);
  child.stderr.pipe(out);
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`the relay did not say where it listens within ${timeoutMs / 1000} s (log: ${logFile})`)), timeoutMs);
    child.stdout.on('data', (d) => {
      out.write(d);
      buf += d.toString();
      const m = buf.match(/open (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], pid: child.pid });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the relay exited with ${code} before listening (log: ${logFile})`));
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(child, { graceMs = 5_000, children } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) {
    children?.delete(child);
    return;
  }
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
  children?.delete(child);
}

/**
 * A CPU profile (`Profiler.stop`) boiled down: ms of self time by kind — idle, the browser's
 * own work outside JS and wasm ("program": IPC, IndexedDB and WebSocket plumbing, rendering),
 * garbage collection, wasm, JS — and the `top` functions with the most self time.
 */
export function summariseProfile(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) || 0) + (profile.timeDeltas[i] || 0) / 1000);
  }
  const kinds = { idle: 0, program: 0, gc: 0, wasm: 0, js: 0 };
  const fns = new Map();
  for (const [id, ms] of self) {
    const { functionName, url } = byId.get(id).callFrame;
    let kind = 'js';
    if (functionName === '(idle)') kind = 'idle';
    else if (functionName === '(program)') kind = 'program';
    else if (functionName === '(garbage collector)') kind = 'gc';
    else if (url.startsWith('wasm://') || url.endsWith('.wasm')) kind = 'wasm';
    kinds[kind] += ms;
    if (kind === 'js' || kind === 'wasm') {
      const key = `${kind}:${functionName || '(anonymous)'}${kind === 'js' ? ` ${url.split('/').pop()}` : ''}`;
      fns.set(key, (fns.get(key) || 0) + ms);
    }
  }
  const round = (x) => Math.round(x * 10) / 10;
  const best = [...fns].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, ms]) => [k, round(ms)]);
  return { kinds: Object.fromEntries(Object.entries(kinds).map(([k, v]) => [k, round(v)])), top: best };
}
