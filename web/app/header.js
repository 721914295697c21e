// @ts-check
// The header: network badge, connection, sync progress, storage, peers and node id.

import { $, fmtInt, setText } from '../ui/dom.js';
import { network, node, ui } from './state.js';
import { plural } from './log.js';

export function renderNetwork() {
  const badge = $('net-badge');
  badge.dataset.network = network || '';
  setText(badge, network ? `${network} network` : '…');
  document.title = network === 'main' || !network ? 'Tabcoin' : `Tabcoin (${network} network)`;
  ui.unit = network === 'test' ? 'tTAB' : 'TAB';
  for (const e of document.querySelectorAll('[data-unit]')) setText(e, ui.unit);
  $('send-to').placeholder = network === 'test' ? 'ttab_…' : 'tab_…';
}

/** Connection state from the node's status: open while any relay link is established. */
/**
 * @param {import('./state.js').NodeStatus | null | undefined} st
 * @param {{state: string, url?: string | null, retryInMs?: number | null} | null} [ev]
 * @returns {import('./state.js').ConnView}
 */
export function connState(st, ev) {
  const relays = (st?.peers || []).filter((p) => p.outbound && p.url).map((p) => p.url);
  if (st?.connected) return { state: 'open', url: relays[0] || ev?.url || st.relay, retryAt: null };
  const state = ev?.state === 'connecting' ? 'connecting' : ev ? 'closed' : 'connecting';
  return { state, url: ev?.url || st?.relay, retryAt: ev?.state === 'closed' && ev.retryInMs ? performance.now() + ev.retryInMs : null };
}

export function renderConnection() {
  const c = ui.conn;
  const box = $('conn');
  box.dataset.state = c.state;
  const label = { starting: 'Starting', connecting: 'Connecting', open: 'Connected', closed: 'Disconnected', waiting: 'Waiting' }[c.state] || c.state;
  setText($('conn-state'), label);
  let detail = c.url || '';
  if (c.state === 'closed' && c.retryAt) {
    const s = Math.max(0, Math.ceil((c.retryAt - performance.now()) / 1000));
    detail = `retrying in ${s} s · ${c.url || 'relay'}`;
  } else if (c.state === 'waiting') detail = 'another tab runs the node';
  setText($('conn-detail'), detail);
  box.title = c.url ? `Relay: ${c.url}` : '';
}

export function renderSync() {
  const box = $('sync');
  const text = $('sync-text');
  const bar = $('sync-progress');
  const st = ui.status;
  const height = st ? st.height : ui.sync ? ui.sync.height : null;
  setText($('height'), height === null || height === undefined ? '—' : String(height));
  if (!node) {
    box.dataset.state = 'starting';
    text.dataset.synced = 'false';
    setText(text, ui.failed ? 'Not running' : ui.conn.state === 'waiting' ? 'Waiting' : 'Starting');
    bar.hidden = true;
    return;
  }
  const synced = st ? !!st.synced : ui.synced;
  text.dataset.synced = String(synced);
  // Validated but not yet in IndexedDB: the node is not synced until these are stored.
  const unstored = st?.storage?.unstoredBlocks ?? 0;
  text.dataset.unstored = String(unstored);
  if (!synced && unstored > 0 && st && st.height >= (st.syncTarget ?? 0)) {
    box.dataset.state = 'syncing';
    setText(text, `Saving ${plural(unstored, 'block')}`);
    bar.hidden = true;
    return;
  }
  if (synced) {
    box.dataset.state = 'synced';
    setText(text, 'Synced');
    bar.hidden = true;
    return;
  }
  if (ui.conn.state !== 'open' && !(st?.peers || []).length) {
    box.dataset.state = 'offline';
    setText(text, 'Offline');
    bar.hidden = true;
    return;
  }
  box.dataset.state = 'syncing';
  const target = Math.max(ui.sync?.target ?? 0, st?.syncTarget ?? 0);
  const h0 = Math.max(ui.sync?.height ?? 0, st?.height ?? 0);
  if (target > 0) {
    const pct = Math.min(100, (h0 / target) * 100);
    setText(text, `Syncing ${pct.toFixed(pct < 10 ? 1 : 0)}%`);
    bar.hidden = false;
    bar.setAttribute('aria-valuemax', String(target));
    bar.setAttribute('aria-valuenow', String(h0));
    bar.title = `${fmtInt(h0)} of ${fmtInt(target)} blocks`;
    $('sync-bar').style.width = `${pct}%`;
  } else {
    setText(text, 'Syncing');
    bar.hidden = true;
  }
}

let syncFrame = 0;
export function renderSyncSoon() {
  if (!syncFrame) {
    syncFrame = requestAnimationFrame(() => {
      syncFrame = 0;
      renderSync();
    });
  }
}

export function renderStorage() {
  const e = $('storage');
  const st = ui.status?.storage;
  let persisted = ui.storagePersisted;
  if (st && st.persisted !== null && st.persisted !== undefined) persisted = st.persisted;
  e.dataset.persisted = persisted === undefined || persisted === null ? '' : String(persisted);
  if (persisted === true) setText(e, 'Persistent storage granted');
  else if (persisted === false) setText(e, 'Persistent storage denied');
  else setText(e, node ? 'Persistence unknown' : ui.failed ? '—' : 'asking…');
  const parts = [];
  if (persisted === false) parts.push('The browser may evict the chain and the wallet key under storage pressure: export your key.');
  // The node does not measure usage: the page asks navigator.storage.estimate() itself.
  const est = ui.estimate;
  if (est && est.quota) parts.push(`This site uses ${fmtMB(est.usage)} of ${fmtMB(est.quota)} the browser allows it.`);
  if (st && st.error) parts.push(`Storage error: ${st.error}`);
  e.title = parts.join(' ');
  setText($('storage-kept'), keptLine(ui.status));
}

/** Which block bodies the node keeps (pruning): "keeps blocks H..tip (X MB of Y MB)". */
function keptLine(st) {
  const p = st?.prune;
  if (!p) return '';
  if (p.budget === null || p.budget === undefined) return 'keeps every block';
  const from = Math.max(1, Number(p.keptFrom) || 0);
  if (!(st.height >= from)) return `keeps no blocks yet (${fmtMB(p.keptBytes)} of ${fmtMB(p.budget)})`;
  return `keeps blocks ${fmtInt(from)}..${fmtInt(st.height)} (${fmtMB(p.keptBytes)} of ${fmtMB(p.budget)})`;
}

function fmtMB(n) {
  n = Number(n) || 0;
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

/** How much storage the origin uses (for the storage tooltip). */
export async function estimateStorage() {
  try {
    if (!navigator.storage?.estimate) return;
    const { usage, quota } = await navigator.storage.estimate();
    ui.estimate = { usage, quota };
    renderStorage();
  } catch {
    // not available in this context
  }
}

export function renderHeader() {
  renderConnection();
  renderSync();
  renderStorage();
  const st = ui.status;
  if (st) {
    setText($('peer-count'), String((st.peers || []).length));
    const id = st.nodeId || '';
    setText($('node-id'), id ? id.slice(0, 12) : '—');
    $('node-id').title = id ? `Node id ${id}` : '';
    // The UTXO set's digest at the tip (CONSENSUS.md): equal digests, equal coins.
    const digest = st.utxoDigest || '';
    setText($('utxo-digest'), digest ? digest.slice(0, 12) : '—');
    $('utxo-digest').title = digest ? `UTXO digest ${digest} at #${st.height}` : '';
    $('utxo-digest').dataset.digest = digest;
  }
}
