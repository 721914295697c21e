// @ts-check
// The wallet panel: balances, the send form, key export and import.

import { $, coinsPositive, copyText, errText, fmtCoins, fmtInt, h, setText, short, shortAddr } from '../ui/dom.js';
import { log, setResult } from './log.js';
import { refresh } from './refresh.js';
import { DEFAULT_FEE_RATE, MAX_FEE_RATE, MIN_FEE_RATE, node, ui } from './state.js';

export function renderWallet(w) {
  if (w.address !== ui.address) {
    ui.address = w.address;
    setText($('wallet-address'), w.address || '—');
    $('copy-address').disabled = !w.address;
  }
  for (const [id, v] of [
    ['wallet-confirmed', w.confirmed],
    ['wallet-immature', w.immature],
    ['wallet-pending', w.pending],
    ['wallet-spending', w.spending],
  ]) {
    // The number alone (parseable), the unit beside it.
    const e = $(id);
    e.dataset.value = v ?? '';
    setText(e, v ?? '—');
  }
  setText($('wallet-meta'), ui.address ? shortAddr(ui.address) : '');
}

/**
 * The fee rate of a form, in base units per 1,000 bytes: blank means the default; otherwise a
 * whole number from the relays' minimum to MAX_FEE_RATE (one coin per kB; more is a typo).
 * The node checks the same bounds.
 * @param {HTMLInputElement} input
 * @returns {{rate: number, error?: undefined} | {error: string, rate?: undefined}}
 */
export function feeRateOf(input) {
  const raw = input.value.trim();
  if (raw === '') return { rate: DEFAULT_FEE_RATE };
  const n = Number(raw);
  if (!Number.isInteger(n)) return { error: 'the fee rate must be a whole number of base units per 1,000 bytes' };
  if (n < MIN_FEE_RATE) return { error: `the fee rate must be at least ${fmtInt(MIN_FEE_RATE)} base units per 1,000 bytes, the minimum relays accept` };
  if (n > MAX_FEE_RATE) return { error: `the fee rate must be at most ${fmtInt(MAX_FEE_RATE)} base units per 1,000 bytes (1 ${ui.unit} per 1,000 bytes); ${fmtInt(n)} looks like a typo` };
  return { rate: n };
}

function validateAmount(s) {
  if (s === '') return 'enter an amount';
  if (!/^\d+(\.\d+)?$/.test(s)) return 'the amount must be a number such as 1.5 (no signs or separators)';
  if ((s.split('.')[1] || '').length > 8) return 'the amount has more than 8 decimal places';
  if (!coinsPositive(s)) return 'the amount must be more than zero';
  return null;
}

export function updateSendButton() {
  $('send-submit').disabled = !node || !$('send-to').value.trim() || !$('send-amount').value.trim() || sending;
}

let sending = false;
export async function onSend(e) {
  e.preventDefault();
  const out = $('send-result');
  const toEl = $('send-to');
  const amountEl = $('send-amount');
  const feeEl = $('send-fee');
  for (const el of [toEl, amountEl, feeEl]) el.removeAttribute('aria-invalid');
  if (!node) return setResult(out, 'error', 'The node is not running yet.');
  const to = toEl.value.trim();
  const amount = amountEl.value.trim().replace(/,/g, '.');
  const fee = feeRateOf(feeEl);
  let problem = null;
  let field = null;
  if (!to) [problem, field] = ['Enter the address to pay.', toEl];
  else if (to === ui.address) [problem, field] = ['That is your own address.', toEl];
  else if (validateAmount(amount)) [problem, field] = [`Amount: ${validateAmount(amount)}.`, amountEl];
  else if (fee.error) [problem, field] = [`Fee rate: ${fee.error}.`, feeEl];
  if (problem) {
    field.setAttribute('aria-invalid', 'true');
    field.focus();
    return setResult(out, 'error', problem);
  }
  sending = true;
  updateSendButton();
  try {
    const txid = node.send(to, amount, fee.rate);
    ui.sentTxids.set(txid, 'send');
    out.dataset.txid = txid;
    setResult(out, 'ok', `Sent ${fmtCoins(amount, ui.unit)} · txid `, h('code', { title: txid }, txid), h('span', { class: 'tx-state' }, ' · waiting for a block'));
    log('ok', `Sent ${amount} ${ui.unit} to ${to} (txid ${short(txid)})`);
    amountEl.value = '';
    refresh();
  } catch (err) {
    delete out.dataset.txid;
    ui.lastRefused = { msg: errText(err), at: performance.now() };
    setResult(out, 'error', `Not sent: ${errText(err)}`);
    log('error', `Send refused: ${errText(err)}`);
  } finally {
    sending = false;
    updateSendButton();
  }
}

