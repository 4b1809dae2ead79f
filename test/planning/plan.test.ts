import test from 'ava';
import {
  keyHigh,
  keyLow,
  maskRule,
  plan,
  validateSpec,
  visiblePairs,
  type AttentionSpec,
  type MaskRule,
  type Tile,
} from '@longattn/attention';
import { mulberry32 } from '@longattn/tensor';

/**
 * The lazy plan against the tile grid written here from the definitions (docs/math.md): for each
 * (b, h, row block), each key block (aligned to blockK; under a left-bounded window, counted from
 * the first key the row block sees) trimmed to the keys some row sees, kept when a pair
 * in it is visible, `full` when every pair is, flops = 4·D·visible pairs — counted pair by pair;
 * `sole` when it is its row block's only tile (its partial is the rows' output, merged with nothing).
 */
function eagerTiles(spec: AttentionSpec, blockQ: number, blockK: number): Tile[][] {
  const rule = maskRule(spec);
  const sees = (i: number, j: number) => j >= 0 && j < spec.Sk && j >= keyLow(rule, i) && j <= keyHigh(rule, i);
  const blocks: Tile[][] = [];
  for (let b = 0; b < spec.B; b++) {
    for (let h = 0; h < spec.H; h++) {
      for (let qb = 0; qb * blockQ < spec.Sq; qb++) {
        const qStart = qb * blockQ;
        const rows = Math.min(blockQ, spec.Sq - qStart);
        const tiles: Tile[] = [];
        let origin = 0;
        if (rule.left !== Infinity) {
          while (origin < spec.Sk && !Array.from({ length: rows }, (_, r) => sees(qStart + r, origin)).some(Boolean)) origin++;
        }
        for (let kb = 0; origin + kb * blockK < spec.Sk; kb++) {
          const keys: number[] = [];
          for (let j = origin + kb * blockK; j < Math.min(origin + (kb + 1) * blockK, spec.Sk); j++) {
            for (let i = qStart; i < qStart + rows; i++) {
              if (sees(i, j)) {
                keys.push(j);
                break;
              }
            }
          }
          if (keys.length === 0) continue;
          const kStart = keys[0]!;
          const n = keys.at(-1)! - kStart + 1;
          let visible = 0;
          for (let i = qStart; i < qStart + rows; i++) for (let j = kStart; j < kStart + n; j++) if (sees(i, j)) visible++;
          const kvh = Math.floor(h / (spec.H / spec.Hk));
          tiles.push({
            b,
            h,
            kvh,
            qBlock: qb,
            qStart,
            rows,
            kBlock: kb,
            kStart,
            keys: n,
            full: visible === rows * n,
            flops: 4 * visible * spec.D,
          });
        }
        blocks.push(tiles.length === 1 ? [{ ...tiles[0]!, sole: true }] : tiles);
      }
    }
  }
  return blocks;
}

const cases: [string, AttentionSpec, number, number][] = [
  ['dense 113×203 d5, 37×50', validateSpec({ q: [2, 3, 113, 5], k: [2, 1, 203, 5], v: [2, 1, 203, 5] }), 37, 50],
  ['causal Sq<Sk 100×131, 17×23', validateSpec({ q: [2, 100, 3], k: [1, 131, 3], v: [1, 131, 3] }, { causal: true }), 17, 23],
  ['causal Sq>Sk 131×100, 16×16', validateSpec({ q: [131, 3], k: [100, 3], v: [100, 3] }, { causal: true }), 16, 16],
  ['window (3,2) 90×90, 7×11', validateSpec({ q: [90, 3], k: [90, 3], v: [90, 3] }, { window: { left: 3, right: 2 } }), 7, 11],
  ['causal+(9,0) 90×77, 1×8', validateSpec({ q: [90, 3], k: [77, 3], v: [77, 3] }, { causal: true, window: { left: 9, right: 0 } }), 1, 8],
  ['window (0,40) 60×200, 64×1', validateSpec({ q: [60, 3], k: [200, 3], v: [200, 3] }, { window: { left: 0, right: 40 } }), 64, 1],
  [
    'causal, Sq far above Sk 300×20 (rows see nothing), 13×4',
    validateSpec({ q: [300, 2], k: [20, 2], v: [20, 2] }, { causal: true }),
    13,
    4,
  ],
];

