// @ts-check
// Shared state of the page: the running node, its network, what the views last saw, and the
// `ready` promise tests await. Other modules read `node` and `network` as live bindings and
// change them only through setNode / setNetwork.

export const MAX_POST_BYTES = 320;
export const DEFAULT_FEE_RATE = 1000;
/** Fee-rate bounds in base units per 1,000 bytes: the relays' minimum, and one coin per kB (as the node checks). */
export const MIN_FEE_RATE = 1000;
export const MAX_FEE_RATE = 100_000_000;
export const REFRESH_MS = 2000;

/**
 * The page's contract with the wasm node: these types are generated from the Rust types
 * (tsify, into web/pkg/tabcoin_wasm.d.ts) and `tsc --noEmit -p web` checks every module
 * that starts with `// @ts-check` against them.
 * @typedef {import('../pkg/tabcoin_wasm.js').BrowserNode} BrowserNode
 * @typedef {import('../pkg/tabcoin_wasm.js').NodeStatus} NodeStatus
 * @typedef {import('../pkg/tabcoin_wasm.js').NodeEvent} NodeEvent
 * @typedef {import('../pkg/tabcoin_wasm.js').MiningTemplate} MiningTemplate
 * @typedef {import('../pkg/tabcoin_wasm.js').WalletView} WalletView
 *
 * @typedef {{state: string, url?: string | null, retryAt?: number | null}} ConnView
 * @typedef {object} UiState
 * @property {string} unit
 * @property {string | null} address
 * @property {NodeStatus | null} status
 * @property {ConnView} conn
 * @property {{height: number, target: number} | null} sync  while syncing
 * @property {boolean} synced
 * @property {string | null} lastTip
 * @property {boolean | undefined} storagePersisted  the answer of persistStorage()
 * @property {Map<string, 'send' | 'post'>} sentTxids
 * @property {Set<number>} foundHeights  heights of blocks this tab found lately
 * @property {Set<string>} reportedErrors
 * @property {number} [connEvents]
 * @property {string} [lastConnUrl]
 * @property {{msg: string, at: number}} [lastRefused]
 * @property {{usage?: number, quota?: number}} [estimate]  navigator.storage.estimate()
 * @property {boolean} [failed]
 */

/** @type {BrowserNode | null} the BrowserNode once started */
export let node = null;
/** @type {'main' | 'test' | null} once known */
export let network = null;

/** @param {BrowserNode} n */
export function setNode(n) {
  node = n;
}

/** @param {'main' | 'test'} n */
export function setNetwork(n) {
  network = n;
}

/** @type {UiState} */
export const ui = {
  unit: 'TAB',
  address: null,
  status: null,
  conn: { state: 'starting' },
  sync: null, // {height, target} while syncing
  synced: false,
  lastTip: null,
  storagePersisted: undefined, // answer of persistStorage()
  sentTxids: new Map(), // txid -> 'send' | 'post'
  foundHeights: new Set(), // heights of blocks this tab found lately (their tips are not logged twice)
  reportedErrors: new Set(),
};

let resolveReadyFn;
let rejectReadyFn;
export const ready = new Promise((res, rej) => {
  resolveReadyFn = res;
  rejectReadyFn = rej;
});
ready.catch(() => {}); // the rejection is shown in the page; tests await `ready` themselves

export function resolveReady(n) {
  resolveReadyFn(n);
}

export function rejectReady(e) {
  rejectReadyFn(e);
}
