// @ts-check
// Tabcoin page: starts the browser full node (wasm), holds the one-writer lock, drives the
// mining workers and keeps the views up to date. This module boots; the concerns live in
// web/app/ (state, log, header, refresh, wallet, posts, explorer, mining, events).

import { $, errText, setText } from './ui/dom.js';
import { onEvent, onTemplate } from './app/events.js';
import { setupExplorer } from './app/explorer.js';
import { follow } from './app/follower.js';
import { renderConnection, renderHeader, renderNetwork, renderStorage, estimateStorage } from './app/header.js';
import { log, showError, showNotice } from './app/log.js';
import { miner, renderMining, setupMining } from './app/mining.js';
import { onPost, updatePostUi } from './app/posts.js';
import { refresh } from './app/refresh.js';
import { REFRESH_MS, network, node, ready, rejectReady, resolveReady, setNetwork, setNode, ui } from './app/state.js';
import { copyWithFeedback, onSend, setupKeys, updateSendButton } from './app/wallet.js';
import { setupOffline } from './offline.js';
import { setupKeyLock } from './keylock.js';
import { VerifyPool } from './verify-pool.js';

const PKG = new URL('./pkg/tabcoin_wasm.js', import.meta.url).href;

// ---- boot -----------------------------------------------------------------------------------

/** The relay's network name, retried until the relay answers (or from the last visit). */
async function detectNetwork() {
  let delay = 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(new URL('api/status', location.href), { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const s = await r.json();
      if (s.network !== 'main' && s.network !== 'test') throw new Error(`unknown network ${JSON.stringify(s.network)}`);
      localStorage.setItem('tabcoin.network', s.network);
      return s.network;
    } catch (e) {
      const cached = localStorage.getItem('tabcoin.network');
      if (cached === 'main' || cached === 'test') {
        showNotice(`The relay at ${location.host} does not answer (${errText(e)}). Starting from the chain stored in this browser; the node keeps trying to connect.`);
        return cached;
      }
      ui.conn = { state: 'closed', url: location.host, retryAt: performance.now() + delay };
      renderConnection();
      if (attempt === 0) log('warn', `The relay does not answer (${errText(e)}); retrying`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  }
}

/** Load the wasm package, with a readable error when it is not built or not served. */
async function loadWasm() {
  let res;
  try {
    res = await fetch(PKG, { method: 'HEAD', cache: 'no-cache' });
  } catch (e) {
    throw new Error(`could not reach ${PKG}: ${errText(e)}`);
  }
  const type = res.headers.get('content-type') || '';
  if (!res.ok || !type.includes('javascript')) {
    throw new Error('the browser node (web/pkg/tabcoin_wasm.js) is not built. Run `npm run build:web` and reload.');
  }
  if (typeof WebAssembly !== 'object') throw new Error('this browser has no WebAssembly');
  const mod = await import(PKG);
  await mod.default();
  return mod;
}

function relayUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

async function startNode(wasm) {
  if (!$('other-tab-banner').hidden) log('info', 'The other tab closed: this tab takes over');
  $('other-tab-banner').hidden = true;
  ui.conn = { state: 'connecting', url: relayUrl() };
  renderConnection();
  log('info', `Starting the ${network} network node`);
  // Signature checks of blocks run in workers (web/verify-pool.js); without Workers the node
  // verifies on this thread.
  const verifier = typeof Worker === 'function' ? new VerifyPool(wasm, { log }) : null;
  window.tabcoin.verifier = verifier;
  const started = await wasm.BrowserNode.start({
    relay: relayUrl(),
    network,
    dbName: `tabcoin-${network}`,
    onEvent,
    onTemplate,
    ...(verifier ? { onVerify: (ticket, chunks) => verifier.submit(ticket, chunks), verifyWorkers: verifier.size } : {}),
  }).catch((e) => {
    verifier?.terminate();
    window.tabcoin.verifier = null;
    throw e;
  });
  setNode(started);
  verifier?.attach(started);
  window.tabcoin.node = node;
  window.tabcoin.keylock.attach(node);
  // Load the mining workers now, while the relay that served the page is reachable.
  miner.prewarm(Number($('mining-workers').value) || miner.count);
  enableControls();
  refresh();
  resolveReady(node);
  log('ok', 'Node started');
  Promise.resolve()
    .then(() => node.persistStorage())
    .then((granted) => {
      ui.storagePersisted = !!granted;
      log(granted ? 'ok' : 'warn', granted ? 'Persistent storage granted' : 'Persistent storage denied: the browser may evict the chain and the wallet key; export your key');
      renderStorage();
    })
    .catch((e) => {
      ui.storagePersisted = false;
      log('warn', `Persistent storage unavailable: ${errText(e)}`);
      renderStorage();
    });
  setInterval(refresh, REFRESH_MS);
  // Write what is validated but unstored before the tab may be frozen or closed.
  const flush = () => node.flush().catch((e) => log('warn', `Storage flush: ${errText(e)}`));
  addEventListener('pagehide', flush);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') flush();
  });
  estimateStorage();
  setInterval(estimateStorage, 30_000);
  return node;
}