// ---- key export / import --------------------------------------------------------------------

let hideKeyTimer = null;
function hideKey() {
  clearTimeout(hideKeyTimer);
  setText($('key-output'), '');
  $('key-box').hidden = true;
}

export function setupKeys() {
  $('export-key').addEventListener('click', () => {
    hideKey();
    $('export-confirm').hidden = false;
    $('export-key-confirm').focus();
  });
  $('export-key-cancel').addEventListener('click', () => {
    $('export-confirm').hidden = true;
  });
  $('export-key-confirm').addEventListener('click', () => {
    $('export-confirm').hidden = true;
    const out = $('import-result');
    try {
      const key = node.exportKey();
      setText($('key-output'), key);
      $('key-box').hidden = false;
      setResult(out, 'info', 'The key is hidden again automatically after 2 minutes.');
      clearTimeout(hideKeyTimer);
      hideKeyTimer = setTimeout(() => {
        hideKey();
        setText(out, '');
      }, 120_000);
    } catch (err) {
      setResult(out, 'error', `Could not export the key: ${errText(err)}`);
    }
  });
  $('hide-key').addEventListener('click', () => {
    hideKey();
    setText($('import-result'), '');
  });
  $('copy-key').addEventListener('click', (e) => copyWithFeedback(e.currentTarget, $('key-output').textContent));

  const input = $('import-key-input');
  const submit = $('import-key-submit');
  input.addEventListener('input', () => {
    input.removeAttribute('aria-invalid');
    submit.disabled = !node || !input.value.trim();
    $('import-confirm').hidden = true;
  });
  $('import-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const out = $('import-result');
    const hex = input.value.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(hex)) {
      input.setAttribute('aria-invalid', 'true');
      setResult(out, 'error', `A key is 64 hexadecimal characters (0-9, a-f); this has ${hex.length} characters${/[^0-9a-f]/.test(hex) ? ', some of them not hexadecimal' : ''}.`);
      return;
    }
    setText(out, '');
    $('import-confirm').hidden = false;
    $('import-key-confirm').focus();
  });
  $('import-key-cancel').addEventListener('click', () => {
    $('import-confirm').hidden = true;
  });
  $('import-key-confirm').addEventListener('click', async () => {
    $('import-confirm').hidden = true;
    const out = $('import-result');
    const hex = input.value.trim().toLowerCase();
    const btn = $('import-key-confirm');
    btn.disabled = true;
    submit.disabled = true;
    try {
      const address = await window.tabcoin.keylock.importKey(hex);
      input.value = '';
      hideKey();
      setResult(out, 'ok', 'Wallet key replaced. Your address is now ', h('code', {}, String(address)), '.');
      log('ok', `Imported a wallet key: address ${address}`);
      refresh();
    } catch (err) {
      input.setAttribute('aria-invalid', 'true');
      setResult(out, 'error', `Import refused: ${errText(err)}`);
    } finally {
      btn.disabled = false;
      submit.disabled = !input.value.trim();
    }
  });
}

export async function copyWithFeedback(btn, text) {
  const ok = text && (await copyText(text));
  const old = btn.dataset.label || btn.textContent;
  btn.dataset.label = old;
  btn.textContent = ok ? 'Copied' : 'Copy failed';
  setTimeout(() => {
    btn.textContent = old;
  }, 1500);
}