for (const [name, spec, blockQ, blockK] of cases) {
  test(`${name}: the lazy plan is the grid from the definitions, tile for tile, with the same totals`, (t) => {
    const eager = eagerTiles(spec, blockQ, blockK);
    const p = plan(spec, { blockQ, blockK });
    t.is(p.qBlockCount, eager.length);
    t.is(p.qBlocksPerHead, Math.ceil(spec.Sq / blockQ));
    for (let i = 0; i < eager.length; i++) {
      const block = p.block(i);
      t.deepEqual(block.tiles, eager[i]!, `q-block ${i}`);
      t.deepEqual(p.block(i), block, 'the same tiles every time');
      t.is(p.tilesIn(i), eager[i]!.length);
      t.is(
        p.flopsIn(i),
        eager[i]!.reduce((s, tile) => s + tile.flops, 0),
      );
      t.like(p.locate(i), { index: i, b: block.b, h: block.h, qBlock: block.qBlock, qStart: block.qStart, rows: block.rows });
    }
    const all = eager.flat();
    t.is(p.tileCount, all.length);
    t.is(
      p.flops,
      all.reduce((s, tile) => s + tile.flops, 0),
    );
    t.is(p.skippedTiles, eager.length * Math.ceil(spec.Sk / blockK) - all.length);
    t.deepEqual(
      [...p.blocks()].map((b) => b.tiles),
      eager,
    );
    t.throws(() => p.block(eager.length), { instanceOf: RangeError });
  });
}

test('keepBlock (block-sparse): the same tiles as the grid filtered, totals counted over them', (t) => {
  const spec = cases[1]![1];
  const keep = (qb: number, kb: number) => (qb * 7 + kb * 3) % 4 !== 0;
  const p = plan(spec, { blockQ: 17, blockK: 23, keepBlock: keep });
  const eager = eagerTiles(spec, 17, 23).map((tiles) => tiles.filter((tile) => keep(tile.qBlock, tile.kBlock)));
  for (let i = 0; i < eager.length; i++) {
    t.deepEqual(p.block(i).tiles, eager[i]!);
    t.is(p.tilesIn(i), eager[i]!.length);
  }
  t.is(p.tileCount, eager.flat().length);
  t.is(
    p.flops,
    eager.flat().reduce((s, tile) => s + tile.flops, 0),
  );
});

test('visiblePairs (closed form) equals counting pair by pair, on 3000 random rules and ranges', (t) => {
  const next = mulberry32(7);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  for (let n = 0; n < 3000; n++) {
    const side = () => (next() < 0.3 ? Infinity : int(0, 40));
    const rule: MaskRule = { diag: int(-50, 50), left: side(), right: next() < 0.3 ? 0 : side() };
    const [qStart, rows, kStart, keys] = [int(0, 80), int(0, 60), int(0, 80), int(0, 60)];
    let want = 0;
    for (let i = qStart; i < qStart + rows; i++)
      for (let j = kStart; j < kStart + keys; j++) if (j >= keyLow(rule, i) && j <= keyHigh(rule, i)) want++;
    const got = visiblePairs(rule, qStart, rows, kStart, keys);
    if (got !== want) return t.fail(`rule ${JSON.stringify(rule)} rows ${qStart}+${rows} keys ${kStart}+${keys}: ${got} ≠ ${want}`);
  }
  t.pass();
});

test('planning 10M causal tokens with default tiles holds no tile: ~0.1 s, a few MB, totals exact', (t) => {
  const n = 10_000_000;
  const spec = validateSpec({ q: [n, 1], k: [n, 1], v: [n, 1] }, { causal: true });
  globalThis.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const p = plan(spec, { blockQ: 256, blockK: 2048 });
  const ms = performance.now() - started;
  const grownMB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  // Rows 0 … n−1 see i + 1 keys: n(n+1)/2 pairs, 4·D FLOP each.
  t.is(p.flops, 4 * ((n * (n + 1)) / 2));
  // q-block qb (rows 256·qb … 256·qb+255) sees keys 0 … 256·qb+255: ⌊(256·qb+255)/2048⌋ + 1 key blocks.
  let tiles = 0;
  for (let qb = 0; qb < Math.ceil(n / 256); qb++) tiles += Math.floor(Math.min(n - 1, 256 * qb + 255) / 2048) + 1;
  t.is(p.tileCount, tiles);
  t.is(p.qBlockCount, 39063);
  t.true(ms < 2000, `planning took ${ms.toFixed(0)} ms`); // measured ~10 ms; the eager planner ran out of heap after 69 s
  t.true(grownMB < 16, `planning grew the heap by ${grownMB.toFixed(1)} MB`);
  t.log(`10M causal: ${p.tileCount} tiles in ${p.qBlockCount} q-blocks, planned in ${ms.toFixed(1)} ms, heap +${grownMB.toFixed(1)} MB`);
  // One q-block's tiles are generated on demand: the last (heaviest) one has ⌈n / 2048⌉ tiles.
  const last = p.block(p.qBlockCount - 1);
  t.is(last.tiles.length, Math.ceil(n / 2048));
  t.true(last.tiles.every((tile, i) => tile.kBlock === i && tile.kStart === i * 2048));
});
