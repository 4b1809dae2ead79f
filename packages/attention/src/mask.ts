import { hasPattern } from './pattern.ts';
import type { AttentionSpec } from './spec.ts';

/**
 * The mask, written once (docs/math.md): query row i sees key j iff
 *   i + diag − left ≤ j ≤ i + diag + right,   diag = Sk − Sq (bottom-right alignment),
 * Infinity = an unbounded side; causal forces right ≤ 0. Kernels, the planner, the reference
 * and FLOP counts all go through keyLow / keyHigh / visiblePairs.
 */
export interface MaskRule {
  /** Sk − Sq: bottom-right alignment (FlashAttention ≥ 2.1). */
  diag: number;
  /** Keys visible to the left of the diagonal; Infinity = unbounded. */
  left: number;
  /** Keys visible to the right of the diagonal; Infinity = unbounded. Causal forces ≤ 0. */
  right: number;
}

export function maskRule(spec: Pick<AttentionSpec, 'Sq' | 'Sk' | 'causal' | 'window'>): MaskRule {
  const right = spec.causal ? Math.min(spec.window.right, 0) : spec.window.right;
  return { diag: spec.Sk - spec.Sq, left: spec.window.left, right };
}

/** Lowest key (unclamped; -Infinity when unbounded) that query row i may see. */
export function keyLow(rule: MaskRule, i: number): number {
  return rule.left === Infinity ? -Infinity : i + rule.diag - rule.left;
}

/** Highest key (unclamped; Infinity when unbounded) that query row i may see. */
export function keyHigh(rule: MaskRule, i: number): number {
  return rule.right === Infinity ? Infinity : i + rule.diag + rule.right;
}

/** True when the rule masks nothing at all for this problem. */
export function isUnmasked(spec: AttentionSpec): boolean {
  if (hasPattern(spec)) return false;
  const rule = maskRule(spec);
  // lo grows with i and hi grows with i: the last row has the highest lo, the first the lowest hi.
  return keyLow(rule, spec.Sq - 1) <= 0 && keyHigh(rule, 0) >= spec.Sk - 1;
}

/**
 * Number of (query, key) pairs the mask lets through among rows [qStart, qStart+rows) and keys
 * [kStart, kStart+keys), in O(1): per row the count min(kEnd, hi(i)) − max(kStart, lo(i)) + 1
 * is linear in i (slope +1, 0 or −1) between the rows where hi(i) reaches kEnd and lo(i) reaches
 * kStart, so the sum is at most three arithmetic series clipped at 0. Exact in float64 while the
 * result stays below 2^53.
 */
export function visiblePairs(rule: MaskRule, qStart: number, rows: number, kStart: number, keys: number): number {
  if (rows <= 0 || keys <= 0) return 0;
  const qEnd = qStart + rows;
  const kEnd = kStart + keys - 1;
  // Rows ≤ hiStops: hi(i) ≤ kEnd (the count grows with i); rows ≥ loStarts: lo(i) ≥ kStart (it shrinks).
  const hiStops = kEnd - keyHigh(rule, 0);
  const loStarts = kStart - keyLow(rule, 0);
  // Two cuts, clamped into the rows, split them into ≤ 3 runs on which the count is linear.
  const c1 = Math.min(qEnd, Math.max(qStart, hiStops + 1));
  const c2 = Math.min(qEnd, Math.max(qStart, loStarts));
  const a = Math.min(c1, c2);
  const b = Math.max(c1, c2);
  return (
    run(rule, kStart, kEnd, hiStops, loStarts, qStart, a) +
    run(rule, kStart, kEnd, hiStops, loStarts, a, b) +
    run(rule, kStart, kEnd, hiStops, loStarts, b, qEnd)
  );
}

/** Visible pairs of rows [from, to), on which the count is linear (no cut inside). */
function run(rule: MaskRule, kStart: number, kEnd: number, hiStops: number, loStarts: number, from: number, to: number): number {
  if (to <= from) return 0;
  const first = Math.min(kEnd, keyHigh(rule, from)) - Math.max(kStart, keyLow(rule, from)) + 1;
  const slope = (from <= hiStops ? 1 : 0) - (from >= loStarts ? 1 : 0);
  return positiveSum(first, slope, to - from);
}

/** Σ_{t=0}^{n−1} max(0, f0 + slope·t) for slope ∈ {−1, 0, 1}. */
function positiveSum(f0: number, slope: number, n: number): number {
  if (n <= 0) return 0;
  if (slope === 0) return n * Math.max(0, f0);
  // The terms that are > 0 form one run of consecutive integers: [first … last] of `terms` terms.
  const t0 = slope > 0 ? Math.max(0, 1 - f0) : 0;
  const t1 = slope > 0 ? n - 1 : Math.min(n - 1, f0 - 1);
  if (t1 < t0) return 0;
  const terms = t1 - t0 + 1;
  return (terms * (f0 + slope * t0 + (f0 + slope * t1))) / 2;
}

/** FLOPs the unmasked area costs (4·D per visible (query, key) pair, per head, per batch). */
export function unmaskedFlops(spec: AttentionSpec): number {
  return 4 * visiblePairs(maskRule(spec), 0, spec.Sq, 0, spec.Sk) * spec.D * spec.H * spec.B;
}
