// Tabcoin page: starts the browser full node (wasm), holds the one-writer lock, drives the
// mining workers and keeps the views up to date.

import { $, coinsPositive, copyText, errText, fmtBytes, fmtCoins, fmtHashrate, fmtInt, h, setChildren, setText, short, shortAddr, throttle, utf8Len } from './ui/dom.js';
import { renderBlockDetail, renderBlocks, renderFeed, renderMempool, renderPeers, tickTimes } from './ui/views.js';
import { Miner } from './ui/miner.js';
import { HashrateChart } from './ui/chart.js';

const MAX_POST_BYTES = 320;
const DEFAULT_FEE_RATE = 1000;
const REFRESH_MS = 2000;
const PKG = new URL('./pkg/tabcoin_wasm.js', import.meta.url).href;

// ---- state ----------------------------------------------------------------------------------

let node = null; // the BrowserNode once started
let network = null;
const ui = {
  unit: 'TAB',
  address: null,
  status: null,
  conn: { state: 'starting' },
  sync: null, // {height, target} while syncing
  synced: false,
  lastTip: null,
  storagePersisted: undefined, // answer of persistStorage()
  sentTxids: new Map(), // txid -> 'send' | 'post'
  foundHeights: new Set(), // heights of blocks this tab found lately (their tips are not logged twice)
  reportedErrors: new Set(),
};

let resolveReady;
let rejectReady;
const ready = new Promise((res, rej) => {
  resolveReady = res;
  rejectReady = rej;
});
ready.catch(() => {}); // the rejection is shown in the page; tests await `ready` themselves

// ---- error banner, notices, activity log ----------------------------------------------------

function showError(title, message, { fatal = false } = {}) {
  const banner = $('error-banner');
  setText($('error-title'), title);
  setText($('error-text'), message);
  banner.dataset.fatal = String(fatal);
  $('error-dismiss').hidden = fatal;
  banner.hidden = false;
  log('error', `${title} ${message}`);
}

/** Show an error once per distinct text (for repeating failures of a refresh). */
function reportOnce(title, e) {
  const msg = errText(e);
  const key = `${title}|${msg}`;
  if (ui.reportedErrors.has(key)) return;
  ui.reportedErrors.add(key);
  showError(title, msg);
}

function showNotice(text) {
  setText($('notice-text'), text);
  $('notice-banner').hidden = false;
}

const MAX_LOG = 150;

/**
 * Add to the activity entry `key` when it is the newest entry and younger than a few seconds
 * (a burst of blocks becomes one line); otherwise start a new entry. `update(state)` mutates
 * the entry's state and returns its text.
 */
