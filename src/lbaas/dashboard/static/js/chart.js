// A small live line chart in SVG: up to the last few minutes of one or more series.

import { h, s, replace } from './dom.js';

const W = 600;
const H = 150;
const PAD = { left: 56, right: 8, top: 10, bottom: 22 };

function nice(max) {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= max);
}

export function formatBytes(v) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v >= 10 || Number.isInteger(v) ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function formatCount(v) {
  return v >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(2);
}

export class Chart {
  constructor({ id, title, series, format = formatCount, span = 300 }) {
    this.series = series;
    this.format = format;
    this.span = span * 1000;
    this.points = [];
    this.svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-values`, preserveAspectRatio: 'none' });
    this.values = h('p', { class: 'chart-values', id: `${id}-values` });
    this.element = h('figure', { class: 'chart', id },
      h('figcaption', { id: `${id}-title` }, title), this.values, this.svg);
    this.draw();
  }

  push(t, values) {
    this.points.push({ t, values });
    const cut = t - this.span;
    while (this.points.length > 2 && this.points[0].t < cut) this.points.shift();
    this.draw();
  }

  draw() {
    const now = this.points.length ? this.points[this.points.length - 1].t : Date.now();
    // the window grows with the samples (at least a minute) up to the full span
    const first = this.points.length ? this.points[0].t : now;
    const start = Math.min(Math.max(now - this.span, first), now - 60000);
    const width = now - start;
    const max = nice(Math.max(0, ...this.points.flatMap((p) => this.series.map((sr) => p.values[sr.key] || 0))));
    const x = (t) => PAD.left + ((t - start) / width) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
    const grid = [0, 0.5, 1].map((f) => [
      s('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(max * f), y2: y(max * f) }),
      s('text', { class: 'axis', x: PAD.left - 6, y: y(max * f) + 4, 'text-anchor': 'end' }, this.format(max * f)),
    ]);
    const lines = this.series.map((sr) => s('polyline', {
      class: `line ${sr.cls}`,
      points: this.points.map((p) => `${x(p.t).toFixed(1)},${y(p.values[sr.key] || 0).toFixed(1)}`).join(' '),
    }));
    const ago = width >= 120000 ? `−${Math.round(width / 60000)} min` : `−${Math.round(width / 1000)} s`;
    replace(this.svg, grid, lines,
      s('text', { class: 'axis', x: PAD.left, y: H - 6 }, ago),
      s('text', { class: 'axis', x: W - PAD.right, y: H - 6, 'text-anchor': 'end' }, 'now'));
    const last = this.points.length ? this.points[this.points.length - 1].values : {};
    replace(this.values, this.series.map((sr) => h('span', { class: 'legend-item' },
      h('span', { class: `swatch ${sr.cls}`, 'aria-hidden': 'true' }), `${sr.label}: `,
      h('strong', { 'data-series': sr.key }, this.points.length ? this.format(last[sr.key] || 0) : '–'))));
  }
}
