// @ts-check
// Periodic and event-driven refresh of every view from the node's cheap queries.

import { $, fmtBytes, fmtHashrate, fmtInt, setText, throttle } from '../ui/dom.js';
import { renderBlocks, renderFeed, renderMempool, renderPeers, tickTimes } from '../ui/views.js';
import { dialogHash, openBlock, showBlock } from './explorer.js';
import { publish } from './follower.js';
import { connState, renderHeader } from './header.js';
import { reportOnce } from './log.js';
import { renderMining } from './mining.js';
import { node, ui } from './state.js';
import { renderWallet } from './wallet.js';

/** Call one cheap node query; a failure is shown once and does not stop the other views. */
export function query(name, fn) {
  try {
    return fn();
  } catch (e) {
    reportOnce(`Could not read ${name}:`, e);
    return undefined;
  }
}

export function refresh() {
  if (!node) {
    renderHeader();
    return;
  }
  const st = query('the node status', () => node.status());
  if (st) {
    ui.status = st;
    ui.synced = !!st.synced;
    // 'connection' events drive the connection state; until the first one arrives, the status does.
    if (!ui.connEvents || st.connected || ui.conn.state === 'open') ui.conn = connState(st, ui.connEvents ? { state: ui.conn.state, url: ui.conn.url } : null);
    renderPeers(st);
    setText($('mempool-count'), String(st.mempool?.count ?? 0));
    setText($('mempool-bytes'), fmtBytes(st.mempool?.bytes ?? 0));
    setText($('net-hashrate'), st.hashrate ? fmtHashrate(st.hashrate) : '—');
  }
  renderHeader();
  const w = query('the wallet', () => node.wallet());
  if (w) renderWallet(w);
  const blocks = query('the latest blocks', () => node.blocks(15));
  if (blocks) renderBlocks(blocks, ui, openBlock);
  const pool = query('the mempool', () => node.mempool());
  if (pool) renderMempool(pool, ui);
  const feed = query('the posts', () => node.feed(50));
  if (feed) renderFeed(feed, ui);
  for (const id of ['send-result', 'post-result']) followTx($(id));
  publish({ status: st, wallet: w, blocks, pool, feed });
  renderMining();
  if (dialogHash && $('block-dialog').open && st && st.tip !== ui.lastTip) showBlock(dialogHash, { quiet: true });
  if (st) ui.lastTip = st.tip;
  tickTimes();
}

/**
 * The result line of our last payment or post says where its transaction is now: in a block of
 * the active chain, or waiting for one — also again after a reorganisation orphaned its block
 * (the node puts the orphaned block's transactions back in its pool).
 * @param {HTMLElement} out
 */
function followTx(out) {
  const stateEl = /** @type {HTMLElement | null} */ (out.querySelector('.tx-state'));
  const txid = out.dataset.txid;
  if (!stateEl || !txid) return;
  // Still in the block it was found in, if that block is still the active chain's at its height
  // (node.tx sees only the bodies kept in memory, and searches down from the tip).
  const { block, height } = stateEl.dataset;
  if (block && query('the active chain', () => node.blockAt(Number(height))) === block) return;
  const t = query('a transaction', () => node.tx(txid));
  if (t === undefined) return;
  const h = t?.height ?? null;
  const at = h === null ? undefined : query('the active chain', () => node.blockAt(h));
  if (at) Object.assign(stateEl.dataset, { block: at, height: String(h) });
  else for (const k of ['block', 'height']) delete stateEl.dataset[k];
  setText(stateEl, ` · ${t === null ? 'no longer in the pool or the chain' : h === null ? 'waiting for a block' : `in block #${fmtInt(h)}`}`);
}

export const refreshSoon = throttle(refresh, 400);
