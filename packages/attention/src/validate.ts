import { InputError } from '@longattn/tensor';
import type { AttentionSpec, Layout, Window } from './spec.ts';
import { checkPattern, type PatternOptions } from './pattern-options.ts';

export interface SpecOptions {
  layout?: Layout;
  causal?: boolean;
  /** Inclusive (left, right); -1 or Infinity = unbounded. */
  window?: { left: number; right: number };
  scale?: number;
  /** Sparse patterns (docs/math.md, "Patterns"); checked against the shapes here. */
  pattern?: PatternOptions;
  /** Linear attention (docs/math.md, "Linear attention"): only with no mask or causal, no scale. */
  linear?: boolean;
}

interface Dims {
  B: number;
  heads: number;
  S: number;
  D: number;
}

/** Reads [B,heads,S,D] out of a shape per layout and rank (docs/contracts.md). */
function dims(name: string, shape: readonly number[], layout: Layout): Dims {
  const ranks = layout === 'bhsd' ? [2, 3, 4] : [3, 4];
  if (!ranks.includes(shape.length)) {
    const want = layout === 'bhsd' ? '[S,D], [H,S,D] or [B,H,S,D]' : '[S,H,D] or [B,S,H,D]';
    throw new InputError(name, `expected rank ${ranks.join(', ')} for layout ${layout} (${want}), got shape [${shape.join(',')}]`);
  }
  for (const n of shape) {
    if (!Number.isInteger(n) || n <= 0) throw new InputError(name, `every dimension must be ≥ 1, got shape [${shape.join(',')}]`);
  }
  const full = [...Array(4 - shape.length).fill(1), ...shape] as [number, number, number, number];
  return layout === 'bhsd'
    ? { B: full[0], heads: full[1], S: full[2], D: full[3] }
    : { B: full[0], S: full[1], heads: full[2], D: full[3] };
}

function normaliseSide(v: number, side: string): number {
  if (v === -1 || v === Infinity) return Infinity;
  if (!Number.isInteger(v) || v < 0) throw new InputError('--window', `expected L,R with integers ≥ -1, got ${side}=${v}`);
  return v;
}

/**
 * Validates Q/K/V shapes and options once, at the boundary, and returns the spec.
 * Errors are InputError naming the argument (`q`, `k`, `v`, `--window`, `--scale`).
 */
export function validateSpec(
  shapes: { q: readonly number[]; k: readonly number[]; v: readonly number[] },
  options: SpecOptions = {},
): AttentionSpec {
  const layout = options.layout ?? 'bhsd';
  if (layout !== 'bhsd' && layout !== 'bshd') throw new InputError('--layout', `expected bhsd or bshd, got "${String(layout)}"`);
  if (shapes.k.length !== shapes.q.length) throw new InputError('k', `rank ${shapes.k.length} differs from q's rank ${shapes.q.length}`);
  if (shapes.v.length !== shapes.q.length) throw new InputError('v', `rank ${shapes.v.length} differs from q's rank ${shapes.q.length}`);
  const q = dims('q', shapes.q, layout);
  const k = dims('k', shapes.k, layout);
  const v = dims('v', shapes.v, layout);
  if (k.B !== q.B) throw new InputError('k', `batch ${k.B} differs from q's batch ${q.B}`);
  if (v.B !== q.B) throw new InputError('v', `batch ${v.B} differs from q's batch ${q.B}`);
  if (k.D !== q.D) throw new InputError('k', `head dim ${k.D} differs from q's head dim ${q.D}`);
  if (v.D !== q.D) throw new InputError('v', `head dim ${v.D} differs from q's head dim ${q.D} (longattn needs Dv = D)`);
  if (v.S !== k.S) throw new InputError('v', `sequence length ${v.S} differs from k's ${k.S}`);
  if (v.heads !== k.heads) throw new InputError('v', `${v.heads} heads differ from k's ${k.heads}`);
  if (q.heads % k.heads !== 0) {
    throw new InputError('k', `q's ${q.heads} heads are not a multiple of k's ${k.heads} heads (GQA needs H % Hk == 0)`);
  }
  const window: Window = {
    left: normaliseSide(options.window?.left ?? Infinity, 'L'),
    right: normaliseSide(options.window?.right ?? Infinity, 'R'),
  };
  const scale = options.scale ?? 1 / Math.sqrt(q.D);
  checkScale(scale);
  if (options.linear) checkLinear(options);
  const pattern = options.pattern ? checkPattern(options.pattern, { H: q.heads, Sq: q.S, Sk: k.S }) : undefined;
  return {
    layout,
    B: q.B,
    H: q.heads,
    Hk: k.heads,
    Sq: q.S,
    Sk: k.S,
    D: q.D,
    causal: options.causal ?? false,
    window,
    scale,
    ...(pattern ? { pattern } : {}),
    ...(options.linear ? { linear: true } : {}),
  };
}

/** --linear takes no mask but --causal and no scale (docs/contracts.md, `--linear`): the first flag that breaks it, named. */
function checkLinear(options: SpecOptions): void {
  const refuse = (flag: string, what: string) => {
    throw new InputError(flag, `not with --linear: linear attention takes ${what}`);
  };
  if (options.window) refuse('--window', 'no window (only --causal)');
  const p = options.pattern ?? {};
  const flag =
    p.sinks !== undefined
      ? '--sinks'
      : p.global
        ? '--global'
        : p.stride !== undefined
          ? '--stride'
          : p.blockMask
            ? '--block-mask'
            : undefined;
  if (flag) refuse(flag, 'no pattern (only --causal)');
  if (options.scale !== undefined) refuse('--scale', 'no scale (φ(q)·φ(k), φ = elu + 1)');
}

/**
 * The softmax scale must be a finite float32 (|s| ≤ 3.4e38: kernels compute scale·q·k in float32): 0 and
 * negative scales are accepted (uniform attention; reversed preference), a nonzero scale that
 * rounds to 0 in float32 (|s| < 1.4e-45) is not (docs/limits.md).
 */
function checkScale(scale: number): void {
  if (!Number.isFinite(Math.fround(scale))) {
    throw new InputError('--scale', `expected a finite float32 (|scale| ≤ 3.4e38), got ${scale}`);
  }
  if (scale !== 0 && Math.fround(scale) === 0) {
    throw new InputError('--scale', `${scale} rounds to 0 in float32 (|scale| < 1.4e-45); give 0 or a float32-sized scale`);
  }
}
