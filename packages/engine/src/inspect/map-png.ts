import type { AttentionSpec } from '@longattn/attention';

/**
 * The attention map (docs/contracts.md): one panel per head, each a mapRows × mapCols raster of the
 * mean p per (query, key) cell (`means`, [B·H·mapRows·mapCols], from mapMeans), on a log colour
 * scale from the smallest positive mean (dark) to the largest (bright); a cell whose mean is 0
 * (fully masked, or every p underflowed) is white. Panels sit in a grid, each titled `b,h` with
 * axes labelled in token positions. The raster is encoded by pngjs, embedded in an SVG for the
 * labels, and rasterised by resvg. Returns PNG bytes.
 */
export async function renderMap(spec: AttentionSpec, mapRows: number, mapCols: number, means: Float64Array): Promise<Buffer> {
  const { PNG } = await import('pngjs');
  const heads = spec.B * spec.H;
  const columns = Math.ceil(Math.sqrt(heads));
  const gridRows = Math.ceil(heads / columns);
  const margin = { left: 64, top: 40, right: 24, bottom: 40 };
  // Small grids are drawn enlarged (cells as blocks) so that the labels fit.
  const width = Math.max(mapCols, 240);
  const height = Math.max(mapRows, 240);
  const panelW = width + margin.left + margin.right;
  const panelH = height + margin.top + margin.bottom;
  const parts: string[] = [];
  for (let head = 0; head < heads; head++) {
    const cells = means.subarray(head * mapRows * mapCols, (head + 1) * mapRows * mapCols);
    let lo = Infinity;
    let hi = 0;
    for (const m of cells) {
      if (m > 0 && m < lo) lo = m;
      if (m > hi) hi = m;
    }
    const span = hi > lo ? Math.log(hi / lo) : 1;
    const png = new PNG({ width: mapCols, height: mapRows });
    for (let c = 0; c < cells.length; c++) {
      const m = cells[c]!;
      if (m > 0) paint(png.data, c * 4, hi > lo ? Math.log(m / lo) / span : 1);
      else png.data.fill(255, c * 4, c * 4 + 3);
      png.data[c * 4 + 3] = 255;
    }
    const uri = `data:image/png;base64,${PNG.sync.write(png).toString('base64')}`;
    const x = (head % columns) * panelW + margin.left;
    const y = Math.floor(head / columns) * panelH + margin.top;
    const b = Math.floor(head / spec.H);
    const h = head % spec.H;
    const range = lo === Infinity ? '–' : `${Math.log10(lo).toFixed(1)} … ${Math.log10(hi).toFixed(1)}`;
    parts.push(
      `<text x="${x}" y="${y - 22}" font-size="13">b=${b} h=${h}</text>`,
      `<text x="${x}" y="${y - 7}" font-size="10">log₁₀ mean p ${range}</text>`,
      `<image x="${x}" y="${y}" width="${width}" height="${height}" preserveAspectRatio="none"`,
      ` image-rendering="optimizeSpeed" href="${uri}"/>`,
      `<rect x="${x}" y="${y}" width="${width}" height="${height}" fill="none" stroke="#444"/>`,
      ...axisLabels(x, y, height, width, spec),
    );
  }
  const size = `width="${columns * panelW}" height="${gridRows * panelH}"`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" ${size} font-family="DejaVu Sans">${parts.join('')}</svg>`;
  const { Resvg } = await import('@resvg/resvg-js');
  const resvg = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, background: 'white' });
  return resvg.render().asPng();
}

/** Tick labels in token positions: query rows down the left edge, keys along the bottom. */
function axisLabels(x: number, y: number, height: number, width: number, spec: AttentionSpec): string[] {
  const out: string[] = [];
  for (const t of [0, 0.5, 1]) {
    const row = Math.round(t * spec.Sq);
    const key = Math.round(t * spec.Sk);
    out.push(
      `<text x="${x - 4}" y="${y + t * height + 4}" font-size="10" text-anchor="end">${row}</text>`,
      `<text x="${x + t * width}" y="${y + height + 13}" font-size="10" text-anchor="middle">${key}</text>`,
    );
  }
  out.push(
    `<text x="${x + width / 2}" y="${y + height + 30}" font-size="11" text-anchor="middle">key position j</text>`,
    `<text x="${x - 48}" y="${y + height / 2}" font-size="11" text-anchor="middle"`,
    ` transform="rotate(-90 ${x - 48} ${y + height / 2})">query i</text>`,
  );
  return out;
}

/** The ramp's stops, dark to bright (black → purple → orange → yellow), RGB. */
const STOPS = [0, 0, 4, 120, 28, 109, 237, 105, 37, 252, 255, 164];

/** Writes the ramp's colour for t in [0, 1] as RGB at data[at …] (no allocation: a map has up to 16M cells). */
function paint(data: Uint8Array, at: number, t: number): void {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length / 3 - 1);
  const i = Math.min(STOPS.length / 3 - 2, Math.floor(x));
  const f = x - i;
  for (let c = 0; c < 3; c++) {
    const a = STOPS[i * 3 + c]!;
    data[at + c] = Math.round(a + (STOPS[i * 3 + 3 + c]! - a) * f);
  }
}
