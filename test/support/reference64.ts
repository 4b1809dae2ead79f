/**
 * An independent brute-force attention, written from the definitions in docs/math.md and nothing
 * else: it imports no mask rule, key range, head map or layout helper from @longattn/attention,
 * so a misreading shared by the library and its own reference cannot pass the tests that use it.
 *
 * For every (b, h, i) it walks every key j, asks `visible` whether the definitions let query i see
 * key j, and computes softmax(s·q·k) over the visible keys: O(B·H·Sq·Sk·D), small shapes only.
 */

export interface BruteSpec {
  layout: 'bhsd' | 'bshd';
  B: number;
  H: number;
  Hk: number;
  Sq: number;
  Sk: number;
  D: number;
  causal: boolean;
  /** Inclusive [left, right] as the CLI takes it, -1 = unbounded side; absent = no window. */
  window?: readonly [number, number];
  /** Softmax scale; 1/√D when absent. */
  scale?: number;
  /** Pattern flags (docs/math.md, "Patterns"): keys 0 … sinks−1. */
  sinks?: number;
  /** Global rows (see every key) and keys (seen by every row). */
  global?: readonly number[];
  /** (pos − j) mod stride = 0. */
  stride?: number;
  /** M[(h,) ⌊i/block⌋, ⌊j/block⌋] ≠ 0; cells in C order of `shape` ([nQb, nKb] or [H, nQb, nKb]). */
  blockMask?: { block: number; shape: readonly number[]; cells: ArrayLike<number> };
}

/**
 * Whether query i may see key j. Bottom-right alignment: query i sits at key position i + Sk − Sq.
 * Window: pos − left ≤ j ≤ pos + right, −1 = that side unbounded. Causal: j ≤ pos (it forces
 * right = min(right, 0), which is the same as intersecting with j ≤ pos).
 */
export function visible(spec: Omit<BruteSpec, 'layout' | 'B' | 'H' | 'Hk' | 'D'>, i: number, j: number, h = 0): boolean {
  const pos = i + spec.Sk - spec.Sq;
  if (spec.causal && j > pos) return false;
  const patterned = spec.sinks !== undefined || spec.global !== undefined || spec.stride !== undefined || spec.blockMask !== undefined;
  if (patterned) {
    // Pattern rule: the union of the given patterns (the window is one of them), causal applied above.
    const inWindow =
      spec.window !== undefined &&
      (spec.window[0] === -1 || j >= pos - spec.window[0]) &&
      (spec.window[1] === -1 || j <= pos + spec.window[1]);
    const inSinks = spec.sinks !== undefined && j < spec.sinks;
    const inGlobal = spec.global !== undefined && (spec.global.includes(i) || spec.global.includes(j));
    const inStride = spec.stride !== undefined && (((pos - j) % spec.stride) + spec.stride) % spec.stride === 0;
    let inMask = false;
    if (spec.blockMask) {
      const { block, shape, cells } = spec.blockMask;
      const [nQb, nKb] = shape.slice(-2) as [number, number];
      const head = shape.length === 3 ? h : 0;
      inMask = cells[(head * nQb + Math.floor(i / block)) * nKb + Math.floor(j / block)] !== 0;
    }
    return inWindow || inSinks || inGlobal || inStride || inMask;
  }
  if (spec.window) {
    const [left, right] = spec.window;
    if (left !== -1 && j < pos - left) return false;
    if (right !== -1 && j > pos + right) return false;
  }
  return true;
}

/** Flat C-order index of element (b, head, s, d) of a [B, heads, S, D] tensor stored in `layout`. */
function at(layout: BruteSpec['layout'], b: number, head: number, s: number, d: number, heads: number, S: number, D: number): number {
  // bhsd is [B, heads, S, D]; bshd is [B, S, heads, D].
  return layout === 'bhsd' ? ((b * heads + head) * S + s) * D + d : ((b * S + s) * heads + head) * D + d;
}

/**
 * Attention in float64 (`round` = identity) or with every step rounded to float32
 * (`round` = Math.fround: the naive float32 baseline of the exactness rule).
 * q: [B,H,Sq,D] elements in `layout`; k, v: [B,Hk,Sk,D] in `layout`.
 * Returns out in Q's layout and lse [B,H,Sq]; a row that sees no key: out 0, lse -Infinity.
 */
