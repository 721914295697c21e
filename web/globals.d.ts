// Globals the page defines for itself (checked with the page by `tsc --noEmit -p web`).

interface Window {
  /** What the page exposes to end-to-end tests and the console. */
  tabcoin: {
    node: import('./pkg/tabcoin_wasm.js').BrowserNode | null;
    ready: Promise<import('./pkg/tabcoin_wasm.js').BrowserNode>;
    miner: import('./ui/miner.js').Miner;
    /** The signature verification pool (null: no Workers; the node verifies in place). */
    verifier: import('./verify-pool.js').VerifyPool | null;
    offline: ReturnType<typeof import('./offline.js').setupOffline>;
    keylock: ReturnType<typeof import('./keylock.js').setupKeyLock>;
  };
}