function logMerged(key, level, update) {
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

function log(level, text) {
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

const plural = (n, one, many = `${one}s`) => `${fmtInt(n)} ${n === 1 ? one : many}`;

/** Put a message into a form's result line: kind is 'ok' | 'error' | 'info'. */
function setResult(el, kind, ...parts) {
  el.dataset.kind = kind;
  setChildren(el, parts);
}

// ---- header ---------------------------------------------------------------------------------

function renderNetwork() {
  const badge = $('net-badge');
  badge.dataset.network = network || '';
  setText(badge, network ? `${network} network` : '…');
  document.title = network === 'main' || !network ? 'Tabcoin' : `Tabcoin (${network} network)`;
  ui.unit = network === 'test' ? 'tTAB' : 'TAB';
  for (const e of document.querySelectorAll('[data-unit]')) setText(e, ui.unit);
  $('send-to').placeholder = network === 'test' ? 'ttab_…' : 'tab_…';
}

/** Connection state from the node's status: open while any relay link is established. */
function connState(st, ev) {
  const relays = (st?.peers || []).filter((p) => p.outbound && p.url).map((p) => p.url);
  if (st?.connected) return { state: 'open', url: relays[0] || ev?.url || st.relay, retryAt: null };
  const state = ev?.state === 'connecting' ? 'connecting' : ev ? 'closed' : 'connecting';
  return { state, url: ev?.url || st?.relay, retryAt: ev?.state === 'closed' && ev.retryInMs ? performance.now() + ev.retryInMs : null };
}

function renderConnection() {
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

function renderSync() {
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
function renderSyncSoon() {
  if (!syncFrame) {
    syncFrame = requestAnimationFrame(() => {
      syncFrame = 0;
      renderSync();
    });
  }
}

function renderStorage() {
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
  const est = st && st.usage !== undefined && st.quota ? st : ui.estimate;
  if (est && est.quota) parts.push(`This site uses ${fmtMB(est.usage)} of ${fmtMB(est.quota)} the browser allows it.`);
  if (st && st.error) parts.push(`Storage error: ${st.error}`);
  e.title = parts.join(' ');
}

function fmtMB(n) {
  n = Number(n) || 0;
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}

/** How much storage the origin uses (for the storage tooltip). */
async function estimateStorage() {
  try {
    if (!navigator.storage?.estimate) return;
    const { usage, quota } = await navigator.storage.estimate();
    ui.estimate = { usage, quota };
    renderStorage();
  } catch {
    // not available in this context
  }
}

function renderHeader() {
  renderConnection();
  renderSync();
  renderStorage();
  const st = ui.status;
  if (st) {
    setText($('peer-count'), String((st.peers || []).length));
    const id = st.nodeId || '';
    setText($('node-id'), id ? id.slice(0, 12) : '—');
    $('node-id').title = id ? `Node id ${id}` : '';
  }
}

// ---- refresh --------------------------------------------------------------------------------

/** Call one cheap node query; a failure is shown once and does not stop the other views. */
function query(name, fn) {
  try {
    return fn();
  } catch (e) {
    reportOnce(`Could not read ${name}:`, e);
    return undefined;
  }
}

function refresh() {
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
  if (feed) {
    renderFeed(feed, ui);
    // Our last post's result line follows it into a block.
    const out = $('post-result');
    const mine = out.dataset.txid && feed.find((p) => p.txid === out.dataset.txid);
    const stateEl = out.querySelector('.post-state');
    if (mine && stateEl && mine.height !== null && mine.height !== undefined) setText(stateEl, ` · in block #${mine.height}`);
  }
  renderMining();
  if (dialogHash && $('block-dialog').open && st && st.tip !== ui.lastTip) showBlock(dialogHash, { quiet: true });
  if (st) ui.lastTip = st.tip;
  tickTimes();
}

const refreshSoon = throttle(refresh, 400);

// ---- wallet ---------------------------------------------------------------------------------

function renderWallet(w) {
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

function feeRateOf(input) {
  const raw = input.value.trim();
  if (raw === '') return { rate: DEFAULT_FEE_RATE };
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) return { error: 'the fee rate must be a whole number of base units per 1,000 bytes' };
  if (n > 1e12) return { error: 'the fee rate is implausibly high' };
  return { rate: n };
}

function validateAmount(s) {
  if (s === '') return 'enter an amount';
  if (!/^\d+(\.\d+)?$/.test(s)) return 'the amount must be a number such as 1.5 (no signs or separators)';
  if ((s.split('.')[1] || '').length > 8) return 'the amount has more than 8 decimal places';
  if (!coinsPositive(s)) return 'the amount must be more than zero';
  return null;
}

function updateSendButton() {
  $('send-submit').disabled = !node || !$('send-to').value.trim() || !$('send-amount').value.trim() || sending;
}

let sending = false;
async function onSend(e) {
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
    setResult(out, 'ok', `Sent ${fmtCoins(amount, ui.unit)} · txid `, h('code', { title: txid }, txid));
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

function setupKeys() {
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
      const address = await node.importKey(hex);
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

async function copyWithFeedback(btn, text) {
  const ok = text && (await copyText(text));
  const old = btn.dataset.label || btn.textContent;
  btn.dataset.label = old;
  btn.textContent = ok ? 'Copied' : 'Copy failed';
  setTimeout(() => {
    btn.textContent = old;
  }, 1500);
}

// ---- posts ----------------------------------------------------------------------------------

function postState() {
  const text = $('post-text').value;
  const bytes = utf8Len(text);
  const blank = /^[ \t\r\n]*$/.test(text);
  return { text, bytes, blank, over: bytes > MAX_POST_BYTES };
}

let posting = false;
function updatePostUi() {
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

async function onPost(e) {
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
    setResult(out, 'ok', 'Posted · txid ', h('code', { title: txid }, txid), h('span', { class: 'post-state' }, ' · waiting for a block'));
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

// ---- block explorer -------------------------------------------------------------------------

let dialogHash = null;

function openBlock(hash) {
  showBlock(hash, {});
}

function showBlock(hash, { quiet }) {
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

function setupExplorer() {
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

// ---- mining ---------------------------------------------------------------------------------

const cores = Math.max(1, navigator.hardwareConcurrency || 1);
let chart = null;
let miningError = null;

const miner = new Miner({
  onFound(header) {
    try {
      // false: the block was stale (another block won the height) or refused.
      if (!node.submitHeader(header)) return;
      const t = miner.template;
      if (t) {
        ui.foundHeights.add(t.height);
        if (ui.foundHeights.size > 64) ui.foundHeights.delete(ui.foundHeights.values().next().value);
      }
      logMerged('found', 'ok', (s) => {
        s.n = (s.n || 0) + 1;
        s.from ??= t?.height;
        const what = t ? `at height ${fmtInt(t.height)} (${t.reward} ${ui.unit})` : '';
        return s.n === 1 ? `Found a block ${what}` : `Found ${plural(s.n, 'block')}, heights ${fmtInt(s.from)} to ${fmtInt(t?.height)}`;
      });
      refreshSoon();
      return true;
    } catch (err) {
      log('error', `The node refused our block: ${errText(err)}`);
      return false;
    }
  },
  onError(message) {
    miningError = message;
    reportOnce('Mining:', message);
    renderMining();
  },
  onChange() {
    renderMining();
  },
});

function renderMining() {
  const btn = $('mining-toggle');
  btn.disabled = !node;
  btn.dataset.running = String(miner.running);
  setText(btn, miner.running ? 'Stop mining' : 'Start mining');
  const pill = $('mining-state');
  let state = 'idle';
  let label = 'Idle';
  let tmpl = '—';
  const synced = ui.status ? !!ui.status.synced : ui.synced;
  if (miner.running) {
    if (miningError && miner.workerErrors > 0 && miner.readyCount === 0) [state, label] = ['error', 'Workers failed'];
    else if (!synced) [state, label] = ['waiting', 'Waiting for sync'];
    else if (!miner.template) [state, label] = ['waiting', 'Waiting for a template'];
    else if (miner.readyCount < miner.workerCount) [state, label] = ['waiting', 'Starting workers'];
    else [state, label] = ['mining', `Mining · ${miner.workerCount} worker${miner.workerCount === 1 ? '' : 's'}`];
    if (miner.template) tmpl = `#${fmtInt(miner.template.height)}`;
  }
  pill.dataset.state = state;
  setText(pill, label);
  setText($('mining-template'), tmpl);
  $('mining-template').title = miner.running && miner.template ? `Block ${miner.template.height}, reward ${miner.template.reward} ${ui.unit}` : '';
  setText($('mining-found'), String(miner.found));
  const note = $('mining-note');
  if (miner.running && !synced) setText(note, 'Waiting for sync: mining begins automatically once this tab has the whole chain.');
  else setText(note, 'Mining runs in Web Workers of this tab. Mined coins are paid to your wallet address and mature after a number of blocks.');
}

function renderHashrate() {
  const hps = miner.hashrate();
  const e = $('mining-hashrate');
  e.dataset.hps = String(Math.round(hps));
  setText(e, fmtHashrate(hps));
  const net = ui.status?.hashrate;
  if (net && hps > 0) e.title = `about ${Math.min(100, (hps / net) * 100).toFixed(1)}% of the network estimate`;
  return hps;
}

function setupMining() {
  const sel = $('mining-workers');
  const saved = Number(localStorage.getItem('tabcoin.workers'));
  const def = saved >= 1 && saved <= cores ? saved : Math.max(1, cores - 1);
  for (let i = 1; i <= cores; i++) sel.append(h('option', { value: i }, `${i}`));
  sel.value = String(def);
  sel.title = `This device reports ${cores} logical core${cores === 1 ? '' : 's'}`;
  miner.count = def;
  sel.addEventListener('change', () => {
    const n = Number(sel.value);
    localStorage.setItem('tabcoin.workers', String(n));
    miner.setCount(n);
    if (miner.running) log('info', `Mining with ${plural(n, 'worker')}`);
  });
  $('mining-toggle').addEventListener('click', () => {
    if (!node) return;
    miningError = null;
    try {
      if (miner.running) {
        node.setMining(false);
        miner.stop();
        miner.clearTemplate();
        log('info', 'Mining stopped');
      } else {
        miner.start(Number(sel.value));
        node.setMining(true);
        log('info', ui.status?.synced ? `Mining started with ${plural(miner.count, 'worker')}` : 'Mining will start once the node is synced');
      }
    } catch (err) {
      miner.stop();
      showError('Mining:', errText(err));
    }
    renderMining();
  });
  const chartBox = $('hashrate-chart');
  chart = new HashrateChart(chartBox);
  chart.ready.catch((e) => console.warn('hashrate chart unavailable', e));
  let sampled = false;
  setInterval(() => {
    const hps = renderHashrate();
    if (miner.running || sampled) {
      sampled = true;
      chart.push(hps);
    }
  }, 2000);
  setInterval(renderHashrate, 1000);
}

// ---- node events ----------------------------------------------------------------------------

function onEvent(ev) {
  try {
    handleEvent(ev);
  } catch (e) {
    console.error('event handler failed', ev, e);
  }
}

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
      if (ev.state !== prev || ev.url !== ui.lastConnUrl) {
        ui.lastConnUrl = ev.url;
        if (ev.state === 'open') log('ok', `Connected to ${ev.url}`);
        else if (ev.state === 'closed') log('warn', `Connection to ${ev.url || 'the relay'} closed${ev.retryInMs ? `; retrying in ${Math.ceil(ev.retryInMs / 1000)} s` : ''}`);
        else if (ev.state === 'connecting') log('info', `Connecting to ${ev.url}`);
      }
      renderConnection();
      break;
    }
    case 'store':
      if (ev.quotaExceeded || ev.quota_exceeded) showError('Storage full:', 'the browser refused to store more data, so new blocks cannot be saved. Free some space for this site, or grant it persistent storage, then reload.');
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

function onTemplate(t) {
  miner.setTemplate(t);
}

// ---- boot -----------------------------------------------------------------------------------

/** The relay's network name, retried until the relay answers (or from the last visit). */
async function detectNetwork() {
  let delay = 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(new URL('api/status', location.href), { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const s = await r.json();
      if (s.network !== 'main' && s.network !== 'test') throw new Error(`unknown network ${JSON.stringify(s.network)}`);
      localStorage.setItem('tabcoin.network', s.network);
      return s.network;
    } catch (e) {
      const cached = localStorage.getItem('tabcoin.network');
      if (cached === 'main' || cached === 'test') {
        showNotice(`The relay at ${location.host} does not answer (${errText(e)}). Starting from the chain stored in this browser; the node keeps trying to connect.`);
        return cached;
      }
      ui.conn = { state: 'closed', url: location.host, retryAt: performance.now() + delay };
      renderConnection();
      if (attempt === 0) log('warn', `The relay does not answer (${errText(e)}); retrying`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  }
}

/** Load the wasm package, with a readable error when it is not built or not served. */
async function loadWasm() {
  let res;
  try {
    res = await fetch(PKG, { method: 'HEAD', cache: 'no-cache' });
  } catch (e) {
    throw new Error(`could not reach ${PKG}: ${errText(e)}`);
  }
  const type = res.headers.get('content-type') || '';
  if (!res.ok || !type.includes('javascript')) {
    throw new Error('the browser node (web/pkg/tabcoin_wasm.js) is not built. Run `npm run build:web` and reload.');
  }
  if (typeof WebAssembly !== 'object') throw new Error('this browser has no WebAssembly');
  const mod = await import(PKG);
  await mod.default();
  return mod;
}

function relayUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

async function startNode(wasm) {
  if (!$('other-tab-banner').hidden) log('info', 'The other tab closed: this tab takes over');
  $('other-tab-banner').hidden = true;
  ui.conn = { state: 'connecting', url: relayUrl() };
  renderConnection();
  log('info', `Starting the ${network} network node`);
  const started = await wasm.BrowserNode.start({
    relay: relayUrl(),
    network,
    dbName: `tabcoin-${network}`,
    onEvent,
    onTemplate,
  });
  node = started;
  window.tabcoin.node = node;
  // Load the mining workers now, while the relay that served the page is reachable.
  miner.prewarm(Number($('mining-workers').value) || miner.count);
  enableControls();
  refresh();
  resolveReady(node);
  log('ok', 'Node started');
  Promise.resolve()
    .then(() => node.persistStorage())
    .then((granted) => {
      ui.storagePersisted = !!granted;
      log(granted ? 'ok' : 'warn', granted ? 'Persistent storage granted' : 'Persistent storage denied: the browser may evict the chain and the wallet key; export your key');
      renderStorage();
    })
    .catch((e) => {
      ui.storagePersisted = false;
      log('warn', `Persistent storage unavailable: ${errText(e)}`);
      renderStorage();
    });
  setInterval(refresh, REFRESH_MS);
  // Write what is validated but unstored before the tab may be frozen or closed.
  const flush = () => node.flush().catch((e) => log('warn', `Storage flush: ${errText(e)}`));
  addEventListener('pagehide', flush);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') flush();
  });
  estimateStorage();
  setInterval(estimateStorage, 30_000);
  return node;
}

function enableControls() {
  updateSendButton();
  updatePostUi();
  $('export-key').disabled = false;
  $('import-key-submit').disabled = !$('import-key-input').value.trim();
  renderMining();
}

/**
 * One writer per origin and network: the node runs while this tab holds the Web Lock. If another
 * tab holds it, wait for it in the queue; the lock is granted the moment that tab closes.
 */
async function runWithLock(wasm) {
  const name = `tabcoin-node-${network}`;
  if (!navigator.locks) {
    showNotice('This browser does not offer Web Locks here (the page is not in a secure context such as https or localhost), so it cannot make sure only one tab runs the node. Keep Tabcoin open in one tab only.');
    await startNode(wasm);
    return;
  }
  // Resolves true once the node runs under the lock (held until the page goes away), false
  // when `ifAvailable` found it taken; rejects when the node fails to start (the lock is then
  // released, so another tab may try).
  const underLock = (options) =>
    new Promise((resolve, reject) => {
      navigator.locks
        .request(name, options, async (lock) => {
          if (!lock) return resolve(false);
          try {
            await startNode(wasm);
          } catch (e) {
            reject(e);
            return;
          }
          resolve(true);
          await new Promise(() => {}); // hold the lock for the node's lifetime
        })
        .catch(reject);
    });
  if (await underLock({ ifAvailable: true })) return;
  $('other-tab-banner').hidden = false;
  ui.conn = { state: 'waiting' };
  renderHeader();
  log('warn', 'Tabcoin is running in another tab of this browser; this tab takes over when that one closes');
  await underLock({});
}

async function boot() {
  window.tabcoin = { node: null, ready, miner };
  setupUi();
  renderHeader();
  network = await detectNetwork();
  renderNetwork();
  let wasm;
  try {
    wasm = await loadWasm();
  } catch (e) {
    fail(e);
    return;
  }
  try {
    await runWithLock(wasm);
  } catch (e) {
    fail(e);
  }
}

function fail(e) {
  const msg = errText(e);
  ui.failed = true;
  showError('The node could not start:', msg, { fatal: true });
  ui.conn = { state: 'closed' };
  renderHeader();
  setText($('conn-detail'), 'node not running');
  rejectReady(e instanceof Error ? e : new Error(msg));
}

function setupUi() {
  $('error-dismiss').addEventListener('click', () => {
    $('error-banner').hidden = true;
  });
  $('notice-dismiss').addEventListener('click', () => {
    $('notice-banner').hidden = true;
  });
  $('activity-clear').addEventListener('click', () => $('activity').replaceChildren());
  $('copy-address').addEventListener('click', (e) => copyWithFeedback(e.currentTarget, ui.address));
  $('send-form').addEventListener('submit', onSend);
  for (const id of ['send-to', 'send-amount', 'send-fee']) {
    $(id).addEventListener('input', (e) => {
      e.target.removeAttribute('aria-invalid');
      updateSendButton();
    });
  }
  $('post-form').addEventListener('submit', onPost);
  $('post-text').addEventListener('input', updatePostUi);
  $('post-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!$('post-submit').disabled) $('post-form').requestSubmit();
    }
  });
  setupKeys();
  setupExplorer();
  setupMining();
  updatePostUi();
  // The "retrying in N s" countdown.
  setInterval(() => {
    if (ui.conn.retryAt) renderConnection();
  }, 1000);
  addEventListener('pagehide', (e) => {
    if (e.persisted) return;
    miner.stop();
    try {
      node?.stop();
    } catch {
      // the page is going away
    }
  });
}

boot().catch(fail);
