// Shared state of the page: the running node, its network, what the views last saw, and the
// `ready` promise tests await. Other modules read `node` and `network` as live bindings and
// change them only through setNode / setNetwork.

export const MAX_POST_BYTES = 320;
export const DEFAULT_FEE_RATE = 1000;
export const REFRESH_MS = 2000;

/** The BrowserNode once started. */
export let node = null;
/** 'main' | 'test' once known. */
export let network = null;

export function setNode(n) {
  node = n;
}

export function setNetwork(n) {
  network = n;
}

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
