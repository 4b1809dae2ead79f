import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { plan, validateSpec, type PatternOptions, type Tile } from '@longattn/attention';
import { runLocal, runLocalLse } from '@longattn/engine';
import { ortBackend, type TileJob } from '@longattn/kernels';
import { readTensor, writeTensor } from '@longattn/tensor';
import { randomTensor } from '../support/random.ts';
import { bruteWithBound, exactness } from '../support/reference64.ts';
import { tempDir } from '../support/cli.ts';

/**
 * Sole tiles (docs/math.md, "Sole tiles"): a tile that is its rows' only one gives their output as
 * it is, so ort forms its o with MultiHeadAttention; o has the same bits whether or not the LSE is
 * wanted (`run` with and without `--lse`), on 1 and 2 threads, and is exact against float64 written
 * here from the definition; the LSE, when wanted, has the bits of the LSE-only pass.
 */

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

test('planner: sole marks a q-block’s only tile, a row group’s only tile and band tiles — never a tile merged with another', (t) => {
  const spec = (shape: [number, number, number], options: Parameters<typeof validateSpec>[1]) =>
    validateSpec({ q: shape, k: shape, v: shape }, options);
  const tilesOf = (s: ReturnType<typeof spec>, blocks: { blockQ: number; blockK: number }) => [...plan(s, blocks).blocks()];
  // Causal, 4 key blocks: q-block 0 holds one tile (sole), the others several (none sole).
  const causal = tilesOf(spec([1, 256, 4], { causal: true }), { blockQ: 64, blockK: 64 });
  t.true(causal[0]!.tiles.length === 1 && causal[0]!.tiles[0]!.sole === true);
  t.true(causal.slice(1).every((b) => b.tiles.length > 1 && b.tiles.every((tile) => !tile.sole)));
  // A block mask: row groups of one tile each (gathered keys) are sole.
  const cells = Array.from({ length: 16 * 16 }, (_, n) => ((n * 7) % 5 === 0 || Math.floor(n / 16) === n % 16 ? 1 : 0));
  const masked = tilesOf(spec([1, 256, 4], { pattern: { blockMask: { block: 16, shape: [16, 16], cells } } }), { blockQ: 64, blockK: 512 });
  const groups = masked.flatMap((b) => b.tiles);
  t.true(groups.length > 0 && groups.every((tile) => tile.rowSpan && tile.sole));
  // blockK 16: a group's keys in several tiles, none sole.
  const split = tilesOf(spec([1, 256, 4], { pattern: { blockMask: { block: 16, shape: [16, 16], cells } } }), { blockQ: 64, blockK: 16 });
  t.true(split.flatMap((b) => b.tiles).every((tile: Tile) => !tile.sole));
  // A stride's tiles (rowStep) merge with the window's: none sole.
  const strided = tilesOf(spec([1, 512, 4], { causal: true, window: { left: 31, right: 0 }, pattern: { stride: 32 } }), {
    blockQ: 256,
    blockK: 2048,
  });
  const withStride = strided.filter((b) => b.tiles.some((tile) => tile.rowStep));
  t.true(withStride.length > 0 && withStride.every((b) => b.tiles.every((tile) => !tile.sole)));
});

test('ort: a sole mask-free tile (MultiHeadAttention) on odd shapes is exact vs float64; o bits the same with oOnly; lse bits those of the tile graph', async (t) => {
  const kernel = await ortBackend.create({ threads: 1 });
  try {
    for (const [rows, keys, D, scale] of [
      [37, 53, 9, 0.37],
      [1, 1, 1, 1],
      [64, 300, 80, 1 / Math.sqrt(80)],
      [5, 128, 128, 0.05],
    ] as const) {
      const q = randomTensor(rows * D, rows + 1, 2);
      const k = randomTensor(keys * D, keys + 2, 2);
      const v = randomTensor(keys * D, D + 3);
      const rule = { diag: 0, left: Infinity, right: Infinity };
      const job: TileJob = { rows, keys, D, scale, qStart: 0, kStart: 0, rule, full: true, q, k, v, finite: true, sole: true };
      const want = bruteWithBound({ layout: 'bhsd', B: 1, H: 1, Hk: 1, Sq: rows, Sk: keys, D, causal: false, scale }, q, k, v);
      const both = await kernel.run(job);
      const oOnly = await kernel.run({ ...job, oOnly: true });
      const graph = await kernel.run({ ...job, sole: false });
      const e = exactness({ out: both.o, lse: both.lse }, want);
      t.true(e.exact, `${rows}×${keys} D ${D}: err ${e.err} (bound ${want.bound}), lse err ${e.lseErr}`);
      t.true(bits(oOnly.o).equals(bits(both.o)), `${rows}×${keys}: o bits with and without lse`);
      t.true(bits(both.lse).equals(bits(graph.lse)), `${rows}×${keys}: lse bits = the tile graph's`);
      t.true(exactness({ out: graph.o }, want).exact);
    }
  } finally {
    await kernel.dispose?.();
  }
});

interface EngineCase {
  name: string;
  H: number;
  Hk: number;
  Sq: number;
  Sk: number;
  D: number;
  causal: boolean;
  window?: [number, number];
  pattern: PatternOptions;
  blocks: { blockQ: number; blockK: number };
  /** What sole tiles the plan must hold: band tiles, mask-free sole tiles, or none (a stride's tiles merge). */
  sole: 'band' | 'full' | 'none';
}

