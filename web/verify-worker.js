// Signature verification worker: one wasm instance checking chunks of the node's signature
// jobs (web/verify-pool.js hands them out; `verifyChunk` in wasm/src/verify.rs).
//
// main → worker: {id, chunk: Uint8Array}   (an encoded VerifyChunk)
// worker → main: {type: 'ready'} | {type: 'failed', message} (the wasm did not load)
//                | {type: 'result', id, result: Uint8Array, ms} | {type: 'error', id, message}
// (`ms`: time spent verifying the chunk, for the pool's busy-time counter)

let verifyChunk = null;
const queued = [];

function run({ id, chunk }) {
  try {
    const t0 = performance.now();
    const result = verifyChunk(chunk);
    self.postMessage({ type: 'result', id, result, ms: performance.now() - t0 }, [result.buffer]);
  } catch (e) {
    self.postMessage({ type: 'error', id, message: e && e.message ? e.message : String(e) });
  }
}

self.onmessage = (e) => {
  if (verifyChunk) run(e.data);
  else queued.push(e.data);
};

import('./pkg/tabcoin_wasm.js')
  .then(async (m) => {
    await m.default();
    verifyChunk = m.verifyChunk;
    self.postMessage({ type: 'ready' });
    for (const msg of queued.splice(0)) run(msg);
  })
  .catch((e) => self.postMessage({ type: 'failed', message: e && e.message ? e.message : String(e) }));
