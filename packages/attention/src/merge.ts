import type { TilePartial } from './partial.ts';

/**
 * Merges partials of the same query rows into one (docs/math.md):
 *   M = max_t lse_t (0 when every lse is -∞), w_t = exp(lse_t − M), Z = Σ w_t,
 *   lse = M + log Z, O = Σ (w_t / Z) · O_t;  Z = 0 → O = 0, lse = -∞.
 * Partials are taken in ascending kStart order whatever order they come in, and sums run in
 * float64, so the bits depend only on the set of partials. Never NaN for finite inputs; NaN and ±∞
 * partials (--allow-nonfinite) combine as IEEE arithmetic on this formula does (docs/nonfinite.md).
 * `into`: arrays (o [≥ rows·D], lse [≥ rows]) the result is written to instead of new ones, e.g. a
 * pool thread's packed reply (engine packed.ts), which then needs no copy.
 */
export function merge(partials: readonly TilePartial[], into?: Pick<TilePartial, 'o' | 'lse'>): TilePartial {
  if (partials.length === 0) throw new Error('merge: no partials');
  const first = partials[0];
  const { rows, D } = first;
  for (const p of partials) {
    if (p.rows !== rows || p.D !== D) throw new Error(`merge: partial [${p.rows},${p.D}] differs from [${rows},${D}]`);
  }
  const ordered = [...partials].sort((a, b) => a.kStart - b.kStart);
  const n = ordered.length;
  // Plain arrays of the typed arrays: the row loop then indexes them directly (reading
  // ordered[t].lse[r] through the objects was most of a pattern q-block's merge time).
  const lses = ordered.map((p) => p.lse);
  const outs = ordered.map((p) => p.o);
  // A row group's partial covers rows [from, to) (partial.ts, rowSpan); outside them it is o = 0,
  // lse = −∞, whose term is skipped: its weight is 0 and 0·0 added to acc (never −0: it starts at
  // +0) changes no bit, so skipping gives the bits of merging the widened partial.
  const froms = ordered.map((p) => (p.rowSpan ? p.rowSpan[0] : 0));
  const tos = ordered.map((p) => (p.rowSpan ? p.rowSpan[0] + p.rowSpan[1] : rows));
  const o = into ? into.o.subarray(0, rows * D) : new Float32Array(rows * D);
  const lse = into ? into.lse.subarray(0, rows) : new Float32Array(rows);
  // Partial by partial over its rows (each partial's arrays read once, in order) rather than row
  // by row over the partials: every row's sums still add their terms in partial order, so the
  // bits are the same (docs/math.md, "Cost follows the pattern").
  const { m, z, w, acc } = scratch(rows, D, n);
  m.fill(-Infinity, 0, rows);
  for (let t = 0; t < n; t++) {
    const l = lses[t]!;
    for (let r = froms[t]!, x = 0; r < tos[t]!; r++, x++) m[r] = Math.max(m[r]!, l[x]!);
  }
  for (let r = 0; r < rows; r++) if (m[r] === -Infinity) m[r] = 0; // every partial empty → weights 0, out 0, lse -Infinity
  z.fill(0, 0, rows);
  for (let t = 0; t < n; t++) {
    const l = lses[t]!;
    for (let r = froms[t]!, x = 0, at = t * rows + froms[t]!; r < tos[t]!; r++, x++, at++) {
      const e = Math.exp(l[x]! - m[r]!);
      w[at] = e;
      z[r] += e;
    }
  }
  for (let r = 0; r < rows; r++) {
    // Z = 0: every weight is 0 and O = Σ 0·O_t, which is 0 unless a partial carries NaN or ±∞ from
    // non-finite inputs; a zero weight is not skipped, so 0·∞ = NaN stays (docs/nonfinite.md).
    const zr = z[r]!;
    lse[r] = zr === 0 ? -Infinity : m[r]! + Math.log(zr);
    z[r] = zr === 0 ? 1 : zr;
  }
  acc.fill(0, 0, rows * D);
  for (let t = 0; t < n; t++) {
    const src = outs[t]!;
    for (let r = froms[t]!, at = 0, base = froms[t]! * D; r < tos[t]!; r++, at += D, base += D) {
      const wr = w[t * rows + r]! / z[r]!;
      for (let d = 0; d < D; d++) acc[base + d] += wr * src[at + d]!;
    }
  }
  for (let x = 0; x < rows * D; x++) o[x] = acc[x]!;
  return { rows, D, kStart: ordered[0].kStart, o, lse };
}

/** merge's float64 work arrays, reused across calls and grown as needed: row maxima m, sums z, weights w [partials, rows], acc [rows, D]. */
let work = { m: new Float64Array(0), z: new Float64Array(0), w: new Float64Array(0), acc: new Float64Array(0) };

function scratch(rows: number, D: number, n: number): typeof work {
  if (work.m.length < rows || work.w.length < n * rows || work.acc.length < rows * D) {
    const R = Math.max(rows, work.m.length);
    work = {
      m: new Float64Array(R),
      z: new Float64Array(R),
      w: new Float64Array(Math.max(n * rows, work.w.length)),
      acc: new Float64Array(Math.max(R * D, work.acc.length)),
    };
  }
  return work;
}
