import { headRows, InputError } from '@longattn/attention';
import { mulberry32, openTensor } from '@longattn/tensor';
import { openInputs } from './inputs.ts';
import type { JobRequest } from './job.ts';

/** What `--report-error N` adds to a linear job's result (docs/contracts.md). */
export interface LinearErrorReport {
  /** The sampled rows, flat indices (b·H + h)·Sq + i, ascending. */
  rows: number[];
  seed: number;
  /** max |o_linear − o_softmax| over the sampled rows' elements. */
  maxAbs: number;
  /** maxAbs / max |o_softmax| over the same rows (0 when both are 0). */
  relative: number;
}

/** Rows sampled by `--report-error` (fixed, so reruns compare the same rows). */
export const REPORT_ERROR_SEED = 1;

/** `count` distinct rows of `total`, seeded, ascending (all of them when count ≥ total). */
export function sampleRows(total: number, count: number, seed: number): number[] {
  if (count >= total) return Array.from({ length: total }, (_, i) => i);
  const next = mulberry32(seed);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(Math.floor(next() * total));
  return [...picked].sort((a, b) => a - b);
}

/**
 * How far a finished linear job's O is from exact softmax attention (scale 1/√D, the same
 * causal mask) on `count` sampled rows: the exact rows in float64 from the inputs, O read back
 * from `request.out`. Costs O(count · Sk · D) plus one read of each sampled kv head.
 */
export function linearErrorReport(request: JobRequest, count: number, seed = REPORT_ERROR_SEED): LinearErrorReport {
  if (!Number.isInteger(count) || count < 1) throw new InputError('--report-error', `expected an integer ≥ 1, got ${count}`);
  const inputs = openInputs({
    q: request.q,
    k: request.k,
    v: request.v,
    options: request.options,
    allowNonfinite: request.allowNonfinite ?? false,
  });
  const out = openTensor(request.out, '--out');
  try {
    const { spec } = inputs;
    const { B, H, Hk, Sq, Sk, D, layout, causal, scale } = spec;
    const rows = sampleRows(B * H * Sq, count, seed);
    const group = H / Hk;
    const heads = new Map<string, { k: Float32Array; v: Float32Array }>();
    const head = (b: number, kvh: number) => {
      let kv = heads.get(`${b}:${kvh}`);
      if (!kv) {
        const at = headRows(layout, b, kvh, Hk, Sk, D);
        kv = { k: inputs.k.readRuns(at.first, Sk, at.stride, D), v: inputs.v.readRuns(at.first, Sk, at.stride, D) };
        heads.clear(); // rows come sorted by head: one kv head held at a time
        heads.set(`${b}:${kvh}`, kv);
      }
      return kv;
    };
    let maxAbs = 0;
    let maxRef = 0;
    const scores = new Float64Array(Sk);
    const exact = new Float64Array(D);
    for (const flat of rows) {
      const i = flat % Sq;
      const h = Math.floor(flat / Sq) % H;
      const b = Math.floor(flat / (Sq * H));
      const qAt = headRows(layout, b, h, H, Sq, D);
      const q = inputs.q.readRuns(qAt.first + i * qAt.stride, 1, qAt.stride, D);
      const o = out.readRuns(qAt.first + i * qAt.stride, 1, qAt.stride, D);
      const { k, v } = head(b, Math.floor(h / group));
      const last = causal ? Math.min(Sk - 1, i + Sk - Sq) : Sk - 1;
      let m = -Infinity;
      for (let j = 0; j <= last; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[d]! * k[j * D + d]!;
        scores[j] = s * scale;
        m = Math.max(m, scores[j]!);
      }
      exact.fill(0);
      let z = 0;
      for (let j = 0; j <= last; j++) {
        const p = Math.exp(scores[j]! - m);
        z += p;
        for (let d = 0; d < D; d++) exact[d]! += p * v[j * D + d]!;
      }
      for (let d = 0; d < D; d++) {
        const e = z > 0 ? exact[d]! / z : 0; // a row that sees no key: 0 in both
        maxRef = Math.max(maxRef, Math.abs(e));
        maxAbs = Math.max(maxAbs, Math.abs(o[d]! - e));
      }
    }
    return { rows, seed, maxAbs, relative: maxRef > 0 ? maxAbs / maxRef : 0 };
  } finally {
    out.close();
    inputs.close();
  }
}
