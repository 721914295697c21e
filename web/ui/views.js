// @ts-check
// Rendering of the node's data. Every string from the node (addresses, post texts, reasons,
// URLs) goes through textContent via `h`; nothing untrusted is ever parsed as HTML.

import { $, ago, fmtBytes, fmtCoins, fmtInt, fullTime, h, setChildren, setText, short, shortAddr } from './dom.js';

/**
 * Keyed list rendering: reuses the element of an unchanged item (so selections, focus and
 * hover survive a refresh), rebuilds an item whose signature changed, keeps the order.
 */
export function renderKeyed(container, items, keyOf, sigOf, create) {
  const old = container._keyed || new Map();
  const next = new Map();
  const els = [];
  for (const it of items) {
    const k = keyOf(it);
    if (next.has(k)) continue; // duplicate key: show once
    const sig = sigOf(it);
    let entry = old.get(k);
    if (!entry || entry.sig !== sig) {
      const el = create(it);
      if (entry) entry.el.replaceWith(el);
      entry = { el, sig, fresh: !entry };
    } else entry.fresh = false;
    next.set(k, entry);
    els.push(entry.el);
  }
  for (const [k, entry] of old) if (!next.has(k)) entry.el.remove();
  els.forEach((el, i) => {
    if (container.children[i] !== el) container.insertBefore(el, container.children[i] || null);
  });
  container._keyed = next;
  return next;
}

/** Update every relative time under `root` (elements with data-ts = unix seconds). */
export function tickTimes(root = document) {
  for (const e of root.querySelectorAll('[data-ts]')) setText(e, ago(Number(e.getAttribute('data-ts'))));
}

function timeEl(unix) {
  return h('time', { 'data-ts': unix, datetime: unix ? new Date(unix * 1000).toISOString() : null, title: fullTime(unix) }, ago(unix));
}

function youTag(addr, ctx) {
  return addr && ctx.address && addr === ctx.address ? h('span', { class: 'tag tag-you' }, 'you') : null;
}

// ---- blocks ---------------------------------------------------------------------------------

export function renderBlocks(blocks, ctx, onOpen) {
  const body = $('blocks');
  const first = !body._keyed;
  const entries = renderKeyed(
    body,
    blocks,
    (b) => b.hash,
    (b) => `${b.hash}|${b.miner === ctx.address}|${ctx.unit}`,
    (b) => {
      const tr = h(
        'tr',
        {
          'data-testid': 'block-row',
          dataset: { hash: b.hash, height: b.height },
          tabindex: 0,
          'aria-label': `Block ${b.height}`,
          onclick: () => onOpen(b.hash),
          onkeydown: (e) => {
            if (e.key === 'Enter' || e.key === ' ') {
              e.preventDefault();
              onOpen(b.hash);
            }
          },
        },
        h('td', { class: 'num mono' }, fmtInt(b.height)),
        h('td', { class: 'mono hash', title: b.hash }, short(b.hash, 10, 6)),
        h('td', {}, timeEl(b.time)),
        h('td', { class: 'num hide-xs' }, fmtInt(b.txCount)),
        h('td', { class: 'num hide-sm' }, fmtBytes(b.size)),
        h('td', { class: 'hide-sm', title: b.miner || '' }, h('span', { class: 'mono' }, b.miner ? shortAddr(b.miner) : '—'), ' ', youTag(b.miner, ctx)),
        h('td', { class: 'num' }, fmtCoins(b.reward, ctx.unit)),
      );
      return tr;
    },
  );
  if (!first && ctx.synced) {
    for (const e of entries.values()) {
      if (!e.fresh) continue;
      e.el.classList.add('row-new');
      e.el.addEventListener('animationend', () => e.el.classList.remove('row-new'), { once: true });
    }
  }
  $('blocks-empty').hidden = blocks.length > 0;
}

