// The block explorer: search and the block dialog.

import { $, errText, setText, short } from '../ui/dom.js';
import { renderBlockDetail } from '../ui/views.js';
import { setResult } from './log.js';
import { query } from './refresh.js';
import { node, ui } from './state.js';

export let dialogHash = null;

export function openBlock(hash) {
  showBlock(hash, {});
}

export function showBlock(hash, { quiet }) {
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
    const q = $('block-search-input').value.trim().toLowerCase();
    const out = $('search-result');
    if (!q) return setText(out, '');
    if (!node) return setResult(out, 'error', 'The node is not running yet.');
    if (/^\d+$/.test(q)) {
      const list = query('the latest blocks', () => node.blocks(100)) || [];
      const hit = list.find((b) => String(b.height) === q);
      if (hit) return void showBlock(hit.hash, {});
      return setResult(out, 'error', `Block ${q} is not among the latest 100 blocks; search by hash instead.`);
    }
    if (!/^[0-9a-f]{64}$/.test(q)) return setResult(out, 'error', 'A block hash is 64 hexadecimal characters.');
    if (showBlock(q, {})) $('block-search-input').value = '';
  });
}
