import type { BenchRow } from './rows.ts';

/**
 * The bench's plot as an SVG document: per head count one row of two log–log panels, GFLOP/s
 * against n and time (ms, compute phase) against n; one line per backend or peer and mask
 * (colour: who; solid: dense; dashed: causal). `renderPng` rasterises it with resvg.
 */
const PANEL = { w: 520, h: 300, left: 64, right: 16, top: 34, bottom: 42 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const FONT = 'font-family="DejaVu Sans, Arial, sans-serif"';

interface Series {
  who: string;
  causal: boolean;
  points: { n: number; y: number }[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** [lo, hi] in log10 around the values, whole decades (or a factor-2 pad when they span less). */
function logDomain(values: number[]): [number, number] {
  const lo = Math.log10(Math.min(...values));
  const hi = Math.log10(Math.max(...values));
  return hi - lo < 0.6 ? [lo - 0.3, hi + 0.3] : [Math.floor(lo), Math.ceil(hi)];
}

/** Ticks of a log axis: 1, 2, 5 per decade when it spans few decades, else decades only. */
function logTicks([lo, hi]: [number, number]): number[] {
  const ticks: number[] = [];
  const steps = hi - lo > 3 ? [1] : [1, 2, 5];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of steps) {
      const t = m * 10 ** e;
      if (Math.log10(t) >= lo - 1e-9 && Math.log10(t) <= hi + 1e-9) ticks.push(t);
    }
  }
  return ticks;
}

const tickLabel = (t: number): string => (t >= 1e4 ? `${t / 1e3}k` : t >= 1 ? String(t) : t.toPrecision(1));

/** Sizes as people say them: 16384 → 16K, 1000 → 1000. */
const sizeLabel = (n: number): string => (n >= 1024 && n % 1024 === 0 ? `${n / 1024}K` : String(n));

function panel(x0: number, y0: number, title: string, series: Series[], colour: (who: string) => string, ns: number[]): string {
  const plotW = PANEL.w - PANEL.left - PANEL.right;
  const plotH = PANEL.h - PANEL.top - PANEL.bottom;
  const xd = logDomain(ns);
  const yd = logDomain(series.flatMap((s) => s.points.map((p) => p.y)));
  const x = (n: number) => x0 + PANEL.left + ((Math.log10(n) - xd[0]) / (xd[1] - xd[0])) * plotW;
  const y = (v: number) => y0 + PANEL.top + plotH - ((Math.log10(v) - yd[0]) / (yd[1] - yd[0])) * plotH;
  const out = [
    `<rect x="${x0 + PANEL.left}" y="${y0 + PANEL.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`,
    `<text x="${x0 + PANEL.w / 2}" y="${y0 + 20}" text-anchor="middle" font-size="14" ${FONT}>${esc(title)}</text>`,
    `<text x="${x0 + PANEL.left + plotW / 2}" y="${y0 + PANEL.h - 6}" text-anchor="middle" font-size="12" ${FONT}>n (tokens)</text>`,
  ];
  for (const n of [...new Set(ns)]) {
    out.push(`<line x1="${x(n)}" x2="${x(n)}" y1="${y0 + PANEL.top}" y2="${y0 + PANEL.top + plotH}" stroke="#ddd"/>`);
    out.push(`<text x="${x(n)}" y="${y0 + PANEL.top + plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${sizeLabel(n)}</text>`);
  }
  for (const t of logTicks(yd)) {
    out.push(`<line x1="${x0 + PANEL.left}" x2="${x0 + PANEL.left + plotW}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 + PANEL.left - 6}" y="${y(t) + 4}" text-anchor="end" font-size="11" ${FONT}>${tickLabel(t)}</text>`);
  }
  for (const s of series) {
    const points = s.points.map((p) => `${x(p.n).toFixed(1)},${y(p.y).toFixed(1)}`);
    const dash = s.causal ? ' stroke-dasharray="6 4"' : '';
    out.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${colour(s.who)}" stroke-width="2"${dash}/>`);
    for (const p of points) out.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${colour(s.who)}"/>`);
  }
  return out.join('\n');
}

/** Measured rows grouped into lines: one per (who, mask), points sorted by n. */
function seriesOf(rows: BenchRow[], value: (r: BenchRow) => number): Series[] {
  const byKey = new Map<string, Series>();
  for (const r of rows) {
    const key = `${r.who}|${r.causal}`;
    if (!byKey.has(key)) byKey.set(key, { who: r.who, causal: r.causal, points: [] });
    byKey.get(key)!.points.push({ n: r.n, y: value(r) });
  }
  for (const s of byKey.values()) s.points.sort((a, b) => a.n - b.n);
  return [...byKey.values()];
}

/** The SVG for a run's rows (skipped rows are left out); a note instead when nothing was measured. */
export function plotSvg(rows: BenchRow[], title: string): string {
  const measured = rows.filter((r) => !r.skipped && r.ms! > 0 && r.gflops! > 0);
  const whos = [...new Set(measured.map((r) => r.who))];
  const colour = (who: string) => COLOURS[whos.indexOf(who) % COLOURS.length]!;
  const heads = [...new Set(measured.map((r) => r.H))].sort((a, b) => a - b);
  const width = 2 * PANEL.w;
  const legendH = 24 + 20 * Math.ceil((whos.length + 2) / 3);
  const height = 40 + heads.length * PANEL.h + legendH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="26" text-anchor="middle" font-size="16" ${FONT}>${esc(title)}</text>`,
  ];
  heads.forEach((H, i) => {
    const at = measured.filter((r) => r.H === H);
    const ns = at.map((r) => r.n);
    const y0 = 40 + i * PANEL.h;
    parts.push(
      panel(
        0,
        y0,
        `GFLOP/s (unmasked work), H = ${H}`,
        seriesOf(at, (r) => r.gflops!),
        colour,
        ns,
      ),
    );
    parts.push(
      panel(
        PANEL.w,
        y0,
        `time (ms, compute phase), H = ${H}`,
        seriesOf(at, (r) => r.ms!),
        colour,
        ns,
      ),
    );
  });
  const legend = [...whos.map((who) => ({ label: who, colour: colour(who), dash: '' }))];
  legend.push({ label: 'dense', colour: '#444', dash: '' }, { label: 'causal', colour: '#444', dash: ' stroke-dasharray="6 4"' });
  legend.forEach((item, i) => {
    const lx = 24 + (i % 3) * (width / 3);
    const ly = 40 + heads.length * PANEL.h + 20 + Math.floor(i / 3) * 20;
    parts.push(`<line x1="${lx}" x2="${lx + 30}" y1="${ly - 4}" y2="${ly - 4}" stroke="${item.colour}" stroke-width="2"${item.dash}/>`);
    parts.push(`<text x="${lx + 38}" y="${ly}" font-size="12" ${FONT}>${esc(item.label)}</text>`);
  });
  if (heads.length === 0) parts.push(`<text x="24" y="80" font-size="14" ${FONT}>no row was measured</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** PNG bytes of an SVG, rasterised by resvg (loaded only here: `longattn run` never loads the addon). */
export async function renderPng(svg: string): Promise<Buffer> {
  const { Resvg } = await import('@resvg/resvg-js');
  const resvg = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, background: 'white' });
  return resvg.render().asPng();
}
