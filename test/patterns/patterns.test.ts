import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { plan, validateSpec, type PatternOptions } from '@longattn/attention';
import { runLocal } from '@longattn/engine';
import { readTensor, writeTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness, visible, type BruteSpec } from '../support/reference64.ts';

/**
 * Sparse patterns (docs/math.md, "Patterns") on odd shapes, every backend, against the float64
 * brute force of test/support/reference64.ts, whose `visible` is the rule written from the
 * contract (union of the patterns and the window, then causal) — not the planner's code.
 */

interface PatternCase {
  name: string;
  H: number;
  Hk: number;
  Sq: number;
  Sk: number;
  D: number;
  causal: boolean;
  window?: [number, number];
  pattern: PatternOptions;
}

/** A per-head block mask [H, nQb, nKb] from a seed, with block row 1 all zero (fully masked rows unless another pattern reaches them). */
function blockMask(H: number, Sq: number, Sk: number, block: number, seed: number): NonNullable<PatternOptions['blockMask']> {
  const nQb = Math.ceil(Sq / block);
  const nKb = Math.ceil(Sk / block);
  const r = randomTensor(H * nQb * nKb, seed);
  const cells = Array.from(r, (x, n) => (Math.floor(n / nKb) % nQb === 1 ? 0 : x > 0.2 ? 1 : 0));
  return { block, shape: [H, nQb, nKb], cells };
}

const CASES: PatternCase[] = [
  {
    name: 'StreamingLLM: causal + window (9,0) + 3 sinks',
    H: 2,
    Hk: 1,
    Sq: 77,
    Sk: 91,
    D: 7,
    causal: true,
    window: [9, 0],
    pattern: { sinks: 3 },
  },
  {
    name: 'Longformer: window (5,5) + globals 0,40,76',
    H: 2,
    Hk: 2,
    Sq: 77,
    Sk: 91,
    D: 5,
    causal: false,
    window: [5, 5],
    pattern: { global: [0, 40, 76] },
  },
  {
    name: 'strided: causal + stride 6 + window (4,0)',
    H: 1,
    Hk: 1,
    Sq: 83,
    Sk: 83,
    D: 9,
    causal: true,
    window: [4, 0],
    pattern: { stride: 6 },
  },
  {
    name: 'stride 5 alone, causal, Sq > Sk (rows that see nothing)',
    H: 1,
    Hk: 1,
    Sq: 95,
    Sk: 61,
    D: 6,
    causal: true,
    pattern: { stride: 5 },
  },
  {
    name: 'per-head block mask (block 16, a zero block row) + causal',
    H: 2,
    Hk: 1,
    Sq: 70,
    Sk: 85,
    D: 7,
    causal: true,
    pattern: { blockMask: blockMask(2, 70, 85, 16, 7) },
  },
  {
    name: 'block mask [nQb,nKb] ∪ sinks 2 ∪ global 33, no causal',
    H: 1,
    Hk: 1,
    Sq: 64,
    Sk: 77,
    D: 8,
    causal: false,
    pattern: { sinks: 2, global: [33], blockMask: { ...blockMask(1, 64, 77, 11, 9), shape: [6, 7] } },
  },
];

function bruteSpec(c: PatternCase): BruteSpec {
  const p = c.pattern;
  return {
    layout: 'bhsd',
    B: 1,
    H: c.H,
    Hk: c.Hk,
    Sq: c.Sq,
    Sk: c.Sk,
    D: c.D,
    causal: c.causal,
    ...(c.window ? { window: c.window } : {}),
    ...(p.sinks !== undefined ? { sinks: p.sinks } : {}),
    ...(p.global ? { global: p.global } : {}),
    ...(p.stride !== undefined ? { stride: p.stride } : {}),
    ...(p.blockMask ? { blockMask: p.blockMask } : {}),
  };
}

function specOf(c: PatternCase) {
  return validateSpec(
    { q: [c.H, c.Sq, c.D], k: [c.Hk, c.Sk, c.D], v: [c.Hk, c.Sk, c.D] },
    { causal: c.causal, ...(c.window ? { window: { left: c.window[0], right: c.window[1] } } : {}), pattern: c.pattern },
  );
}

