// @ts-check
// The post form (the feed itself is rendered by ui/views.js).

import { $, errText, fmtInt, h, setText, short, utf8Len } from '../ui/dom.js';
import { log, setResult } from './log.js';
import { refresh } from './refresh.js';
import { MAX_POST_BYTES, node, ui } from './state.js';
import { feeRateOf } from './wallet.js';

function postState() {
  const text = $('post-text').value;
  const bytes = utf8Len(text);
  const blank = /^[ \t\r\n]*$/.test(text);
  return { text, bytes, blank, over: bytes > MAX_POST_BYTES };
}

let posting = false;
export function updatePostUi() {
  const s = postState();
  const counter = $('post-counter');
  setText(counter, `${fmtInt(s.bytes)} / ${MAX_POST_BYTES} bytes`);
  counter.dataset.over = String(s.over);
  const area = $('post-text');
  if (s.over) area.setAttribute('aria-invalid', 'true');
  else area.removeAttribute('aria-invalid');
  $('post-submit').disabled = !node || s.blank || s.over || posting;
  $('post-submit').title = s.over ? `Posts are at most ${MAX_POST_BYTES} bytes of UTF-8` : s.blank ? 'Write something first' : '';
}

export async function onPost(e) {
  e.preventDefault();
  const out = $('post-result');
  const s = postState();
  if (!node) return setResult(out, 'error', 'The node is not running yet.');
  if (s.blank) return setResult(out, 'error', 'Write something first: a post cannot be empty or only spaces.');
  if (s.over) return setResult(out, 'error', `Too long: ${s.bytes} bytes, the limit is ${MAX_POST_BYTES} bytes of UTF-8.`);
  const fee = feeRateOf($('post-fee'));
  if (fee.error) return setResult(out, 'error', `Fee rate: ${fee.error}.`);
  posting = true;
  updatePostUi();
  try {
    const txid = node.post(s.text, fee.rate);
    ui.sentTxids.set(txid, 'post');
    out.dataset.txid = txid;
    setResult(out, 'ok', 'Posted · txid ', h('code', { title: txid }, txid), h('span', { class: 'tx-state' }, ' · waiting for a block'));
    log('ok', `Posted (txid ${short(txid)})`);
    $('post-text').value = '';
    refresh();
  } catch (err) {
    delete out.dataset.txid;
    ui.lastRefused = { msg: errText(err), at: performance.now() };
    setResult(out, 'error', `Not posted: ${errText(err)}`);
    log('error', `Post refused: ${errText(err)}`);
  } finally {
    posting = false;
    updatePostUi();
  }
}
