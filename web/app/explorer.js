// @ts-check
// The block explorer: search and the block dialog.

import { $, errText, fmtInt, setText, short } from '../ui/dom.js';
import { renderAddressDetail, renderBlockDetail, renderTxDetail } from '../ui/views.js';
import { setResult } from './log.js';
import { query } from './refresh.js';
import { node, ui } from './state.js';

export let dialogHash = null;

export function openBlock(hash) {
  showBlock(hash, {});
}

/**
 * Shows block `hash` in the dialog; false (and a message unless quiet) when the node has none.
 * @param {string} hash
 * @param {{quiet?: boolean}} [opts]
 */
export function showBlock(hash, { quiet = false } = {}) {
  if (!node) return false;
  let b;
  try {
    b = node.block(hash);
  } catch (err) {
    if (!quiet) setResult($('search-result'), 'error', `Could not read block ${short(hash)}: ${errText(err)}`);
    return false;
  }
  if (!b) {
    if (!quiet) setResult($('search-result'), 'error', `This node has no block ${short(hash, 12, 8)} (it may belong to a branch it never saw).`);
    return false;
  }
  setText($('search-result'), '');
  dialogHash = hash;
  renderBlockDetail(b, ui, { onOpen: openBlock });
  const dlg = $('block-dialog');
  if (!dlg.open) dlg.showModal();
  if (!quiet) $('block-body').scrollTop = 0;
  return true;
}

export function setupExplorer() {
  $('block-close').addEventListener('click', () => $('block-dialog').close());
  $('block-dialog').addEventListener('close', () => {
    dialogHash = null;
  });
  // A click on the backdrop closes the dialog.
  $('block-dialog').addEventListener('click', (e) => {
    if (e.target === e.currentTarget) e.currentTarget.close();
  });
  $('block-search').addEventListener('submit', (e) => {
    e.preventDefault();
    lookup($('block-search-input').value).then((shown) => {
      if (shown) $('block-search-input').value = '';
    });
  });
}

/** Opens the active chain's block at `height` (false when there is none). */
export function openHeight(height) {
  const hash = node?.blockAt(height);
  return hash ? showBlock(hash, {}) : false;
}

function openDialog() {
  const dlg = $('block-dialog');
  if (!dlg.open) dlg.showModal();
  $('block-body').scrollTop = 0;
}

/**
 * The explorer's search: a height, a block hash or a txid (64 hex digits), or an address,
 * over the blocks the node keeps. Resolves to whether something was shown.
 * @param {string} raw
 * @returns {Promise<boolean>}
 */
export async function lookup(raw) {
  const q = raw.trim();
  const out = $('search-result');
  if (!q) {
    setText(out, '');
    return false;
  }
  if (!node) {
    setResult(out, 'error', 'The node is not running yet.');
    return false;
  }
  const tip = ui.status?.height;
  if (/^\d+$/.test(q)) {
    const height = Number(q);
    if (openHeight(height)) return true;
    setResult(out, 'error', `There is no block at height ${fmtInt(height)}: the active chain ends at ${tip === undefined ? 'its tip' : `#${fmtInt(tip)}`}.`);
    return false;
  }
  if (/^[0-9a-fA-F]{64}$/.test(q)) {
    const hex = q.toLowerCase();
    if (showBlock(hex, { quiet: true })) return true;
    // The pool and the blocks in memory answer at once; any other block the tab keeps is
    // read through its IndexedDB transaction index.
    let t = query('the transaction', () => node.tx(hex));
    if (!t) {
      try {
        t = await node.findTx(hex);
      } catch (err) {
        setResult(out, 'error', `Could not read the transaction: ${errText(err)}`);
        return false;
      }
    }
    if (t) {
      setText(out, '');
      dialogHash = null;
      renderTxDetail(t, ui, { onOpenHeight: openHeight });
      openDialog();
      return true;
    }
    setResult(out, 'error', `No block and no transaction ${short(hex, 12, 8)} in the blocks this node keeps or its mempool.`);
    return false;
  }
  if (/^t?tab_/i.test(q)) {
    let a;
    try {
      a = node.address(q, 100);
    } catch (err) {
      setResult(out, 'error', `Not an address of this network: ${errText(err)}`);
      return false;
    }
    setText(out, '');
    dialogHash = null;
    renderAddressDetail(a, ui, { onOpenHeight: openHeight });
    openDialog();
    return true;
  }
  setResult(out, 'error', 'Search by block height, block hash, txid (64 hexadecimal digits) or address.');
  return false;
}