function enableControls() {
  updateSendButton();
  updatePostUi();
  $('export-key').disabled = false;
  $('import-key-submit').disabled = !$('import-key-input').value.trim();
  renderMining();
}

/**
 * One writer per origin and network: the node runs while this tab holds the Web Lock. If another
 * tab holds it, wait for it in the queue; the lock is granted the moment that tab closes.
 */
async function runWithLock(wasm) {
  const name = `tabcoin-node-${network}`;
  if (!navigator.locks) {
    showNotice('This browser does not offer Web Locks here (the page is not in a secure context such as https or localhost), so it cannot make sure only one tab runs the node. Keep Tabcoin open in one tab only.');
    await startNode(wasm);
    return;
  }
  // Resolves true once the node runs under the lock (held until the page goes away), false
  // when `ifAvailable` found it taken; rejects when the node fails to start (the lock is then
  // released, so another tab may try).
  const underLock = (options) =>
    new Promise((resolve, reject) => {
      navigator.locks
        .request(name, options, async (lock) => {
          if (!lock) return resolve(false);
          try {
            await startNode(wasm);
          } catch (e) {
            reject(e);
            return;
          }
          resolve(true);
          await new Promise(() => {}); // hold the lock for the node's lifetime
        })
        .catch(reject);
    });
  if (await underLock({ ifAvailable: true })) return;
  $('other-tab-banner').hidden = false;
  ui.conn = { state: 'waiting' };
  renderHeader();
  log('warn', 'Tabcoin is running in another tab of this browser; this tab shows its state and takes over when that one closes');
  const unfollow = follow();
  try {
    await underLock({});
  } finally {
    unfollow();
  }
}

async function boot() {
  window.tabcoin = {
    node: null,
    ready,
    miner,
    verifier: null,
    offline: setupOffline({ log }),
    keylock: setupKeyLock({ log, onChange: () => refresh() }),
  };
  setupUi();
  renderHeader();
  setNetwork(await detectNetwork());
  renderNetwork();
  let wasm;
  try {
    wasm = await loadWasm();
  } catch (e) {
    fail(e);
    return;
  }
  try {
    await runWithLock(wasm);
  } catch (e) {
    fail(e);
  }
}

function fail(e) {
  const msg = errText(e);
  ui.failed = true;
  showError('The node could not start:', msg, { fatal: true });
  ui.conn = { state: 'closed' };
  renderHeader();
  setText($('conn-detail'), 'node not running');
  rejectReady(e instanceof Error ? e : new Error(msg));
}

function setupUi() {
  $('error-dismiss').addEventListener('click', () => {
    $('error-banner').hidden = true;
  });
  $('notice-dismiss').addEventListener('click', () => {
    $('notice-banner').hidden = true;
  });
  $('activity-clear').addEventListener('click', () => $('activity').replaceChildren());
  $('copy-address').addEventListener('click', (e) => copyWithFeedback(e.currentTarget, ui.address));
  $('send-form').addEventListener('submit', onSend);
  for (const id of ['send-to', 'send-amount', 'send-fee']) {
    $(id).addEventListener('input', (e) => {
      e.target.removeAttribute('aria-invalid');
      updateSendButton();
    });
  }
  $('post-form').addEventListener('submit', onPost);
  $('post-text').addEventListener('input', updatePostUi);
  $('post-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!$('post-submit').disabled) $('post-form').requestSubmit();
    }
  });
  setupKeys();
  setupExplorer();
  setupMining();
  updatePostUi();
  // The "retrying in N s" countdown.
  setInterval(() => {
    if (ui.conn.retryAt) renderConnection();
  }, 1000);
  addEventListener('pagehide', (e) => {
    if (e.persisted) return;
    miner.stop();
    try {
      node?.stop();
    } catch {
      // the page is going away
    }
  });
}

boot().catch(fail);
