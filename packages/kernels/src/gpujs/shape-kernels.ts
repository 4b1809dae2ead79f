import type { Gpu, GpuJsKernel, KernelShortcut } from './lib.ts';

/**
 * The five gpu.js kernels of one tile shape (rows × keys, head dim D), with rows r, keys c, dims d:
 *   scores [keys, rows]  s[r][c] = scale · q[r]·k[c] where lo[r] ≤ c ≤ hi[r], else 0
 *   rowMax [rows]        m[r] = max over visible c of s[r][c]   (−3e38 when none is visible)
 *   expP   [keys, rows]  p[r][c] = exp(s[r][c] − m[r]) where visible, else 0
 *   rowSum [rows]        l[r] = Σ_c p[r][c]                       (0 when none is visible)
 *   pv     [D, rows]     o[r][d] = Σ_c p[r][c] · v[c][d] / l[r]   (0 when l[r] = 0)
 * The two sums over keys run in blocks of 64 (a sum per block, then of the blocks): float32
 * rounding then grows with 64 + keys/64 instead of keys, which keeps LSE well inside 1e-4 on
 * 16384-key chunks.
 * (gpu.js output sizes are [x, y]: x is the innermost index.) Every loop is bounded by a constant
 * (keys or D) and loopMaxIterations is set above both, so no loop is ever cut. Intermediates are
 * pipeline outputs (textures on GL) fed straight into the next kernel; only m and l (to form
 * LSE = m + log l in float64) and o come back.
 */
export interface ShapeKernels {
  readonly rows: number;
  readonly keys: number;
  readonly D: number;
  readonly scores: KernelShortcut;
  readonly rowMax: KernelShortcut;
  readonly expP: KernelShortcut;
  readonly rowSum: KernelShortcut;
  readonly pv: KernelShortcut;
}

/** Keys per partial sum in rowSum and pv. */
const BLOCK = 64;

const SCORES = `function scores(q, k, lo, hi, scale) {
  const r = this.thread.y;
  const c = this.thread.x;
  if (c < lo[r] || c > hi[r]) {
    return 0;
  }
  let s = 0;
  for (let d = 0; d < this.constants.D; d++) {
    s += q[r][d] * k[c][d];
  }
  return s * scale;
}`;

const ROW_MAX = `function rowMax(s, lo, hi) {
  const r = this.thread.x;
  let m = -3.0e38;
  for (let c = 0; c < this.constants.keys; c++) {
    if (c >= lo[r] && c <= hi[r]) {
      m = Math.max(m, s[r][c]);
    }
  }
  return m;
}`;

const EXP_P = `function expP(s, m, lo, hi) {
  const r = this.thread.y;
  const c = this.thread.x;
  if (c < lo[r] || c > hi[r]) {
    return 0;
  }
  return Math.exp(s[r][c] - m[r]);
}`;

const ROW_SUM = `function rowSum(p) {
  const r = this.thread.x;
  let l = 0;
  for (let b = 0; b < this.constants.blocks; b++) {
    let part = 0;
    for (let i = 0; i < this.constants.block; i++) {
      const c = b * this.constants.block + i;
      if (c < this.constants.keys) {
        part += p[r][c];
      }
    }
    l += part;
  }
  return l;
}`;

const PV = `function pv(p, v, l) {
  const r = this.thread.y;
  const d = this.thread.x;
  const z = l[r];
  if (z <= 0) {
    return 0;
  }
  let a = 0;
  for (let b = 0; b < this.constants.blocks; b++) {
    let part = 0;
    for (let i = 0; i < this.constants.block; i++) {
      const c = b * this.constants.block + i;
      if (c < this.constants.keys) {
        part += p[r][c] * v[c][d];
      }
    }
    a += part;
  }
  return a / z;
}`;

/** Builds (lazily, on first call) the kernels of one shape on `gpu`; `onFallback` refuses a cpu fallback. */
export function createShapeKernels(
  gpu: Gpu,
  rows: number,
  keys: number,
  D: number,
  threads: number,
  onFallback: (name: string, reason: string | null) => never,
): ShapeKernels {
  const make = (name: string, source: string, output: number[], pipeline: boolean): KernelShortcut =>
    gpu.createKernel(source, {
      output,
      pipeline,
      precision: 'single',
      tactic: 'precision',
      constants: { keys, D, block: BLOCK, blocks: Math.ceil(keys / BLOCK) },
      // Loops are bounded by constants; the cap is raised above them anyway so it can never cut one.
      loopMaxIterations: Math.max(keys, D, BLOCK) + 1,
      ...(threads > 1 ? { asyncMode: true, poolSize: threads } : {}),
      // gpu.js would otherwise swap in its cpu kernel with only a console warning.
      onRequestFallback: function (this: GpuJsKernel): never {
        return onFallback(name, this.fallbackReason ?? null);
      },
    });
  return {
    rows,
    keys,
    D,
    scores: make('scores', SCORES, [keys, rows], true),
    rowMax: make('rowMax', ROW_MAX, [rows], true),
    expP: make('expP', EXP_P, [keys, rows], true),
    rowSum: make('rowSum', ROW_SUM, [rows], true),
    pv: make('pv', PV, [D, rows], false),
  };
}

/** Frees the kernels' programs and textures (the GPU's shared context stays). */
export function destroyShapeKernels(kernels: ShapeKernels): void {
  for (const k of [kernels.scores, kernels.rowMax, kernels.expP, kernels.rowSum, kernels.pv]) k.destroy();
}
