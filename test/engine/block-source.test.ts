import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import type { AttentionSpec } from '@longattn/attention';
import { readerSource, WINDOW_BYTES } from '@longattn/engine';
import { openTensor, writeTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';

// readerSource's key/value window (block-source.ts, windowReader): every block it returns must hold
// exactly the rows a plain read gives, whatever the order of requests, heads and sizes.

const D = 64; // WINDOW_BYTES / (4·D) = 8192 rows: Sk below spans requests inside, across and past the window
const B = 2;
const Hk = 2;
const Sk = 20000;

function spec(layout: 'bhsd' | 'bshd'): AttentionSpec {
  return {
    layout,
    B,
    H: Hk,
    Hk,
    Sq: Sk,
    Sk,
    D,
    causal: false,
    window: { left: Infinity, right: Infinity },
    scale: 1 / Math.sqrt(D),
  };
}

/** A file of distinct values (each element its own index as float32, exact below 2^24 / 8) and the row it came from. */
function inputs(layout: 'bhsd' | 'bshd') {
  const dir = tempDir();
  const shape = layout === 'bhsd' ? [B, Hk, Sk, D] : [B, Sk, Hk, D];
  const n = B * Hk * Sk * D;
  const k = new Float32Array(n);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    k[i] = i % 16777216;
    v[i] = -(i % 16777213);
  }
  writeTensor(join(dir, 'k.npy'), shape, k);
  writeTensor(join(dir, 'v.npy'), shape, v);
  const at = (t: Float32Array, b: number, h: number, row: number) => {
    const first = layout === 'bhsd' ? ((b * Hk + h) * Sk + row) * D : ((b * Sk + row) * Hk + h) * D;
    return t.subarray(first, first + D);
  };
  return { dir, k, v, at };
}

type Request = { which: 'keys' | 'values'; b: number; h: number; start: number; count: number; into: boolean };

/** Requests like the tile loop's: mostly forward-sliding runs of one head, with short runs elsewhere, jumps back, other heads and over-long runs. */
const requests = fc.array(
  fc.record({
    which: fc.constantFrom('keys' as const, 'values' as const),
    b: fc.integer({ min: 0, max: B - 1 }),
    h: fc.integer({ min: 0, max: Hk - 1 }),
    start: fc.integer({ min: 0, max: Sk - 1 }),
    count: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 256, max: 4096 }), fc.integer({ min: 8000, max: 12000 })),
    into: fc.boolean(),
  }),
  { minLength: 1, maxLength: 40 },
);

/** A q-block sweep: runs that advance by `step` over `window` keys, each split in two, plus the first 4 keys (sinks). */
function sweep(step: number, window: number): Request[] {
  const out: Request[] = [];
  for (let q = 0; q + step <= Sk; q += step) {
    const lo = Math.max(0, q + step - window);
    const mid = Math.min(q + step, lo + 2048);
    for (const which of ['keys', 'values'] as const) {
      out.push({ which, b: 0, h: 1, start: 0, count: 4, into: true });
      out.push({ which, b: 0, h: 1, start: lo, count: mid - lo, into: true });
      if (mid < q + step) out.push({ which, b: 0, h: 1, start: mid, count: q + step - mid, into: false });
    }
  }
  return out;
}

for (const layout of ['bhsd', 'bshd'] as const) {
  test(`window reads give a plain read's rows (${layout}, random requests)`, (t) => {
    t.true(12000 > WINDOW_BYTES / (4 * D) && Sk > 12000, 'the requests reach past the window and the tensor is longer still');
    const { dir, k, v, at } = inputs(layout);
    const s = spec(layout);
    const kr = openTensor(join(dir, 'k.npy'), 'k');
    const vr = openTensor(join(dir, 'v.npy'), 'v');
    try {
      fc.assert(
        fc.property(requests, (reqs) => {
          const source = readerSource(s, kr, kr, vr, true); // a fresh window per sequence
          return reqs.every((r) => check(source, r, r.which === 'keys' ? k : v, at));
        }),
        { numRuns: 60 },
      );
      const source = readerSource(s, kr, kr, vr, true);
      for (const [step, window] of [
        [256, 4096 + 255],
        [256, 768],
        [128, 8192],
      ] as const)
        for (const r of sweep(step, window)) t.true(check(source, r, r.which === 'keys' ? k : v, at), JSON.stringify(r));
    } finally {
      kr.close();
      vr.close();
    }
  });
}

function check(
  source: ReturnType<typeof readerSource>,
  r: Request,
  data: Float32Array,
  at: (t: Float32Array, b: number, h: number, row: number) => Float32Array,
): boolean {
  const count = Math.min(r.count, Sk - r.start);
  const into = r.into ? new Float32Array(count * D).fill(Number.NaN) : undefined;
  const block = source[r.which](r.b, r.h, r.start, count, into);
  if (block.length !== count * D) return false;
  for (let x = 0; x < count; x++) {
    const want = at(data, r.b, r.h, r.start + x);
    for (let d = 0; d < D; d++) if (!Object.is(block[x * D + d], want[d])) return false;
  }
  return true;
}
