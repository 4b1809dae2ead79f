import test from 'ava';
import { plan, validateSpec, type AttentionSpec, type Tile } from '../src/index.ts';
import { patternTiles } from '../src/pattern-tiles.ts';

// A pattern plan keeps the tiles it counted (planner.ts, KEPT_PATTERN_TILES) and hands them out
// again for every head and batch whose tiles are the same: each block's tiles must be exactly what
// generating them for that block's own (b, h, kvh) gives.

const shapes = { q: [2, 4, 150, 8], k: [2, 2, 150, 8], v: [2, 2, 150, 8] };

/** Per-head block mask [4, nQb, nKb], block 16: head h sees its diagonal blocks and block (h mod nKb). */
function perHeadMask(heads: number, n: number, block: number): { block: number; shape: number[]; cells: number[] } {
  const nb = Math.ceil(n / block);
  const cells: number[] = [];
  for (let h = 0; h < heads; h++)
    for (let qb = 0; qb < nb; qb++) for (let kb = 0; kb < nb; kb++) cells.push(kb === qb || kb === h % nb ? 1 : 0);
  return { block, shape: [heads, nb, nb], cells };
}

const cases: [string, AttentionSpec][] = [
  [
    'causal + window (20,0) + sinks 3 + globals 5,6,90',
    validateSpec(shapes, { causal: true, window: { left: 20, right: 0 }, pattern: { sinks: 3, global: [5, 6, 90] } }),
  ],
  ['per-head block mask, block 16', validateSpec(shapes, { pattern: { blockMask: perHeadMask(4, 150, 16) } })],
];

for (const [name, spec] of cases) {
  test(`pattern plan: kept tiles equal the tiles generated for each block's own head and batch — ${name}`, (t) => {
    const blockQ = 32;
    const blockK = 24;
    const p = plan(spec, { blockQ, blockK });
    let tiles = 0;
    for (let index = 0; index < p.qBlockCount; index++) {
      const block = p.block(index);
      const want: Tile[] = patternTiles(spec, blockQ, blockK, block.qBlock, block.rows, {
        b: block.b,
        h: block.h,
        kvh: Math.floor(block.h / 2),
      });
      // The plan also marks sole tiles (its rows' only tile; test/patterns/sole-tiles.test.ts): compared without the mark.
      const unmarked = (tiles: readonly Tile[]) => tiles.map(({ sole: _, ...tile }) => tile);
      t.deepEqual(unmarked(block.tiles), want, `block ${index} (b ${block.b}, h ${block.h}, q-block ${block.qBlock})`);
      t.deepEqual(unmarked(p.block(index).tiles), want, `block ${index} asked for again`);
      tiles += block.tiles.length;
    }
    t.is(tiles, p.tileCount);
    t.true(new Set(Array.from({ length: p.qBlockCount }, (_, i) => p.block(i).b)).size === 2, 'both batches planned');
  });
}
