import { InputError } from '@longattn/tensor';
import type { Pattern } from './pattern.ts';

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
   * Sparse patterns (--sinks, --global, --stride, --block-mask): the visible set is their union
   * (with the window, when given), then causal intersects it (docs/math.md, "Patterns"). Absent:
   * the window/causal interval rule alone.
   */
  pattern?: Pattern;
  /**
   * Linear attention (--linear), an approximation, not softmax: φ(x) = elu(x) + 1, no scale, no
   * mask but causal (docs/math.md, "Linear attention"). Absent: exact softmax attention.
   */
  linear?: boolean;
  /**
   * NaN/Inf inputs were let through (--allow-nonfinite): non-finite outputs are then expected,
   * not a score overflow (see checkMergedRows). Absent: inputs were checked finite.
   */
  allowNonfinite?: boolean;
}
