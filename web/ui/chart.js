// @ts-check
// Hashrate over time. uPlot (vendored into /vendor/uplot by scripts/build-web.sh) when it is
// there; otherwise a small canvas line chart drawn here, so the page works either way.

import { fmtHashrate, h } from './dom.js';

const MAX_POINTS = 300; // 10 minutes at one sample every 2 s
const HEIGHT = 180;

/** Is `url` served as JavaScript/CSS (and not the relay's index.html fallback)? */
async function served(url, type) {
  try {
    const r = await fetch(url, { method: 'HEAD', cache: 'no-cache' });
    return r.ok && (r.headers.get('content-type') || '').includes(type);
  } catch {
    return false;
  }
}

async function loadUPlot() {
  const base = new URL('../vendor/uplot/', import.meta.url);
  const js = new URL('uPlot.esm.js', base).href;
  const css = new URL('uPlot.min.css', base).href;
  if (!(await served(js, 'javascript'))) return null;
  try {
    const mod = await import(js);
    if (await served(css, 'css')) {
      await new Promise((resolve) => {
        const link = h('link', { rel: 'stylesheet', href: css });
        link.onload = link.onerror = resolve;
        document.head.append(link);
      });
    }
    return mod.default;
  } catch (e) {
    console.warn('uPlot could not be loaded; using the built-in chart', e);
    return null;
  }
}

/** The smallest of 1, 2, 2.5, 4, 5, 8 × 10^n at or above `v` (four even grid steps). */
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 4, 5, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function clock(unixSecs) {
  return new Date(unixSecs * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export class HashrateChart {
  constructor(container) {
    this.container = container;
    this.xs = [];
    this.ys = [];
    this.impl = null;
    this.placeholder = h('div', { class: 'chart-empty' }, "Start mining to chart this tab's hashrate");
    container.append(this.placeholder);
    this.ready = this.init();
  }

  async init() {
    const UPlot = await loadUPlot();
    const width = Math.max(200, this.container.clientWidth || 300);
    if (UPlot) {
      const stroke = cssVar('--accent', '#3b6cf6');
      const axis = { stroke: cssVar('--muted', '#6b7280'), grid: { stroke: cssVar('--grid', 'rgba(0,0,0,.07)'), width: 1 }, ticks: { show: false }, font: '11px system-ui, sans-serif' };
      const opts = {
        width,
        height: HEIGHT,
        padding: [8, 8, 0, 0],
        cursor: { drag: { x: false, y: false }, points: { size: 6 } },
        legend: { show: false },
        // At least a minute of x axis, so a fresh chart does not tick in fractions of seconds.
        scales: { x: { time: true, range: (u, min, max) => (max === null || max === undefined ? [Date.now() / 1000 - 60, Date.now() / 1000] : [Math.min(min ?? max - 60, max - 60), max]) }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1000] } },
        series: [
          {},
          { label: 'Hashrate', stroke, width: 2, fill: stroke + '22', points: { show: false }, value: (u, v) => (v === null ? '—' : fmtHashrate(v)) },
        ],
        axes: [
          { ...axis, space: 70, incrs: [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600], values: (u, splits) => splits.map((v) => clock(v)) },
          { ...axis, size: 70, values: (u, splits) => splits.map((v) => fmtHashrate(v)) },
        ],
      };
      this.container.classList.add('chart-uplot');
      this.impl = new UPlot(opts, [this.xs, this.ys], this.container);
      this.kind = 'uplot';
    } else {
      this.canvas = h('canvas', { class: 'chart-canvas', role: 'img', 'aria-label': 'hashrate over time' });
      this.container.append(this.canvas);
      this.kind = 'canvas';
      this.draw();
    }
    new ResizeObserver(() => this.resize()).observe(this.container);
  }

  resize() {
    const width = Math.max(200, this.container.clientWidth);
    if (this.impl) {
      if (Math.abs(this.impl.width - width) > 1) this.impl.setSize({ width, height: HEIGHT });
    } else if (this.canvas) this.draw();
  }

  /** Add a sample (hashes per second now). */
  push(hps) {
    this.placeholder.hidden = true;
    this.xs.push(Date.now() / 1000);
    this.ys.push(hps);
    if (this.xs.length > MAX_POINTS) {
      this.xs.shift();
      this.ys.shift();
    }
    if (this.impl) this.impl.setData([this.xs, this.ys]);
    else if (this.canvas) this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, this.container.clientWidth || 300);
    const hgt = HEIGHT;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(hgt * dpr);
      c.style.width = `${w}px`;
      c.style.height = `${hgt}px`;
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const left = 70;
    const bottom = 20;
    const top = 12;
    const plotW = w - left - 8;
    const plotH = hgt - top - bottom;
    const max = niceCeil(Math.max(...this.ys, 0) * 1.1 || 1000);
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = cssVar('--muted', '#6b7280');
    g.strokeStyle = cssVar('--grid', 'rgba(0,0,0,.07)');
    g.lineWidth = 1;
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (plotH * i) / 4;
      g.beginPath();
      g.moveTo(left, Math.round(y) + 0.5);
      g.lineTo(left + plotW, Math.round(y) + 0.5);
      g.stroke();
      g.textAlign = 'right';
      g.fillText(fmtHashrate((max * i) / 4), left - 6, y);
    }
    if (this.xs.length === 0) {
      g.textAlign = 'center';
      g.fillText('no samples yet', left + plotW / 2, top + plotH / 2);
      return;
    }
    const x0 = this.xs[0];
    const x1 = Math.max(x0 + 1, this.xs[this.xs.length - 1]);
    const px = (x) => left + ((x - x0) / (x1 - x0)) * plotW;
    const py = (y) => top + plotH - (y / max) * plotH;
    g.textAlign = 'left';
    g.textBaseline = 'alphabetic';
    g.fillText(clock(x0), left, hgt - 4);
    g.textAlign = 'right';
    g.fillText(clock(x1), left + plotW, hgt - 4);
    const accent = cssVar('--accent', '#3b6cf6');
    g.beginPath();
    this.xs.forEach((x, i) => (i ? g.lineTo(px(x), py(this.ys[i])) : g.moveTo(px(x), py(this.ys[i]))));
    g.strokeStyle = accent;
    g.lineWidth = 2;
    g.stroke();
    g.lineTo(px(this.xs[this.xs.length - 1]), top + plotH);
    g.lineTo(px(x0), top + plotH);
    g.closePath();
    g.globalAlpha = 0.13;
    g.fillStyle = accent;
    g.fill();
    g.globalAlpha = 1;
  }
}
