import { exactnessBound, maxAbsDiff, naiveFloat32Attention, plan, referenceAttention, validateSpec } from '@longattn/attention';
import { arraySource, computeQBlock } from '@longattn/engine';
import { gpujsBackend } from '@longattn/kernels';

export interface GpujsBenchOptions {
  /** Sq = Sk = n. */
  n: number;
  D: number;
  H: number;
  /** gpujs mode; default: the backend's default (headlessgl when GL works, else webasm). */
  mode?: string;
  blockQ?: number;
  blockK?: number;
  /** Timed passes over all heads (the median is reported). Default 1. */
  reps?: number;
}

export interface GpujsBenchResult {
  backend: string;
  device: string;
  n: number;
  D: number;
  H: number;
  blockQ: number;
  blockK: number;
  tiles: number;
  /** Median seconds of one pass (uploads and readbacks included; shader builds excluded by a warm-up). */
  seconds: number;
  /** 4·Sq·Sk·D·H / seconds / 1e9 (dense attention). */
  gflops: number;
  /** Sampled rows checked against the float64 reference with the exactness rule. */
  check: { rows: number; err: number; bound: number; lseErr: number; ok: boolean };
}

/** Uniform numbers in [-1, 1) from a 32-bit LCG (fast; statistics do not matter here). */
function fill(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    out[i] = a / 2147483648 - 1;
  }
  return out;
}

/**
 * Dense self-attention of H heads of n×D through the gpujs backend, q-block by q-block through the
 * engine's own computeQBlock (planner tiles, partials merged in key order), timed; then a few rows
 * of the first and last head are checked against the float64 reference.
 */
export async function benchGpujs(options: GpujsBenchOptions): Promise<GpujsBenchResult> {
  const { n, D, H } = options;
  const blockQ = options.blockQ ?? gpujsBackend.defaultBlocks.blockQ;
  const blockK = options.blockK ?? gpujsBackend.defaultBlocks.blockK;
  const spec = validateSpec({ q: [H, n, D], k: [H, n, D], v: [H, n, D] }, {});
  const q = fill(H * n * D, 1);
  const k = fill(H * n * D, 2);
  const v = fill(H * n * D, 3);
  const out = new Float32Array(H * n * D);
  const lse = new Float32Array(H * n);
  const thePlan = plan(spec, { blockQ, blockK });
  const kernel = await gpujsBackend.create(options.mode ? { mode: options.mode } : {});
  const source = arraySource(spec, q, k, v);
  try {
    const runBlock = async (index: number): Promise<void> => {
      const qb = thePlan.block(index);
      const m = await computeQBlock(kernel, spec, qb, source);
      out.set(m.o, (qb.h * n + qb.qStart) * D);
      lse.set(m.lse, qb.h * n + qb.qStart);
    };
    // Warm-up: builds the kernels of every tile shape (the last q-block has the ragged ones).
    await runBlock(0);
    await runBlock(thePlan.qBlockCount - 1);
    const times: number[] = [];
    for (let rep = 0; rep < Math.max(1, options.reps ?? 1); rep++) {
      const t0 = performance.now();
      for (let i = 0; i < thePlan.qBlockCount; i++) await runBlock(i);
      times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    const seconds = times[Math.floor(times.length / 2)]!;
    return {
      backend: kernel.backend,
      device: kernel.device,
      n,
      D,
      H,
      blockQ,
      blockK,
      tiles: thePlan.tileCount,
      seconds,
      gflops: (4 * n * n * D * H) / seconds / 1e9,
      check: checkRows(n, D, H, q, k, v, out, lse),
    };
  } finally {
    await kernel.dispose?.();
  }
}

/** Rows 0..3 and the 4 middle rows of the first and last head against the reference (rows are independent in dense attention). */
function checkRows(
  n: number,
  D: number,
  H: number,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array,
  lse: Float32Array,
): GpujsBenchResult['check'] {
  const take = Math.min(4, n);
  let err = 0;
  let bound = Infinity;
  let lseErr = 0;
  let rows = 0;
  for (const h of new Set([0, H - 1])) {
    for (const start of new Set([0, Math.max(0, (n >> 1) - take)])) {
      const spec = validateSpec({ q: [take, D], k: [n, D], v: [n, D] }, {});
      const head = h * n * D;
      const qs = q.subarray(head + start * D, head + (start + take) * D);
      const ks = k.subarray(head, head + n * D);
      const vs = v.subarray(head, head + n * D);
      const ref = referenceAttention(spec, qs, ks, vs);
      const naive = naiveFloat32Attention(spec, qs, ks, vs);
      err = Math.max(err, maxAbsDiff(out.subarray(head + start * D, head + (start + take) * D), ref.out));
      bound = Math.min(bound, exactnessBound(naive.out, ref.out));
      lseErr = Math.max(lseErr, maxAbsDiff(lse.subarray(h * n + start, h * n + start + take), ref.lse));
      rows += take;
    }
  }
  return { rows, err, bound, lseErr, ok: err <= bound && lseErr <= 1e-4 };
}