/** The block detail dialog's content. */
export function renderBlockDetail(b, ctx, { onOpen }) {
  $('block-title').textContent = b.height === null || b.height === undefined ? 'Block' : `Block ${fmtInt(b.height)}`;
  const body = $('block-body');
  const conf = Number(b.confirmations);
  const kv = h(
    'dl',
    { class: 'kv' },
    h('dt', {}, 'Hash'),
    h('dd', {}, h('code', {}, b.hash)),
    h('dt', {}, 'Previous'),
    h('dd', {}, b.prev && !/^0+$/.test(b.prev) ? h('button', { type: 'button', class: 'linkish mono', onclick: () => onOpen(b.prev) }, b.prev) : h('span', { class: 'muted' }, 'none (genesis)')),
    h('dt', {}, 'Time'),
    h('dd', {}, `${fullTime(b.time)} (`, timeEl(b.time), ')'),
    h('dt', {}, 'Confirmations'),
    h('dd', {}, conf > 0 ? fmtInt(conf) : h('span', { class: 'tag tag-bad' }, 'not in the active chain')),
    h('dt', {}, 'Size'),
    h('dd', {}, `${fmtBytes(b.size)} · ${fmtInt(b.txs?.length ?? 0)} transactions`),
    h('dt', {}, 'Bits / nonce'),
    h('dd', { class: 'mono' }, `${b.bits ?? '—'} / ${b.nonce ?? '—'}`),
  );
  const txs = (b.txs || []).map((tx) => renderTx(tx, ctx));
  setChildren(body, kv, h('h3', {}, 'Transactions'), txs);
}

export function renderTx(tx, ctx) {
  const head = h(
    'div',
    { class: 'tx-head' },
    tx.coinbase ? h('span', { class: 'tag tag-ok' }, 'coinbase') : null,
    tx.post ? h('span', { class: 'tag tag-you' }, 'post') : null,
    h('code', { title: tx.txid }, tx.txid),
    h('span', { class: 'spacer' }),
    tx.fee !== null && tx.fee !== undefined ? h('span', { class: 'muted' }, `fee ${fmtCoins(tx.fee, ctx.unit)}`) : null,
  );
  const inputs = tx.coinbase
    ? h('ul', {}, h('li', { class: 'muted' }, 'new coins (block reward and fees)'))
    : h('ul', {}, (tx.inputs || []).map((i) => h('li', {}, h('code', { title: `${i.txid}:${i.vout}` }, `${short(i.txid, 10, 6)}:${i.vout}`))));
  const outputs = h(
    'ul',
    {},
    (tx.outputs || []).map((o) =>
      h('li', {}, h('span', { class: 'out-addr', title: o.address }, h('code', {}, shortAddr(o.address)), ' ', youTag(o.address, ctx)), h('span', { class: 'amt' }, fmtCoins(o.amount, ctx.unit))),
    ),
  );
  return h(
    'article',
    { class: 'tx', dataset: { txid: tx.txid } },
    head,
    h('div', { class: 'tx-body' }, h('div', { class: 'tx-col' }, h('h4', {}, 'Inputs'), inputs), h('div', { class: 'tx-col' }, h('h4', {}, 'Outputs'), outputs)),
    tx.post
      ? h(
          'div',
          { class: 'tx-post' },
          h('div', { class: 'feed-meta' }, h('span', { class: 'feed-author', title: tx.post.author }, shortAddr(tx.post.author)), youTag(tx.post.author, ctx)),
          h('p', { class: 'feed-text', dir: 'auto' }, tx.post.text),
        )
      : null,
  );
}

/** A transaction found by txid (`node.tx`) in the explorer dialog. */
export function renderTxDetail(t, ctx, { onOpenHeight }) {
  $('block-title').textContent = 'Transaction';
  const where =
    t.status === 'mempool'
      ? h('span', { class: 'tag tag-pending' }, 'in the mempool, waiting for a block')
      : h('span', {}, h('button', { type: 'button', class: 'linkish mono', onclick: () => onOpenHeight(t.height) }, `block #${fmtInt(t.height)}`), ` · ${fmtInt(t.confirmations)} confirmations`);
  const kv = h('dl', { class: 'kv' }, h('dt', {}, 'Txid'), h('dd', {}, h('code', {}, t.txid)), h('dt', {}, 'Status'), h('dd', { 'data-testid': 'tx-status', dataset: { status: t.status } }, where));
  setChildren($('block-body'), kv, renderTx(t, ctx));
}

