import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { plan, tileKeySpans, validateSpec, type PatternOptions } from '@longattn/attention';
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
  /** Engine tile sizes of the backend test (default 16 × 24): a stride's classes then hold several rows of a q-block. */
  blocks?: { blockQ: number; blockK: number };
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
    name: 'causal + window (6,0) + sinks 2 + global rows 3,4,5 (a run) and 50, Sq < Sk',
    H: 1,
    Hk: 1,
    Sq: 71,
    Sk: 90,
    D: 6,
    causal: true,
    window: [6, 0],
    pattern: { sinks: 2, global: [3, 4, 5, 50] },
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
  {
    name: 'stride 3 ∪ window (2,1) ∪ sinks 2 ∪ globals 5,61, no causal, GQA 4/2, Sq < Sk',
    H: 4,
    Hk: 2,
    Sq: 70,
    Sk: 101,
    D: 5,
    causal: false,
    window: [2, 1],
    pattern: { stride: 3, sinks: 2, global: [5, 61] },
    blocks: { blockQ: 40, blockK: 24 },
  },
  {
    name: 'causal + stride 7 ∪ per-head block mask ∪ global 20, Sq > Sk (rows that see nothing)',
    H: 2,
    Hk: 1,
    Sq: 150,
    Sk: 120,
    D: 6,
    causal: true,
    pattern: { stride: 7, global: [20], blockMask: blockMask(2, 150, 120, 16, 5) },
    blocks: { blockQ: 64, blockK: 24 },
  },
  {
    name: 'stride 7 alone, no causal, Sq 90 × Sk 97',
    H: 1,
    Hk: 1,
    Sq: 90,
    Sk: 97,
    D: 3,
    causal: false,
    pattern: { stride: 7 },
    blocks: { blockQ: 50, blockK: 5 },
  },
  {
    name: 'causal + stride 128 + window (127, 0) (the benchmark row), 600 × 600',
    H: 1,
    Hk: 1,
    Sq: 600,
    Sk: 600,
    D: 4,
    causal: true,
    window: [127, 0],
    pattern: { stride: 128 },
    blocks: { blockQ: 512, blockK: 64 }, // the window's own tiles per 256 rows, 4 rows per class
  },
  {
    name: 'causal + stride 128 ∪ sinks 4, query offset (Sq 300, Sk 700)',
    H: 2,
    Hk: 1,
    Sq: 300,
    Sk: 700,
    D: 4,
    causal: true,
    pattern: { stride: 128, sinks: 4 },
    blocks: { blockQ: 299, blockK: 33 },
  },
  // Band tiles (docs/math.md, "Band tiles"): q-blocks whose rows are the shared keys plus their window run as
  // one tile of 64-row sub-blocks on ort (its band path), as their parts elsewhere; q-blocks at the ends,
  // with global rows or with a global key in the band keep the tiles planned without bands.
  {
    name: 'band tiles: window (20,13) + globals 0,1,2,300 (shared keys on both sides of some bands), GQA 2/1',
    H: 2,
    Hk: 1,
    Sq: 700,
    Sk: 721,
    D: 5,
    causal: false,
    window: [20, 13],
    pattern: { global: [0, 1, 2, 300] },
    blocks: { blockQ: 128, blockK: 512 },
  },
  {
    name: 'band tiles: causal + window (37,0) + sinks 3, Sq < Sk',
    H: 1,
    Hk: 1,
    Sq: 530,
    Sk: 555,
    D: 6,
    causal: true,
    window: [37, 0],
    pattern: { sinks: 3 },
    blocks: { blockQ: 64, blockK: 200 },
  },
  {
    name: 'band tiles: window (29,3) alone, no pattern (the planner window tiles), Sq 600 × Sk 611',
    H: 1,
    Hk: 1,
    Sq: 600,
    Sk: 611,
    D: 7,
    causal: false,
    window: [29, 3],
    pattern: {},
    blocks: { blockQ: 128, blockK: 256 },
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

/** Planner tile sizes of the tests: odd, so row groups, gathered runs and the blockK cut all land mid-pattern. */
const TILE_SIZES = [
  { blockQ: 13, blockK: 17 },
  { blockQ: 32, blockK: 7 },
  { blockQ: 61, blockK: 300 }, // several rows of a stride's residue class in one q-block
  { blockQ: 512, blockK: 100 }, // under a stride with a window alone: the window's own tiles per 256 rows (stride-tiles.ts)
  { blockQ: 128, blockK: 400 }, // band tiles (band-tiles.ts: rows a multiple of 64)
];

for (const c of CASES) {
  test(`planner: ${c.name} — every visible pair in exactly one tile, none masked in a full tile, flops pair by pair`, (t) => {
    const spec = specOf(c);
    const brute = bruteSpec(c);
    // Under a stride the tiles split the visible pairs in two (docs/math.md, "Cost follows the
    // pattern"): a row's intervals (the rule without the stride: window, sinks, globals, block
    // mask) in the intervals' tiles, its other stride keys in the stride tiles (keyStep).
    const { stride: _, ...bands } = brute;
    const hasBands = c.window !== undefined || bands.sinks !== undefined || bands.global !== undefined || bands.blockMask !== undefined;
    const inBands = (i: number, j: number, h: number) => hasBands && visible(bands, i, j, h);
    const sees = (tile: { keyStep?: number }, i: number, j: number, h: number) =>
      brute.stride === undefined ? visible(brute, i, j, h) : tile.keyStep ? visible(brute, i, j, h) && !inBands(i, j, h) : inBands(i, j, h);
    for (const blocks of TILE_SIZES) {
      const p = plan(spec, blocks);
      let tiles = 0;
      let flops = 0;
      let emptyCells = 0; // grid cells (q-block, aligned key block) without a visible pair: skippedTiles
      for (const block of p.blocks()) {
        // Pairs (row, key) of the q-block each tile covers, counted: every visible pair once, no masked pair in a full tile.
        const covered = new Uint8Array(block.rows * c.Sk);
        for (const tile of block.tiles) {
          const [from, count] = tile.rowSpan ?? [0, block.rows];
          const rowStep = tile.rowStep ?? 1;
          // A stride tile's keys kStart, +keyStep, … as one-key runs (its rows every rowStep-th of the span).
          const keys = tile.keyStep
            ? Array.from({ length: tile.keys }, (_, x) => [tile.kStart + x * tile.keyStep!, tile.kStart + x * tile.keyStep! + 1]).flat()
            : tileKeySpans(tile);
          if (tile.keyStep)
            t.true(tile.keyChunk![0] <= tile.kStart && keys[keys.length - 1]! <= tile.keyChunk![1], 'stride keys inside the chunk read');
          let width = 0;
          let seen = 0;
          for (let x = 0; x < keys.length; x += 2) {
            t.true(keys[x]! < keys[x + 1]! && (x === 0 || keys[x]! > keys[x - 1]!), 'runs non-empty, in key order, apart');
            width += keys[x + 1]! - keys[x]!;
            for (let n = 0; n < count; n++) {
              const r = from + n * rowStep;
              t.true(r < block.rows, 'rows inside the q-block');
              for (let j = keys[x]!; j < keys[x + 1]!; j++) {
                const v = sees(tile, block.qStart + r, j, block.h);
                if (tile.full) t.true(v, `full tile: row ${block.qStart + r} sees key ${j}`);
                if (!v) continue;
                covered[r * c.Sk + j]! += 1;
                seen++;
              }
            }
          }
          t.is(tile.kStart, keys[0]);
          t.is(tile.keys, width);
          t.true(width <= blocks.blockK, 'at most blockK keys');
          t.true(seen > 0, 'no empty tile dispatched');
          t.is(tile.flops, 4 * seen * c.D);
        }
        t.deepEqual(new Set(block.tiles.map((tile) => tile.kBlock)).size, block.tiles.length, 'kBlock unique in the q-block');
        for (let kb = 0; kb * blocks.blockK < c.Sk; kb++) {
          let any = false;
          for (let r = 0; r < block.rows && !any; r++) {
            for (let j = kb * blocks.blockK; j < Math.min(c.Sk, (kb + 1) * blocks.blockK) && !any; j++)
              any = visible(brute, block.qStart + r, j, block.h);
          }
          if (!any) emptyCells++;
        }
        for (let r = 0; r < block.rows; r++) {
          for (let j = 0; j < c.Sk; j++) {
            const want = visible(brute, block.qStart + r, j, block.h) ? 1 : 0;
            if (covered[r * c.Sk + j] !== want)
              t.fail(`q-block ${block.index}: pair (${block.qStart + r}, ${j}) covered ${covered[r * c.Sk + j]}×, want ${want}`);
          }
        }
        tiles += block.tiles.length;
        flops += block.tiles.reduce((s, tile) => s + tile.flops, 0);
        t.is(p.tilesIn(block.index), block.tiles.length);
      }
      t.is(p.tileCount, tiles);
      t.is(p.flops, flops);
      // Without a pattern skippedTiles counts the window's band-cut tiles, not aligned cells (planner.ts: headCells).
      if (Object.keys(c.pattern).length > 0) t.is(p.skippedTiles, emptyCells, 'skippedTiles: grid cells the pattern empties');
    }
  });
}

test('planner: the pattern tile kinds are all reached — row groups, gathered key runs, full and partial tiles', (t) => {
  const kinds = { rowSpan: 0, gathered: 0, full: 0, partial: 0 };
  for (const c of CASES) {
    for (const block of plan(specOf(c), TILE_SIZES[0]!).blocks()) {
      for (const tile of block.tiles) {
        if (tile.rowSpan) kinds.rowSpan++;
        if (tileKeySpans(tile).length > 2) kinds.gathered++;
        kinds[tile.full ? 'full' : 'partial']++;
      }
    }
  }
  t.log(kinds);
  for (const [kind, n] of Object.entries(kinds)) t.true(n > 0, `some ${kind} tile`);
});

const BACKENDS = ['js', 'wasm', 'ort', 'gpujs:webasm', 'gpujs:cpu'];

for (const c of CASES) {
  test.serial(
    `${c.name}: every backend within the exactness bound of the float64 rule, bitwise the same on 1, 2 (and under a stride 3) threads`,
    async (t) => {
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
          // A stride's q-blocks run their stride tiles together, reading each key chunk once (stride-block.ts): 3 threads too.
          const threadCounts = c.pattern.stride !== undefined ? [1, 2, 3] : [1, 2];
          for (const threads of threadCounts) {
            const out = join(dir, `${backend}-${threads}.npy`);
            const lse = join(dir, `${backend}-${threads}-lse.npy`);
            await runLocal(
              {
                q: join(dir, 'q.npy'),
                k: join(dir, 'k.npy'),
                v: join(dir, 'v.npy'),
                out,
                lse,
                options: {
                  causal: c.causal,
                  ...(c.window ? { window: { left: c.window[0], right: c.window[1] } } : {}),
                  pattern: c.pattern,
                },
                backend,
                ...(c.blocks ?? { blockQ: 16, blockK: 24 }),
              },
              { threads },
            );
            const got = exactness({ out: readTensor(out).data, lse: readTensor(lse).data }, want);
            t.true(got.exact, `${backend}, ${threads} thread(s): err ${got.err} (bound ${want.bound}), lse err ${got.lseErr}`);
            bytes.push(Buffer.concat([readFileSync(out), readFileSync(lse)]));
          }
          for (const [n, b] of bytes.entries())
            t.true(bytes[0]!.equals(b), `${backend}: the same bits on 1 and ${threadCounts[n]} threads`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
