// @ts-check
// The page's signature verification pool: module workers (web/verify-worker.js) that check the
// chunks of the node's signature jobs off the page's thread (docs/PROTOCOL.md §7, "Signature
// jobs"). The node hands a job over as encoded chunks (`onVerify` of BrowserNode.start); the
// pool gives each worker at most PER_WORKER chunks at a time, collects the encoded results and
// returns them to the node (`sigsVerified`), job after job in the order they came.
//
// Bounded: at most MAX_JOBS jobs are out at once; beyond that `submit` refuses and the node
// verifies the job itself. Fail-safe: a chunk whose worker fails, dies or does not answer within
// CHUNK_TIMEOUT_MS is verified again on the page's thread with the same wasm `verifyChunk`; a
// lost worker is replaced (at most MAX_RESPAWNS times). Results come only from `verifyChunk`;
// the node checks that they cover the job and verifies it itself if not.

/** Workers at most: the node's jobs are a few hundred signatures; more workers split them
 * into chunks too small to pay their round trip. */
export const MAX_WORKERS = 4;
/** Jobs out at once (the node asks for one block's at a time while syncing a branch). */
export const MAX_JOBS = 8;
/** Chunks a worker holds at once: one to verify, one waiting, so it never idles for a
 * round trip. */
const PER_WORKER = 2;
const CHUNK_TIMEOUT_MS = 60_000;
const MAX_RESPAWNS = 4;

/** Workers for this machine: its logical cores, at most MAX_WORKERS. */
export function defaultVerifyWorkers() {
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, MAX_WORKERS));
}

/**
 * @typedef {{ticket: number, results: (Uint8Array|undefined)[], left: number}} Job
 * @typedef {{job: Job, index: number, chunk: Uint8Array, id?: number, timer?: any}} Task
 * @typedef {{w: Worker, ready: boolean, dead: boolean, tasks: Map<number, Task>, name: string}} Slot
 */

export class VerifyPool {
  /**
   * @param {{verifyChunk: (chunk: Uint8Array) => Uint8Array}} wasm the page's wasm module
   *   (verifies on the page's thread when workers fail)
   * @param {{size?: number, log?: (level: string, msg: string) => void, chunkTimeoutMs?: number}} [opts]
   */
  constructor(wasm, { size = defaultVerifyWorkers(), log = () => {}, chunkTimeoutMs = CHUNK_TIMEOUT_MS } = {}) {
    this.wasm = wasm;
    this.size = size;
    this.chunkTimeoutMs = chunkTimeoutMs;
    this.log = log;
    /** @type {{sigsVerified: (ticket: number, results: Uint8Array[]) => boolean} | null} */
    this.node = null;
    /** @type {Slot[]} */
    this.workers = [];
    /** @type {Job[]} jobs out, in the order they came */
    this.jobs = [];
    /** @type {Task[]} chunks no worker holds yet */
    this.queue = [];
    this.nextId = 1;
    this.spawned = 0;
    this.respawns = 0;
    /** Counters for the page and tests (`window.tabcoin.verifier.stats`). */
    this.stats = { jobs: 0, refused: 0, delivered: 0, chunks: 0, chunksOnWorkers: 0, chunksInPlace: 0, failedChunks: 0, workerErrors: 0, workersReady: 0, busyMs: 0 };
    for (let i = 0; i < size; i++) this.spawn();
  }

  spawn() {
    const name = `tabcoin-verify-${this.spawned++}`;
    let w;
    try {
      w = new Worker(new URL('./verify-worker.js', import.meta.url), { type: 'module', name });
    } catch (e) {
      this.log('warn', `Signature worker unavailable (${e instanceof Error ? e.message : e}): verifying on the page`);
      return;
    }
    /** @type {Slot} */
    const slot = { w, ready: false, dead: false, tasks: new Map(), name };
    w.onmessage = (e) => this.onMessage(slot, e.data);
    w.onerror = (e) => {
      e.preventDefault();
      this.lose(slot, e.message || 'worker error');
    };
    w.onmessageerror = () => this.lose(slot, 'unreadable message');
    this.workers.push(slot);
  }

  /** The node that takes the results (set once BrowserNode.start returned). */
  attach(node) {
    this.node = node;
    this.deliver();
  }