for (const c of CASES) {
  test(`planner: ${c.name} — tiles empty/full/partial, trimmed, and their flops match the rule pair by pair`, (t) => {
    const spec = specOf(c);
    const brute = bruteSpec(c);
    const p = plan(spec, { blockQ: 13, blockK: 17 });
    let tiles = 0;
    let flops = 0;
    for (const block of p.blocks()) {
      const kept = new Map(block.tiles.map((tile) => [tile.kBlock, tile]));
      for (let kb = 0; kb * 17 < c.Sk; kb++) {
        let seen = 0;
        let first = Infinity;
        let last = -Infinity;
        const keys = Math.min(17, c.Sk - kb * 17);
        for (let i = block.qStart; i < block.qStart + block.rows; i++) {
          for (let j = kb * 17; j < kb * 17 + keys; j++) {
            if (!visible(brute, i, j, block.h)) continue;
            seen++;
            first = Math.min(first, j);
            last = Math.max(last, j);
          }
        }
        const tile = kept.get(kb);
        if (seen === 0) t.is(tile, undefined, `q-block ${block.index} key block ${kb}: empty, never dispatched`);
        else {
          t.truthy(tile, `q-block ${block.index} key block ${kb}: ${seen} visible pairs`);
          t.is(tile?.kStart, first, 'trimmed to the first key a row sees');
          t.is(tile?.keys, last - first + 1, 'and to the last');
          t.is(tile?.full, seen === block.rows * (last - first + 1));
          t.is(tile?.flops, 4 * seen * c.D);
        }
      }
      tiles += block.tiles.length;
      flops += block.tiles.reduce((s, tile) => s + tile.flops, 0);
      t.is(p.tilesIn(block.index), block.tiles.length);
    }
    t.is(p.tileCount, tiles);
    t.is(p.flops, flops);
  });
}

const BACKENDS = ['js', 'wasm', 'ort', 'gpujs:webasm', 'gpujs:cpu'];

for (const c of CASES) {
  test.serial(`${c.name}: every backend within the exactness bound of the float64 rule, bitwise the same on 1 and 2 threads`, async (t) => {
    const dir = tempDir('longattn-patterns-');
    try {
      const q = randomTensor(c.H * c.Sq * c.D, 11);
      const k = randomTensor(c.Hk * c.Sk * c.D, 12);
      const v = randomTensor(c.Hk * c.Sk * c.D, 13);
      writeTensor(join(dir, 'q.npy'), [c.H, c.Sq, c.D], q);
      writeTensor(join(dir, 'k.npy'), [c.Hk, c.Sk, c.D], k);
      writeTensor(join(dir, 'v.npy'), [c.Hk, c.Sk, c.D], v);
      const want = bruteWithBound(bruteSpec(c), q, k, v);
      let masked = 0;
      for (const l of want.ref.lse) if (l === -Infinity) masked++;
      t.log(`${masked} fully masked rows of ${want.ref.lse.length}`);
      for (const backend of BACKENDS) {
        const bytes: Buffer[] = [];
        for (const threads of [1, 2]) {
          const out = join(dir, `${backend}-${threads}.npy`);
          const lse = join(dir, `${backend}-${threads}-lse.npy`);
          await runLocal(
            {
              q: join(dir, 'q.npy'),
              k: join(dir, 'k.npy'),
              v: join(dir, 'v.npy'),
              out,
              lse,
              options: { causal: c.causal, ...(c.window ? { window: { left: c.window[0], right: c.window[1] } } : {}), pattern: c.pattern },
              backend,
              blockQ: 16,
              blockK: 24,
            },
            { threads },
          );
          const got = exactness({ out: readTensor(out).data, lse: readTensor(lse).data }, want);
          t.true(got.exact, `${backend}, ${threads} thread(s): err ${got.err} (bound ${want.bound}), lse err ${got.lseErr}`);
          bytes.push(Buffer.concat([readFileSync(out), readFileSync(lse)]));
        }
        t.true(bytes[0]!.equals(bytes[1]!), `${backend}: the same bits on 1 and 2 threads`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
