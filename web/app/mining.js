// The mining panel: the workers (ui/miner.js), their state, hashrate and chart.

import { $, errText, fmtHashrate, fmtInt, h, setText } from '../ui/dom.js';
import { Miner } from '../ui/miner.js';
import { HashrateChart } from '../ui/chart.js';
import { log, logMerged, plural, reportOnce, showError } from './log.js';
import { refreshSoon } from './refresh.js';
import { node, ui } from './state.js';

const cores = Math.max(1, navigator.hardwareConcurrency || 1);
let chart = null;
let miningError = null;

export const miner = new Miner({
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

export function renderMining() {
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

export function setupMining() {
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