  /** `onVerify`: takes a job's chunks; false (refused) when MAX_JOBS are out. */
  submit(ticket, chunks) {
    if (this.jobs.length >= MAX_JOBS || chunks.length === 0) {
      this.stats.refused++;
      return false;
    }
    /** @type {Job} */
    const job = { ticket, results: new Array(chunks.length), left: chunks.length };
    this.jobs.push(job);
    this.stats.jobs++;
    this.stats.chunks += chunks.length;
    chunks.forEach((chunk, index) => this.queue.push({ job, index, chunk }));
    this.pump();
    return true;
  }

  /** Gives queued chunks to the least busy live workers; with none left, verifies here. */
  pump() {
    while (this.queue.length) {
      if (this.workers.length === 0) {
        for (const task of this.queue.splice(0)) this.inPlace(task);
        return;
      }
      let best = null;
      for (const s of this.workers) if (s.tasks.size < PER_WORKER && (!best || s.tasks.size < best.tasks.size)) best = s;
      if (!best) return;
      const task = /** @type {Task} */ (this.queue.shift());
      const id = this.nextId++;
      task.id = id;
      best.tasks.set(id, task);
      const slot = best;
      task.timer = setTimeout(() => this.lose(slot, `no answer in ${this.chunkTimeoutMs / 1000} s`), this.chunkTimeoutMs);
      best.w.postMessage({ id, chunk: task.chunk });
    }
  }

  onMessage(slot, msg) {
    if (slot.dead) return;
    if (msg.type === 'ready') {
      slot.ready = true;
      this.stats.workersReady++;
    } else if (msg.type === 'failed') {
      this.lose(slot, `wasm did not load: ${msg.message}`);
    } else if (msg.type === 'result' || msg.type === 'error') {
      const task = slot.tasks.get(msg.id);
      if (!task) return;
      slot.tasks.delete(msg.id);
      clearTimeout(task.timer);
      if (msg.type === 'result' && msg.result instanceof Uint8Array) {
        this.stats.chunksOnWorkers++;
        this.stats.busyMs += Number(msg.ms) || 0;
        this.complete(task, msg.result);
      } else {
        this.log('warn', `Signature worker ${slot.name}: ${msg.message}; verifying its chunk on the page`);
        this.inPlace(task);
      }
      this.pump();
    }
  }

  /** A worker failed: its chunks are verified here, and another takes its place. */
  lose(slot, why) {
    if (slot.dead) return;
    slot.dead = true;
    slot.w.terminate();
    this.workers = this.workers.filter((s) => s !== slot);
    this.stats.workerErrors++;
    this.log('warn', `Signature worker ${slot.name} lost (${why}); its chunks are verified on the page`);
    for (const task of slot.tasks.values()) {
      clearTimeout(task.timer);
      this.inPlace(task);
    }
    slot.tasks.clear();
    if (this.respawns < MAX_RESPAWNS) {
      this.respawns++;
      this.spawn();
    }
    this.pump();
  }

  /** Verifies one chunk on the page's thread (soon, not inside the caller). */
  inPlace(task) {
    setTimeout(() => {
      let result;
      try {
        result = this.wasm.verifyChunk(task.chunk);
      } catch {
        result = new Uint8Array(0); // unusable: the node verifies the whole job itself
      }
      this.stats.chunksInPlace++;
      this.complete(task, result);
    }, 0);
  }

  complete(task, result) {
    const { job, index } = task;
    if (job.results[index]) return;
    job.results[index] = result;
    job.left--;
    if (result.length > 8 && result[8] !== 0) this.stats.failedChunks++;
    this.deliver();
  }

  /** Hands finished jobs to the node, in the order they came. */
  deliver() {
    const node = this.node;
    if (!node) return;
    while (this.jobs.length && this.jobs[0].left === 0) {
      const job = /** @type {Job} */ (this.jobs.shift());
      this.stats.delivered++;
      try {
        node.sigsVerified(job.ticket, /** @type {Uint8Array[]} */ (job.results));
      } catch (e) {
        this.log('error', `Signature results not taken: ${e instanceof Error ? e.message : e}`);
      }
    }
  }

  /** Stops the workers (the bench; the page keeps its pool for its lifetime). */
  terminate() {
    for (const s of this.workers) {
      s.dead = true;
      s.w.terminate();
    }
    this.workers = [];
  }
}
