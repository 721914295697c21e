// @ts-check
// Follower tabs. One tab of a browser profile runs the node (the Web Lock, see app.js); every
// other tab of the profile shows that node's live state, read-only: the leader posts a snapshot
// of its views on a BroadcastChannel at each refresh, and followers render it. Nothing flows
// back: a follower has no node, so its forms and the mining button stay disabled.

import { $, fmtBytes, setText } from '../ui/dom.js';
import { renderBlocks, renderFeed, renderMempool, renderPeers, tickTimes } from '../ui/views.js';
import { renderHeader } from './header.js';
import { network, ui } from './state.js';
import { renderWallet } from './wallet.js';

/** When this page was opened: how a follower tells the user which tab runs the node. */
const openedAt = Date.now();

/** @type {BroadcastChannel | null} */
let channel = null;

function chan() {
  if (!channel && network && typeof BroadcastChannel === 'function') channel = new BroadcastChannel(`tabcoin-node-${network}`);
  return channel;
}

/**
 * Leader: the views it just rendered, for the followers.
 * @param {{status?: any, wallet?: any, blocks?: any[], pool?: any[], feed?: any[]}} snapshot
 */
export function publish(snapshot) {
  try {
    chan()?.postMessage({ type: 'state', openedAt, ...snapshot });
  } catch (e) {
    console.warn('could not share the node state with other tabs', e);
  }
}

/** Follower: render the leader's snapshots until the returned function is called. */
export function follow() {
  const c = chan();
  if (!c) return () => {};
  /** @param {MessageEvent} e */
  const onMessage = (e) => {
    const m = e.data;
    if (m && m.type === 'state') show(m);
  };
  c.addEventListener('message', onMessage);
  return () => c.removeEventListener('message', onMessage);
}

function show(m) {
  if (m.status) {
    ui.status = m.status;
    ui.synced = !!m.status.synced;
    renderPeers(m.status);
    setText($('mempool-count'), String(m.status.mempool?.count ?? 0));
    setText($('mempool-bytes'), fmtBytes(m.status.mempool?.bytes ?? 0));
  }
  if (m.wallet) renderWallet(m.wallet);
  if (m.blocks) renderBlocks(m.blocks, ui, () => {});
  if (m.pool) renderMempool(m.pool, ui);
  if (m.feed) renderFeed(m.feed, ui);
  renderHeader();
  const opened = new Date(m.openedAt).toLocaleTimeString([], { hour12: false });
  setText($('other-tab-detail'), `This tab shows that node's live state, read-only: it runs in the Tabcoin tab opened at ${opened}.`);
  tickTimes();
}
