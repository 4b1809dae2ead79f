import type { TilePartial } from '@longattn/attention';
import { rowKeyRange, type Backend, type LseTileJob, type TileJob, type TileKernel } from '../tile.ts';

/**
 * Portable TypeScript tile kernel: simple and correct for any D, ragged edges and masks.
 * Per row: scores over the visible keys, row max, exp, sum, P·V, normalise — two passes over a
 * scores buffer (a tile's keys fit in it), all in float64 JS numbers, stored as float32.
 */
export function jsTile(job: TileJob): TilePartial {
  return jsRows(job, job.v);
}

/** The V-free tile (TileKernel.lse): the same rows as jsTile without P·V, so the same lse bits. */
export function jsTileLse(job: LseTileJob): Float32Array {
  return jsRows(job, undefined).lse;
}

/** jsTile's rows; without `v` only lse is computed (o stays [rows·D] zeros, D = 0 then). */
function jsRows(job: LseTileJob, v: Float32Array | undefined): TilePartial {
  const { rows, keys, scale, q, k, visible } = job;
  const D = job.D;
  const o = new Float32Array(v ? rows * D : 0);
  const lse = new Float32Array(rows);
  const scores = new Float64Array(keys);
  const acc = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const [lo, hi] = rowKeyRange(job, r);
    const seen = visible?.subarray(r * keys, (r + 1) * keys); // a sparse pattern's mask: skip keys it hides
    if (hi < lo || (seen && !seen.includes(1))) {
      lse[r] = -Infinity; // the row sees no key of this tile: o stays 0
      continue;
    }
    const qBase = r * D;
    let m = -Infinity;
    for (let c = lo; c <= hi; c++) {
      if (seen && !seen[c]) continue;
      const kBase = c * D;
      let s = 0;
      for (let d = 0; d < D; d++) s += q[qBase + d] * k[kBase + d];
      s *= scale;
      scores[c] = s;
      if (s > m) m = s;
    }
    // Every visible score −∞: max at the lowest finite value, so p = 0 (not exp(−∞ + ∞) = NaN) and
    // the tile reads as masked for this row (docs/nonfinite.md). A NaN score stays NaN through exp.
    if (m === -Infinity) m = -Number.MAX_VALUE;
    let z = 0;
    acc.fill(0);
    for (let c = lo; c <= hi; c++) {
      if (seen && !seen[c]) continue;
      const p = Math.exp(scores[c] - m);
      z += p;
      if (!v) continue;
      const vBase = c * D;
      for (let d = 0; d < D; d++) acc[d] += p * v[vBase + d];
    }
    lse[r] = m + Math.log(z);
    if (!v) continue;
    const inv = z === 0 ? 1 : 1 / z; // Σp = 0: o = Σ 0·v (0, or NaN from a ±∞ value), lse −∞
    for (let d = 0; d < D; d++) o[qBase + d] = acc[d] * inv;
  }
  return { rows, D: v ? D : 0, kStart: job.kStart, o, lse };
}

export const jsBackend: Backend = {
  name: 'js',
  summary: 'portable TypeScript (reference speed; any head dim)',
  defaultBlocks: { blockQ: 128, blockK: 1024 },
  async probe() {
    return null;
  },
  async describe() {
    return 'cpu (portable JS)';
  },
  async create(): Promise<TileKernel> {
    return { backend: 'js', device: 'cpu (portable JS)', run: jsTile, lse: jsTileLse };
  },
};