const CASES: EngineCase[] = [
  {
    name: 'causal + window (100,0) + 3 sinks, Sq < Sk, GQA 2/1 (band tiles)',
    H: 2,
    Hk: 1,
    Sq: 900,
    Sk: 933,
    D: 6,
    causal: true,
    window: [100, 0],
    pattern: { sinks: 3 },
    blocks: { blockQ: 128, blockK: 512 },
    sole: 'band',
  },
  {
    name: 'window (150,20) alone, no pattern (band tiles), n not a multiple of the block',
    H: 1,
    Hk: 1,
    Sq: 1000,
    Sk: 1000,
    D: 5,
    causal: false,
    window: [150, 20],
    pattern: {},
    blocks: { blockQ: 128, blockK: 512 },
    sole: 'band',
  },
  {
    name: 'block mask row groups (BigBird-shaped), D 9',
    H: 1,
    Hk: 1,
    Sq: 300,
    Sk: 310,
    D: 9,
    causal: false,
    pattern: {
      blockMask: {
        block: 16,
        shape: [19, 20],
        cells: Array.from({ length: 19 * 20 }, (_, n) => ((n * 13) % 7 < 2 || n % 21 === 0 ? 1 : 0)),
      },
    },
    blocks: { blockQ: 64, blockK: 512 },
    sole: 'full',
  },
  {
    name: 'dense, one key block per q-block, D 80, H 3',
    H: 3,
    Hk: 3,
    Sq: 150,
    Sk: 97,
    D: 80,
    causal: false,
    pattern: {},
    blocks: { blockQ: 32, blockK: 128 },
    sole: 'full',
  },
  {
    name: 'causal + window (63,0) + stride 64 (the window part planned apart: not sole)',
    H: 1,
    Hk: 1,
    Sq: 700,
    Sk: 700,
    D: 4,
    causal: true,
    window: [63, 0],
    pattern: { stride: 64 },
    blocks: { blockQ: 256, blockK: 2048 },
    sole: 'none',
  },
];

for (const c of CASES) {
  test.serial(
    `engine, ort: ${c.name} — o the same bits with and without --lse on 1 and 2 threads, exact vs float64; lse = the LSE-only pass`,
    async (t) => {
      const dir = tempDir('longattn-sole-');
      try {
        const options = {
          causal: c.causal,
          ...(c.window ? { window: { left: c.window[0], right: c.window[1] } } : {}),
          pattern: c.pattern,
        };
        const spec = validateSpec({ q: [c.H, c.Sq, c.D], k: [c.Hk, c.Sk, c.D], v: [c.Hk, c.Sk, c.D] }, options);
        const tiles = [...plan(spec, c.blocks).blocks()].flatMap((b) => b.tiles);
        const soles = tiles.filter((tile) => tile.sole && (c.sole === 'full' ? tile.full && !tile.band : tile.band));
        if (c.sole === 'none') t.true(tiles.every((tile) => !tile.sole) && tiles.some((tile) => tile.band));
        else t.true(soles.length > 0, `${soles.length} ${c.sole} sole tiles`);
        const q = randomTensor(c.H * c.Sq * c.D, 61, 2);
        const k = randomTensor(c.Hk * c.Sk * c.D, 62, 2);
        const v = randomTensor(c.Hk * c.Sk * c.D, 63);
        for (const [name, shape, data] of [
          ['q', [c.H, c.Sq, c.D], q],
          ['k', [c.Hk, c.Sk, c.D], k],
          ['v', [c.Hk, c.Sk, c.D], v],
        ] as const)
          writeTensor(join(dir, `${name}.npy`), shape, data);
        const inputs = { q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy'), options, backend: 'ort', ...c.blocks };
        const outs: Buffer[] = [];
        for (const threads of [1, 2]) {
          for (const lse of [false, true]) {
            const out = join(dir, `o-${threads}-${lse}.npy`);
            await runLocal({ ...inputs, out, ...(lse ? { lse: join(dir, `lse-${threads}.npy`) } : {}) }, { threads });
            outs.push(readFileSync(out));
          }
        }
        for (const [n, o] of outs.entries()) t.true(outs[0]!.equals(o), `o bits, run ${n}`);
        const want = bruteWithBound(
          {
            layout: 'bhsd',
            B: 1,
            H: c.H,
            Hk: c.Hk,
            Sq: c.Sq,
            Sk: c.Sk,
            D: c.D,
            causal: c.causal,
            ...(c.window ? { window: c.window } : {}),
            ...c.pattern,
          },
          q,
          k,
          v,
        );
        const lse = readTensor(join(dir, 'lse-2.npy')).data as Float32Array;
        const e = exactness({ out: readTensor(join(dir, 'o-2-true.npy')).data, lse }, want);
        t.true(e.exact, `err ${e.err} (bound ${want.bound}), lse err ${e.lseErr}`);
        t.true(readFileSync(join(dir, 'lse-1.npy')).equals(readFileSync(join(dir, 'lse-2.npy'))), 'lse bits on 1 and 2 threads');
        const pass = await runLocalLse({ q: inputs.q, k: inputs.k, options, backend: 'ort', ...c.blocks }, { threads: 2 });
        t.true(bits(pass.lse).equals(bits(lse)), 'the LSE-only pass gives run’s LSE bits');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
