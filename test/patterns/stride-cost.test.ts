import test from 'ava';
import { plan, strideBlocks, validateSpec } from '@longattn/attention';
import { heaviestFirst } from '../../packages/engine/src/local/block-order.ts';

/**
 * Cost follows the stride (docs/math.md, "Cost follows the pattern"): under a stride the planner
 * gathers each residue class's rows and keys into dense tiles, so the stride's work is computed on
 * tiles about as large as its visible area, in calls of many rows — not on the q-block grid, where
 * a class has blockQ / S rows per q-block and every key block of the row's past is masked but one in S.
 */
test('the benchmark row (causal, window (127, 0), stride 128) at n = 8192: stride tiles of 64 gathered rows, dispatched area ≤ 2.1× the stride pairs', (t) => {
  const n = 8192;
  const S = 128;
  const spec = validateSpec(
    { q: [1, n, 64], k: [1, n, 64], v: [1, n, 64] },
    { causal: true, window: { left: 127, right: 0 }, pattern: { stride: S } },
  );
  const blocks = strideBlocks(spec, { blockQ: 256, blockK: 2048 });
  t.deepEqual(blocks, { blockQ: n, blockK: 2048 }, 'q-blocks of S · 128 rows, at most the sequence');
  const p = plan(spec, blocks);
  let strideArea = 0;
  let stridePairs = 0;
  let strideTiles = 0;
  let minRows = Infinity;
  for (const block of p.blocks()) {
    for (const tile of block.tiles) {
      if (!tile.keyStep) continue;
      strideTiles++;
      const rows = tile.rowSpan![1];
      minRows = Math.min(minRows, rows);
      strideArea += rows * tile.keys;
      stridePairs += tile.flops / (4 * spec.D);
    }
  }
  // The rule's stride pairs outside the window: row i sees j = i − 128·m, m ≥ 1 (j ≥ 0); each is one pair of a stride tile.
  let want = 0;
  for (let i = 0; i < n; i++) want += Math.floor(i / S);
  t.is(stridePairs, want);
  t.is(strideTiles, S, 'one tile per class: its 64 rows against its keys');
  t.is(minRows, n / S);
  t.true(strideArea <= 2.1 * stridePairs, `stride tiles computed ${strideArea} pairs for ${stridePairs} visible`);
});

/**
 * The local engine's order under a stride (block-order.ts): a strided q-block's work grows with its
 * row (each class's rows see more keys) while its tile count steps only with its key chunks, so the
 * q-blocks go heaviest first by FLOPs — by tile count, n = 65536 ran them lightest first.
 */
test('the local engine runs strided q-blocks heaviest first by FLOPs', (t) => {
  const n = 65536;
  const spec = validateSpec(
    { q: [1, n, 64], k: [1, n, 64], v: [1, n, 64] },
    { causal: true, window: { left: 127, right: 0 }, pattern: { stride: 128 } },
  );
  const p = plan(spec, strideBlocks(spec, { blockQ: 256, blockK: 2048 }));
  t.is(p.qBlockCount, 4);
  const order = [...heaviestFirst(p)];
  t.deepEqual(order, [3, 2, 1, 0]);
  for (let x = 1; x < order.length; x++) t.true(p.flopsIn(order[x - 1]!) > p.flopsIn(order[x]!));
  t.is(new Set(Array.from({ length: 4 }, (_, qb) => p.tilesIn(qb))).size, 1, 'equal tile counts: the count alone cannot rank them');
});