/** What the active chain paid to and spent from an address (`node.address`). */
export function renderAddressDetail(a, ctx, { onOpenHeight }) {
  $('block-title').textContent = 'Address';
  const kv = h(
    'dl',
    { class: 'kv' },
    h('dt', {}, 'Address'),
    h('dd', {}, h('code', {}, a.address), ' ', youTag(a.address, ctx)),
    h('dt', {}, 'Searched'),
    h('dd', {}, `the latest ${fmtInt(a.blocksSearched)} blocks of the active chain`),
  );
  const rows = a.txs.map((t) =>
    h(
      'tr',
      { 'data-testid': 'address-tx', dataset: { txid: t.txid, height: String(t.height) } },
      h('td', { class: 'num mono' }, h('button', { type: 'button', class: 'linkish mono', onclick: () => onOpenHeight(t.height) }, `#${fmtInt(t.height)}`)),
      h('td', { class: 'mono', title: t.txid }, short(t.txid, 10, 6)),
      h('td', { class: 'num' }, t.received !== '0' ? `+${fmtCoins(t.received, ctx.unit)}` : ''),
      h('td', { class: 'num' }, t.spent !== '0' ? `−${fmtCoins(t.spent, ctx.unit)}` : ''),
    ),
  );
  const table = a.txs.length
    ? h('table', { class: 'table' }, h('thead', {}, h('tr', {}, h('th', {}, 'Block'), h('th', {}, 'Txid'), h('th', {}, 'Received'), h('th', {}, 'Spent'))), h('tbody', {}, rows))
    : h('p', { class: 'empty' }, 'No transaction of the active chain pays or spends this address.');
  setChildren($('block-body'), kv, h('h3', {}, 'Transactions'), table);
}

// ---- mempool --------------------------------------------------------------------------------

export function renderMempool(entries, ctx) {
  const sorted = [...entries].sort((a, b) => (b.feeRate ?? 0) - (a.feeRate ?? 0)).slice(0, 100);
  renderKeyed(
    $('mempool'),
    sorted,
    (t) => t.txid,
    (t) => `${t.txid}|${ctx.unit}`,
    (t) =>
      h(
        'tr',
        { dataset: { txid: t.txid } },
        h('td', { class: 'mono', title: t.txid }, short(t.txid, 10, 6)),
        h('td', {}, t.post ? h('span', { class: 'tag tag-you', title: t.post.text }, 'post') : h('span', { class: 'tag' }, 'payment')),
        h('td', { class: 'num' }, fmtBytes(t.size)),
        h('td', { class: 'num', title: t.fee ? `fee ${t.fee} ${ctx.unit}` : '' }, `${fmtInt(Math.round(Number(t.feeRate) || 0))}/kB`),
      ),
  );
  $('mempool-empty').hidden = entries.length > 0;
}

// ---- feed -----------------------------------------------------------------------------------

export function renderFeed(posts, ctx) {
  renderKeyed(
    $('feed'),
    posts,
    (p) => p.txid,
    (p) => `${p.txid}|${p.height ?? 'u'}|${p.author === ctx.address}`,
    (p) =>
      h(
        'li',
        { class: 'feed-item', 'data-testid': 'feed-item', dataset: { txid: p.txid } },
        h(
          'div',
          { class: 'feed-meta' },
          h('span', { class: 'feed-author', title: p.author }, shortAddr(p.author)),
          youTag(p.author, ctx),
          p.height === null || p.height === undefined ? h('span', { class: 'tag tag-pending', title: 'waiting for a block' }, 'pending') : h('span', { title: `in block ${p.height}` }, `#${fmtInt(p.height)}`),
          '·',
          p.time ? timeEl(p.time) : null,
        ),
        h('p', { class: 'feed-text', dir: 'auto' }, p.text),
      ),
  );
  $('feed-empty').hidden = posts.length > 0;
}

// ---- peers ----------------------------------------------------------------------------------

export function renderPeers(st) {
  const peers = st.peers || [];
  renderKeyed(
    $('peers'),
    peers,
    (p) => String(p.id),
    (p) => JSON.stringify(p),
    (p) =>
      h(
        'tr',
        {},
        h('td', { class: 'mono', title: String(p.id) }, short(String(p.id), 8, 4)),
        h('td', {}, h('span', { class: 'tag' }, p.kind || '?'), ' ', h('span', { class: 'muted small', title: p.outbound ? 'this node dialed it' : 'it dialed this node' }, p.outbound ? 'out' : 'in')),
        h('td', { class: 'mono url', title: p.url || '' }, p.url || '—'),
        h('td', { class: 'num mono' }, p.height === null || p.height === undefined ? '—' : fmtInt(p.height)),
      ),
  );
  $('peers-empty').hidden = peers.length > 0;
  const relays = st.knownRelays || [];
  // Relays this node is linked to now (it may have failed over from the one that served the page).
  const linked = new Set((st.peers || []).filter((p) => p.outbound && p.url).map((p) => p.url));
  renderKeyed(
    $('known-relays'),
    relays,
    (u) => u,
    (u) => `${u}|${linked.has(u)}`,
    (u) => h('li', {}, h('code', {}, u), linked.has(u) ? h('span', { class: 'tag tag-ok' }, 'connected') : null),
  );
  $('relays-empty').hidden = relays.length > 0;
  setText($('relay-meta'), linked.size ? `via ${[...linked].join(', ')}` : 'no relay connected');
}
