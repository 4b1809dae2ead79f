import { InputError } from '@longattn/tensor';

export { InputError };

/**
 * AttentionSpec: everything about one attention problem except the numbers.
 *
 * Glossary (the same letters everywhere in longattn):
 *   B batch, H query heads, Hk key/value heads (H % Hk == 0), Sq queries, Sk keys, D head dim,
 *   blockQ query rows per tile, blockK keys per tile.
 * Query head h reads kv head ⌊h / (H/Hk)⌋.
 */
export type Layout = 'bhsd' | 'bshd';

/** Window (left, right), inclusive; Infinity = unbounded side (the CLI's -1). */
export interface Window {
  left: number;
  right: number;
}

export interface AttentionSpec {
  layout: Layout;
  B: number;
  H: number;
  Hk: number;
  Sq: number;
  Sk: number;
  D: number;
  causal: boolean;
  /** As given by the user (before causal clamps right to 0). */
  window: Window;
  /** Softmax scale; 1/√D unless given. */
  scale: number;
  /**
   * NaN/Inf inputs were let through (--allow-nonfinite): non-finite outputs are then expected,
   * not a score overflow (see checkMergedRows). Absent: inputs were checked finite.
   */
  allowNonfinite?: boolean;
}

/** The per-row key interval rule: query i sees key j iff i + diag − left ≤ j ≤ i + diag + right. */
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

/** True when the rule masks nothing at all for this problem. */
export function isUnmasked(spec: AttentionSpec): boolean {
  const rule = maskRule(spec);
  // lo grows with i and hi grows with i: the last row has the highest lo, the first the lowest hi.
  return keyLow(rule, spec.Sq - 1) <= 0 && keyHigh(rule, 0) >= spec.Sk - 1;
}

/** Lowest key (unclamped) that query row i may see. */
export function keyLow(rule: MaskRule, i: number): number {
  return rule.left === Infinity ? -Infinity : i + rule.diag - rule.left;
}

/** Highest key (unclamped) that query row i may see. */
export function keyHigh(rule: MaskRule, i: number): number {
  return rule.right === Infinity ? Infinity : i + rule.diag + rule.right;
}

/** FLOPs the unmasked area costs (4·D per visible (query, key) pair, per head, per batch). */
export function unmaskedFlops(spec: AttentionSpec): number {
  const rule = maskRule(spec);
  let pairs = 0;
  for (let i = 0; i < spec.Sq; i++) {
    const lo = Math.max(0, keyLow(rule, i));
    const hi = Math.min(spec.Sk - 1, keyHigh(rule, i));
    if (hi >= lo) pairs += hi - lo + 1;
  }
  return 4 * pairs * spec.D * spec.H * spec.B;
}
