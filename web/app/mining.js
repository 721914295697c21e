// @ts-check
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
let wasPaused = false;

export const miner = new Miner({
  onFound(header, t) {
    // Marked before submitting: the node's tip event for our block comes from inside submitHeader.
    ui.foundHeights.add(t.height);
    if (ui.foundHeights.size > 64) ui.foundHeights.delete(ui.foundHeights.values().next().value);
    let accepted = false;
    try {
      // false: the block was stale (another block won the height) or refused (a
      // block_rejected event says why).
      accepted = node.submitHeader(header);
    } catch (err) {
      log('error', `The node refused our block: ${errText(err)}`);
    }
    if (!accepted) {
      ui.foundHeights.delete(t.height);
      log('warn', `Our block at height ${fmtInt(t.height)} did not become the tip (stale or refused); waiting for a new template`);
      return false;
    }
    logMerged('found', 'ok', (s) => {
      s.n = (s.n || 0) + 1;
      s.from ??= t.height;
      return s.n === 1 ? `Found a block at height ${fmtInt(t.height)} (${t.reward} ${ui.unit})` : `Found ${plural(s.n, 'block')}, heights ${fmtInt(s.from)} to ${fmtInt(t.height)}`;
    });
    refreshSoon();
    return true;
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

/**
 * Why mining waits, from the node's status: null while it can mine. Offline or unsynced the
 * workers stop (a block found then would only be an orphan to be).
 * @returns {{state: string, label: string, note: string} | null}
 */
function miningPause() {
  const st = ui.status;
  if (!st) return { state: 'waiting', label: 'Waiting for the node', note: 'The node is starting.' };
  if (!st.connected) return { state: 'paused', label: 'Paused: offline', note: 'Mining is paused: no relay is connected, so a block found now could not reach the network. It resumes once the node is connected and synced.' };
  const wait = st.miningWait;
  if (!st.synced || wait?.reason === 'not_synced') return { state: 'paused', label: 'Paused: syncing', note: 'Mining is paused until this tab has the whole chain: mining begins automatically once it is synced.' };
  // (The status is read every few seconds: a template that came since is what counts.)
  if (wait?.reason === 'clock' && !miner.template && wait.notBefore * 1000 > Date.now()) {
    const at = new Date(wait.notBefore * 1000).toLocaleTimeString([], { hour12: false });
    return { state: 'waiting', label: 'Waiting for the clock', note: `The chain's recent block times have caught up with this computer's clock; the next block may not be stamped before ${at} (it must be later than the median time of the last 11 blocks). Mining resumes then.` };
  }
  return null;
}

export function renderMining() {
  const btn = $('mining-toggle');
  btn.disabled = !node;
  btn.dataset.running = String(miner.running);
  setText(btn, miner.running ? 'Stop mining' : 'Start mining');
  const pill = $('mining-state');
  let state = 'idle';
  let label = 'Idle';
  let tmpl = '—';
  let note = 'Mining runs in Web Workers of this tab. Mined coins are paid to your wallet address and mature after a number of blocks.';
  if (miner.running) {
    const pause = miningPause();
    // Never mine a template the node may no longer stand behind; on resuming, ask the node
    // for a fresh one (it makes templates on changes of its tip or pool, not of its links).
    if (pause && pause.state === 'paused') {
      miner.clearTemplate();
      wasPaused = true;
    } else if (wasPaused && !pause) {
      wasPaused = false;
      if (!miner.template) node?.setMining(true);
    }
    if (miningError && miner.workerErrors > 0 && miner.readyCount === 0) [state, label] = ['error', 'Workers failed'];
    else if (pause) ({ state, label, note } = pause);
    else if (!miner.template) [state, label, note] = ['waiting', 'Waiting for a template', miner.solvedTemplate ? 'The last block found was handed to the node; mining goes on with the next template it makes.' : note];
    else if (miner.readyCount < miner.workerCount) [state, label] = ['waiting', 'Starting workers'];
    else [state, label] = ['mining', `Mining · ${miner.workerCount} worker${miner.workerCount === 1 ? '' : 's'}`];
    if (miner.template) tmpl = `#${fmtInt(miner.template.height)}`;
  }
  pill.dataset.state = state;
  setText(pill, label);
  setText($('mining-template'), tmpl);
  $('mining-template').title = miner.running && miner.template ? `Block ${miner.template.height}, reward ${miner.template.reward} ${ui.unit}` : '';
  setText($('mining-found'), String(miner.found));
  setText($('mining-note'), note);
  // With the pill, not on the hashrate's own timer: stopped mining reads 0 at once, never the
  // last rate beside "Idle".
  renderHashrate();
}

function renderHashrate() {
  const hps = miner.hashrate();
  const e = $('mining-hashrate');
  e.dataset.hps = String(Math.round(hps));
  setText(e, fmtHashrate(hps));
  const net = ui.status?.hashrate;
  e.title = net && hps > 0 ? `about ${Math.min(100, (hps / net) * 100).toFixed(1)}% of the network estimate` : '';
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
