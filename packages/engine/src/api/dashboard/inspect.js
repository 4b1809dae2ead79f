// The inspect view of the dashboard: a finished inspect job's patterns (docs/contracts.md, "Attention patterns"):
// per-head statistics as a table, the map PNG (result/map), and the received-attention curve per head over key
// positions (result/received, an .npy read here), drawn as SVG. Everything comes from /v1; nothing is recomputed.
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const fmt = (x, digits) => (x === null || x === undefined ? '–' : x.toFixed(digits));

/** Float32 data and shape of an .npy file (versions 1–3, little-endian float32 as the API writes it). */
export function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  return { shape, data: new Float32Array(buffer.slice(start)) };
}

function headTable(report) {
  const head = [
    'b',
    'h',
    'rows',
    'entropy (nats)',
    'mean distance',
    `sink share (j < ${report.sinksStat})`,
    `local share (≤ ${report.localStat})`,
  ];
  const thead = document.createElement('thead');
  const tr = document.createElement('tr');
  for (const text of head) {
    const th = document.createElement('th');
    th.textContent = text;
    tr.append(th);
  }
  thead.append(tr);
  const tbody = document.createElement('tbody');
  for (const h of report.heads) {
    const row = document.createElement('tr');
    row.dataset.head = `${h.b},${h.h}`;
    for (const text of [h.b, h.h, h.rows, fmt(h.entropy, 3), fmt(h.meanDistance, 1), fmt(h.sinkShare, 3), fmt(h.localShare, 3)]) {
      const td = document.createElement('td');
      td.textContent = String(text);
      row.append(td);
    }
    tbody.append(row);
  }
  $('inspect-heads').replaceChildren(thead, tbody);
}

/**
 * The received curve: one polyline per head over key positions 0 … Sk−1, each point the mean of
 * Σ_i p_ij over its bin of keys (at most 600 bins), on a shared linear y axis.
 */
function receivedCurve(received, heads, Sk) {
  const width = 720;
  const height = 240;
  const pad = { left: 56, right: 12, top: 12, bottom: 36 };
  const bins = Math.min(600, Sk);
  const curves = [];
  let top = 0;
  for (let x = 0; x < heads; x++) {
    const curve = new Float64Array(bins);
    const count = new Float64Array(bins);
    for (let j = 0; j < Sk; j++) {
      const bin = Math.floor((j * bins) / Sk);
      curve[bin] += received[x * Sk + j];
      count[bin] += 1;
    }
    for (let b = 0; b < bins; b++) curve[b] /= count[b];
    for (const v of curve) top = Math.max(top, v);
    curves.push(curve);
  }
  const svg = $('inspect-received');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const el = (name, attrs, text) => {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const px = (b) => pad.left + (bins === 1 ? 0 : (b / (bins - 1)) * (width - pad.left - pad.right));
  const py = (v) => height - pad.bottom - (top > 0 ? (v / top) * (height - pad.top - pad.bottom) : 0);
  const parts = [
    el('line', { x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom, stroke: '#444' }),
    el('line', { x1: pad.left, y1: pad.top, x2: pad.left, y2: height - pad.bottom, stroke: '#444' }),
    el('text', { x: pad.left - 4, y: pad.top + 8, 'text-anchor': 'end', 'font-size': 10 }, fmt(top, 2)),
    el('text', { x: pad.left - 4, y: height - pad.bottom, 'text-anchor': 'end', 'font-size': 10 }, '0'),
    el('text', { x: pad.left, y: height - pad.bottom + 14, 'font-size': 10 }, '0'),
    el('text', { x: width - pad.right, y: height - pad.bottom + 14, 'text-anchor': 'end', 'font-size': 10 }, String(Sk - 1)),
    el('text', { x: (width + pad.left) / 2, y: height - 6, 'text-anchor': 'middle', 'font-size': 11 }, 'key position j'),
    el('text', { x: 12, y: height / 2, 'font-size': 11, transform: `rotate(-90 12 ${height / 2})`, 'text-anchor': 'middle' }, 'Σᵢ p_ij'),
  ];
  curves.forEach((curve, x) => {
    const points = Array.from(curve, (v, b) => `${px(b).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
    const colour = `hsl(${(x * 360) / Math.max(1, heads)} 70% 40%)`;
    parts.push(el('polyline', { points, fill: 'none', stroke: colour, 'stroke-width': 1.2, 'data-head': x }));
    parts.push(
      el('text', { x: width - pad.right - 4, y: pad.top + 10 + 12 * x, 'text-anchor': 'end', 'font-size': 10, fill: colour }, `head ${x}`),
    );
  });
  svg.replaceChildren(...parts);
}

/** Shows the view for a done inspect job (hides it for anything else). */
export async function showInspect(job, api) {
  const section = $('inspect');
  if (job.kind !== 'inspect' || job.state !== 'done') {
    section.hidden = true;
    return;
  }
  const base = `/v1/jobs/${encodeURIComponent(job.id)}/result`;
  const report = await (await api(`${base}/report`)).json();
  headTable(report);
  const map = await api(`${base}/map`);
  $('inspect-map').hidden = !map.ok;
  if (map.ok) $('inspect-map').src = URL.createObjectURL(await map.blob());
  const received = await api(`${base}/received`);
  $('inspect-received').hidden = !received.ok;
  if (received.ok) {
    const { data } = parseNpy(await received.arrayBuffer());
    receivedCurve(data, report.shape.B * report.shape.H, report.shape.Sk);
  }
  section.hidden = false;
}
