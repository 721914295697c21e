// @ts-check
// The main-thread side of mining: a pool of module workers, each hashing its nonce slice
// (index, count) of the newest template. A new template, a stop or a change of the worker
// count bumps the generation, and every worker gets its new job at once.

/** @typedef {import('../pkg/tabcoin_wasm.js').MiningTemplate} MiningTemplate */

const WINDOW_MS = 5_000; // hashrate averaging window

export class Miner {
  /**
   * @param {object} o
   * @param {(header: Uint8Array, template: MiningTemplate) => boolean} o.onFound   a worker
   *        solved `template`; true when the node took the block as its new tip
   * @param {(message: string) => void} o.onError      a worker failed
   * @param {() => void} o.onChange                      state worth redrawing changed
   */
  constructor({ onFound, onError, onChange }) {
    this.onFound = onFound;
    this.onError = onError;
    this.onChange = onChange;
    this.workers = []; // {worker, ready, index}
    this.count = 1;
    this.running = false;
    /** @type {MiningTemplate | null} the newest template from the node, until solved */
    this.template = null;
    /** @type {MiningTemplate | null} the template last solved (never mined again) */
    this.solvedTemplate = null;
    this.generation = 0; // our own job counter (stale work is recognised by it)
    this.found = 0; // blocks found since the page opened that the node took as its tip
    this.totalHashes = 0;
    this.samples = []; // [time ms, hashes] reported by workers
    this.workerErrors = 0;
  }

  get workerCount() {
    return this.workers.length;
  }

  /** Hashes per second over the last few seconds, all workers together. */
  hashrate() {
    const now = performance.now();
    while (this.samples.length && this.samples[0][0] < now - WINDOW_MS) this.samples.shift();
    if (!this.running && this.samples.length === 0) return 0;
    const sum = this.samples.reduce((a, s) => a + s[1], 0);
    const span = Math.min(WINDOW_MS, now - (this.startedAt ?? now));
    return span > 250 ? (sum * 1000) / span : 0;
  }

  start(count) {
    if (count) this.count = count;
    if (this.running) return;
    this.running = true;
    this.startedAt = performance.now();
    this.samples = [];
    this.resize();
    this.dispatch();
    this.onChange();
  }

  stop() {
    if (!this.running) return;
    this.running = false;
    this.generation++;
    for (const w of this.workers) w.worker.postMessage({ type: 'stop', generation: this.generation });
    // Idle workers are kept: a new one has to fetch worker.js and the wasm package from the
    // relay that served the page, which may be gone (the node fails over to other relays,
    // the page cannot).
    this.samples = [];
    this.onChange();
  }

  /** Change the number of workers; while running every worker restarts with the new slicing. */
  setCount(n) {
    n = Math.max(1, n | 0);
    if (n === this.count) return;
    this.count = n;
    if (this.running) {
      this.resize();
      this.dispatch();
    }
    this.onChange();
  }

  /** A new template from the node: it replaces all earlier work. */
  setTemplate(t) {
    if (this.solvedTemplate && t.generation === this.solvedTemplate.generation) return;
    this.template = t;
    if (this.running) this.dispatch();
    this.onChange();
  }

  /** The node has nothing to mine right now (not synced, or mining switched off). */
  clearTemplate() {
    if (!this.template) return;
    this.template = null;
    this.generation++;
    for (const w of this.workers) w.worker.postMessage({ type: 'stop', generation: this.generation });
  }

  /** Loads `count` idle workers now, while the relay that served the page is reachable. */
  prewarm(count) {
    if (count) this.count = count;
    this.resize();
  }

  resize() {
    while (this.workers.length > this.count) this.workers.pop().worker.terminate();
    while (this.workers.length < this.count) this.spawn();
    this.workers.forEach((w, i) => (w.index = i));
  }

  spawn() {
    const worker = new Worker(new URL('../worker.js', import.meta.url), { type: 'module', name: `tabcoin-miner-${this.workers.length}` });
    const entry = { worker, ready: false, index: this.workers.length };
    worker.onmessage = (e) => this.message(entry, e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      this.workerErrors++;
      this.onError(`mining worker failed to start: ${e.message || 'could not load worker.js or the wasm package'}`);
    };
    worker.onmessageerror = () => this.onError('mining worker sent a message that could not be read');
    this.workers.push(entry);
  }

  /** Send the current template to every worker, each with its own slice. */
  dispatch() {
    this.generation++;
    if (!this.template) {
      for (const w of this.workers) w.worker.postMessage({ type: 'stop', generation: this.generation });
      return;
    }
    const count = this.workers.length;
    for (const w of this.workers) {
      // Each worker gets its own copy of the header (postMessage clones it).
      w.worker.postMessage({ type: 'job', header: this.template.header, generation: this.generation, index: w.index, count });
    }
  }

  /**
   * A worker solved the current template. Every other worker stops at once (its further
   * solutions would be siblings of this block) and the template is never mined again: its
   * other solutions are the same block or siblings of it. The workers wait for the node's
   * next template (an accepted block brings one at once; after a refusal the node says why).
   */
  solved(header) {
    const template = this.template;
    if (!template) return;
    this.generation++;
    for (const w of this.workers) w.worker.postMessage({ type: 'stop', generation: this.generation });
    this.template = null;
    this.solvedTemplate = template;
    // onFound may hand us the next template (the node answers an accepted block at once).
    if (this.onFound(header, template) === true) this.found++;
    this.onChange();
  }

  message(entry, m) {
    if (!m || typeof m !== 'object') return;
    switch (m.type) {
      case 'ready':
        entry.ready = true;
        this.onChange();
        break;
      case 'hashes':
        // Stale or not, hashes were done: they count for the hashrate.
        if (this.running && m.n > 0) {
          this.samples.push([performance.now(), m.n]);
          this.totalHashes += m.n;
        }
        break;
      case 'found':
        if (!this.running || m.generation !== this.generation) return; // stale solution
        this.solved(m.header instanceof Uint8Array ? m.header : new Uint8Array(m.header));
        break;
      case 'error':
        this.workerErrors++;
        this.onError(`mining worker: ${m.message}`);
        break;
      default:
        break;
    }
  }

  get readyCount() {
    return this.workers.filter((w) => w.ready).length;
  }
}
