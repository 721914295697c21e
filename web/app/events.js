// @ts-check
// Events from the node (BrowserNode.start's onEvent) and new mining templates (onTemplate).

import { $, fmtInt, short } from '../ui/dom.js';
import { connState, renderConnection, renderSyncSoon } from './header.js';
import { log, logMerged, plural, setResult, showError, showNotice } from './log.js';
import { miner } from './mining.js';
import { query, refresh, refreshSoon } from './refresh.js';
import { node, ui } from './state.js';

/** @param {import('./state.js').NodeEvent} ev */
export function onEvent(ev) {
  try {
    handleEvent(ev);
  } catch (e) {
    console.error('event handler failed', ev, e);
  }
}

/** @param {import('./state.js').NodeEvent} ev */
function handleEvent(ev) {
  switch (ev.kind) {
    case 'tip':
      if (ev.disconnected > 0) log('warn', `Reorganisation: ${plural(ev.disconnected, 'block')} replaced; new tip #${fmtInt(ev.height)}`);
      else if (ui.synced && !(ui.foundHeights.has(ev.height))) {
        logMerged('tip', 'info', (s) => {
          s.n = (s.n || 0) + 1;
          s.from ??= ev.height;
          return s.n === 1 ? `New block #${fmtInt(ev.height)} ${short(ev.hash, 10, 6)}` : `${plural(s.n, 'new block')}, #${fmtInt(s.from)} to #${fmtInt(ev.height)}`;
        });
      }
      if (!ui.synced && ui.sync) ui.sync = { ...ui.sync, height: Math.max(ui.sync.height, ev.height) };
      refreshSoon();
      break;
    case 'sync':
      if (!ui.sync && ev.target - ev.height >= 10) log('info', `Downloading the chain: ${plural(ev.target - ev.height, 'block')} to go`);
      ui.sync = { height: ev.height, target: ev.target };
      ui.synced = false;
      renderSyncSoon();
      refreshSoon();
      break;
    case 'synced':
      ui.synced = true;
      ui.sync = null;
      if (ui.status) ui.status.synced = true;
      log('ok', `Synced at height ${fmtInt(ev.height)}`);
      setTimeout(refresh, 0); // not from inside the node's callback
      break;
    case 'peer':
      // `kind` is the event's tag, so the peer's own kind comes as `peerKind`.
      log('info', `${ev.connected ? 'Peer connected' : 'Peer disconnected'}: ${ev.peerKind ? `${ev.peerKind} ` : ''}#${ev.id}`);
      refreshSoon();
      break;
    case 'tx':
      // Our own transaction's event comes while send()/post() is still running: look at it
      // once the call has returned and its txid is known.
      setTimeout(() => txEvent(ev), 0);
      break;
    case 'block_rejected':
      log('error', `Block ${short(ev.hash, 10, 6)} rejected: ${ev.reason}`);
      break;
    case 'connection': {
      ui.connEvents = (ui.connEvents || 0) + 1;
      const prev = ui.conn.state;
      // The node keeps several relay links and redials dead ones: the header shows whether
      // the node is connected at all (and through which relay), not the last event of any link.
      // Events also arrive while BrowserNode.start is still running (no node yet).
      ui.conn = connState(node ? query('the node status', () => node.status()) : null, ev);
      // A link this tab dropped, and why, is always told: other links may keep the node
      // connected, so the header alone would not show it.
      if (ev.state !== prev || ev.url !== ui.lastConnUrl || (ev.state === 'closed' && ev.reason)) {
        ui.lastConnUrl = ev.url;
        if (ev.state === 'open') log('ok', `Connected to ${ev.url}`);
        else if (ev.state === 'closed') log('warn', closedText(ev));
        else if (ev.state === 'connecting') log('info', `Connecting to ${ev.url}`);
      }
      renderConnection();
      break;
    }
    case 'store':
      if (ev.quotaExceeded) showError('Storage full:', 'the browser refused to store more data, so new blocks cannot be saved. Free some space for this site, or grant it persistent storage, then reload.');
      else if (ev.error) showError('Storage error:', String(ev.error));
      if (ev.repaired) {
        showNotice(`The stored chain was repaired: ${ev.repaired}`);
        log('warn', `Storage repaired: ${ev.repaired}`);
      }
      break;
    case 'banned':
      // A connection ended with a ban for misbehaviour (the reason says whose).
      showError('Connection banned:', `${ev.reason || 'no reason given'}. The node keeps trying its other known relays.`);
      break;
    default:
      break;
  }
}

/** @param {Extract<import('./state.js').NodeEvent, {kind: 'tx'}>} ev */
/** The activity line of a closed link: which, why (when this tab dropped it), when again. */
function closedText(ev) {
  const why = ev.reason ? ` by this tab: ${ev.reason}` : '';
  const retry = ev.retryInMs ? `; retrying in ${Math.ceil(ev.retryInMs / 1000)} s` : '';
  return `Connection to ${ev.url || 'the relay'} closed${why}${retry}`;
}

function txEvent(ev) {
  const mine = ui.sentTxids.get(ev.txid);
  if (!ev.accepted) {
    const reason = ev.error || 'rejected';
    if (mine) {
      const out = mine === 'post' ? $('post-result') : $('send-result');
      if (out.dataset.txid === ev.txid) setResult(out, 'error', `Transaction ${short(ev.txid)} was rejected: ${reason}`);
      log('error', `Our ${mine === 'post' ? 'post' : 'payment'} ${short(ev.txid)} was rejected: ${reason}`);
    } else {
      // Our own send/post that threw has been reported with its form already.
      const r = ui.lastRefused;
      if (r && r.msg === reason && performance.now() - r.at < 2000) return;
      log('warn', `Transaction ${short(ev.txid)} rejected: ${reason}`);
    }
  } else if (!mine) {
    logMerged('tx', 'info', (s) => {
      s.n = (s.n || 0) + 1;
      return s.n === 1 ? `Transaction ${short(ev.txid)} entered the mempool` : `${plural(s.n, 'transaction')} entered the mempool`;
    });
  }
  refreshSoon();
}

/** @param {import('./state.js').MiningTemplate} t */
export function onTemplate(t) {
  miner.setTemplate(t);
}