export function bruteAttention(
  spec: BruteSpec,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  round: (x: number) => number = (x) => x,
): { out: Float64Array; lse: Float64Array } {
  const { layout, B, H, Hk, Sq, Sk, D } = spec;
  const scale = round(spec.scale ?? 1 / Math.sqrt(D));
  const out = new Float64Array(B * H * Sq * D);
  const lse = new Float64Array(B * H * Sq);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvHead = Math.floor(h / (H / Hk)); // query head h reads kv head ⌊h / (H/Hk)⌋
      for (let i = 0; i < Sq; i++) {
        const scores: number[] = [];
        const keys: number[] = [];
        for (let j = 0; j < Sk; j++) {
          if (!visible(spec, i, j, h)) continue;
          let dot = 0;
          for (let d = 0; d < D; d++) {
            dot = round(dot + round(q[at(layout, b, h, i, d, H, Sq, D)]! * k[at(layout, b, kvHead, j, d, Hk, Sk, D)]!));
          }
          scores.push(round(dot * scale));
          keys.push(j);
        }
        const lseAt = (b * H + h) * Sq + i;
        if (keys.length === 0) {
          lse[lseAt] = -Infinity; // outputs stay 0
          continue;
        }
        // Non-finite inputs (docs/nonfinite.md): a row whose visible scores are all −∞ takes its max
        // at the lowest finite float, so p = 0, Z = 0, O = Σ 0·v undivided and LSE = −∞ (IEEE alone
        // would give exp(−∞ + ∞) = NaN). NaN and +∞ scores still give NaN through exp.
        let m = Math.max(...scores);
        if (m === -Infinity) m = -3.4028234663852886e38;
        const p = scores.map((s) => round(Math.exp(s - m)));
        const z = p.reduce((a, x) => round(a + x), 0);
        lse[lseAt] = round(m + Math.log(z));
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let n = 0; n < keys.length; n++) acc = round(acc + round(p[n]! * v[at(layout, b, kvHead, keys[n]!, d, Hk, Sk, D)]!));
          out[at(layout, b, h, i, d, H, Sq, D)] = z === 0 ? acc : round(acc / z);
        }
      }
    }
  }
  return { out, lse };
}

/** float64 reference and the naive float32 baseline, with the exactness bound 2·max|naive − ref| + 1e-5. */
export function bruteWithBound(
  spec: BruteSpec,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
): { ref: { out: Float64Array; lse: Float64Array }; bound: number } {
  const ref = bruteAttention(spec, q, k, v);
  const naive = bruteAttention(spec, q, k, v, Math.fround);
  let worst = 0;
  for (let n = 0; n < ref.out.length; n++) {
    const d = Math.abs(naive.out[n]! - ref.out[n]!);
    if (Number.isFinite(d)) worst = Math.max(worst, d); // non-finite inputs (--allow-nonfinite): finite pairs only
  }
  return { ref, bound: 2 * worst + 1e-5 };
}

/**
 * How far `got` is from the brute-force reference: max|out − ref| and max|lse − ref|, and whether
 * that meets the exactness rule: out within `bound`, LSE within 1e-4. Non-finite values must match
 * exactly (−Infinity LSE of a masked row; with non-finite inputs, NaN where the reference has NaN,
 * ±Infinity where it has them); any other non-finite mismatch counts as Infinity.
 */
export function exactness(
  got: { out: ArrayLike<number>; lse?: ArrayLike<number> },
  want: { ref: { out: Float64Array; lse: Float64Array }; bound: number },
): { err: number; lseErr: number; exact: boolean } {
  const diff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    if (a.length !== b.length) return Infinity;
    let m = 0;
    for (let n = 0; n < a.length; n++) {
      if (a[n] === b[n] || (Number.isNaN(a[n]) && Number.isNaN(b[n]))) continue;
      const d = Math.abs(a[n]! - b[n]!);
      m = Number.isFinite(d) ? Math.max(m, d) : Infinity;
    }
    return m;
  };
  const err = diff(got.out, want.ref.out);
  const lseErr = got.lse ? diff(got.lse, want.ref.lse) : 0;
  return { err, lseErr, exact: err <= want.bound && lseErr <= 1e-4 };
}
