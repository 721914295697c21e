// @ts-check
// Small DOM and formatting helpers. Everything that may come from the network is put into the
// page with textContent (through `h`), never parsed as HTML.

/**
 * Element by id; throws early when the page and the script disagree. Typed `any`: the kinds
 * of the page's elements are index.html's business; the checked contract is the node's.
 * @param {string} id
 * @returns {any}
 */
export function $(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing element #${id}`);
  return e;
}

/** Element by data-testid, under `root`. */
export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/**
 * Create an element: h('td', {class: 'num', dataset: {hash}}, 'text', childNode, ...).
 * Strings become text nodes; null/undefined/false children are skipped.
 */
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Replace all children of `e`. */
export function setChildren(e, ...children) {
  e.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** Set textContent only when it changed (keeps selections and avoids layout work). */
export function setText(e, s) {
  s = String(s);
  if (e.textContent !== s) e.textContent = s;
}

/** "abcdef…7890" for a long hex id or address. */
export function short(s, head = 8, tail = 6) {
  s = String(s ?? '');
  if (s.length <= head + tail + 1) return s;
  return `${s.slice(0, head)}…${s.slice(-tail)}`;
}

/** An address shortened around its prefix: "ttab_abcd…wxyz". */
export function shortAddr(a) {
  a = String(a ?? '');
  const us = a.indexOf('_');
  return short(a, us >= 0 && us < 8 ? us + 6 : 10, 5);
}

const nf = new Intl.NumberFormat();
export function fmtInt(n) {
  return n === null || n === undefined || Number.isNaN(Number(n)) ? '—' : nf.format(Number(n));
}

export function fmtBytes(n) {
  n = Number(n) || 0;
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 2 : 1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(2)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

export function fmtHashrate(hps) {
  hps = Number(hps) || 0;
  const units = ['H/s', 'kH/s', 'MH/s', 'GH/s', 'TH/s', 'PH/s'];
  let i = 0;
  while (hps >= 1000 && i < units.length - 1) {
    hps /= 1000;
    i++;
  }
  return `${hps.toFixed(i === 0 ? 0 : hps < 10 ? 2 : hps < 100 ? 1 : 0)} ${units[i]}`;
}

/** Coin strings from the node ("12.5") shown with digit grouping and the unit. */
export function fmtCoins(s, unit = 'TAB') {
  if (s === null || s === undefined || s === '') return '—';
  const str = String(s);
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(str);
  if (!m) return `${str} ${unit}`;
  const whole = nf.format(BigInt(m[2]));
  return `${m[1]}${whole}${m[3] ? '.' + m[3] : ''} ${unit}`;
}

/** True when a coin string is a positive amount. */
export function coinsPositive(s) {
  return /^\d+(\.\d+)?$/.test(String(s ?? '')) && /[1-9]/.test(String(s));
}

const rtf = typeof Intl.RelativeTimeFormat === 'function' ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' }) : null;

/** "12 s ago" from unix seconds. */
export function ago(unixSecs) {
  if (!unixSecs) return '—';
  const d = Math.round(Date.now() / 1000 - Number(unixSecs));
  // Block times may run a little ahead of this clock (the rules allow a short drift).
  if (d < 5 && d > -180) return 'just now';
  if (!rtf) return new Date(unixSecs * 1000).toLocaleString();
  const a = Math.abs(d);
  if (a < 60) return rtf.format(-d, 'second');
  if (a < 3600) return rtf.format(-Math.round(d / 60), 'minute');
  if (a < 86400) return rtf.format(-Math.round(d / 3600), 'hour');
  return rtf.format(-Math.round(d / 86400), 'day');
}

export function fullTime(unixSecs) {
  return unixSecs ? new Date(Number(unixSecs) * 1000).toLocaleString() : '';
}

/** UTF-8 length of a string. */
const enc = new TextEncoder();
export function utf8Len(s) {
  return enc.encode(s).length;
}

/** A readable message from anything thrown (wasm-bindgen may throw strings or JsValues). */
export function errText(e) {
  if (e === null || e === undefined) return 'unknown error';
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message || String(e);
  if (typeof e === 'object' && 'message' in e) return String(e.message);
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

/** Copy text to the clipboard; falls back to a hidden textarea where the async API is missing. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the legacy path (e.g. permission denied in automation)
    }
  }
  const ta = h('textarea', { class: 'offscreen', readonly: true });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

/** Run `fn` at most once per `ms`, trailing call guaranteed. */
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - performance.now());
    timer = setTimeout(() => {
      timer = null;
      last = performance.now();
      fn();
    }, wait);
  };
}
