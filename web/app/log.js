// @ts-check
// The error banner, notices and the activity log.

import { $, errText, fmtInt, h, setChildren, setText } from '../ui/dom.js';
import { ui } from './state.js';

export function showError(title, message, { fatal = false } = {}) {
  const banner = $('error-banner');
  setText($('error-title'), title);
  setText($('error-text'), message);
  banner.dataset.fatal = String(fatal);
  $('error-dismiss').hidden = fatal;
  banner.hidden = false;
  log('error', `${title} ${message}`);
}

/** Show an error once per distinct text (for repeating failures of a refresh). */
export function reportOnce(title, e) {
  const msg = errText(e);
  const key = `${title}|${msg}`;
  if (ui.reportedErrors.has(key)) return;
  ui.reportedErrors.add(key);
  showError(title, msg);
}

export function showNotice(text) {
  setText($('notice-text'), text);
  $('notice-banner').hidden = false;
}

const MAX_LOG = 150;

/**
 * Add to the activity entry `key` when it is the newest entry and younger than a few seconds
 * (a burst of blocks becomes one line); otherwise start a new entry. `update(state)` mutates
 * the entry's state and returns its text.
 */
export function logMerged(key, level, update) {
  const first = $('activity').firstElementChild;
  if (first && first.dataset.key === key && performance.now() - first._at < 5000) {
    setText(first.querySelector('.msg'), update(first._state));
    return;
  }
  const state = {};
  const li = log(level, update(state));
  li.dataset.key = key;
  li._state = state;
  li._at = performance.now();
}

export function log(level, text) {
  const list = $('activity');
  const now = new Date();
  const li = h(
    'li',
    { dataset: { level } },
    h('time', { datetime: now.toISOString(), title: now.toLocaleString() }, now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })),
    h('span', { class: 'msg' }, text),
  );
  list.prepend(li);
  while (list.children.length > MAX_LOG) list.lastElementChild.remove();
  return li;
}

export const plural = (n, one, many = `${one}s`) => `${fmtInt(n)} ${n === 1 ? one : many}`;

/** Put a message into a form's result line: kind is 'ok' | 'error' | 'info'. */
export function setResult(el, kind, ...parts) {
  el.dataset.kind = kind;
  setChildren(el, parts);
}
