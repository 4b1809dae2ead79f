import test from 'ava';
import { addInto, addStates, emptyState, keyState, LINEAR_BLOCKS, plan, validateSpec, type LinearState } from '../src/index.ts';

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31) * 4 - 2;
  });
}

test('addStates sums from zero in kStart order: the same bits whatever order the states come in', (t) => {
  const D = 7;
  const k = random(50 * D, 1);
  const v = random(50 * D, 2);
  const parts: LinearState[] = [];
  for (let from = 0; from < 50; from += 9) {
    const n = Math.min(9, 50 - from);
    parts.push(keyState(k.subarray(from * D, (from + n) * D), v.subarray(from * D, (from + n) * D), n, D, from));
  }
  const inOrder = addStates(parts);
  const shuffled = addStates([parts[3]!, parts[0]!, parts[5]!, parts[1]!, parts[4]!, parts[2]!]);
  t.true(Buffer.from(inOrder.s.buffer).equals(Buffer.from(shuffled.s.buffer)));
  t.true(Buffer.from(inOrder.z.buffer).equals(Buffer.from(shuffled.z.buffer)));
  t.is(inOrder.keys, 50);
  // The sum of the parts is the state of all the keys (to float64 rounding).
  const whole = keyState(k, v, 50, D, 0);
  for (let i = 0; i < D * D; i++) t.true(Math.abs(whole.s[i]! - inOrder.s[i]!) < 1e-12);
});

test('addInto refuses a state that does not follow the keys summed so far', (t) => {
  const a = keyState(random(3 * 4, 3), random(3 * 4, 4), 3, 4, 0);
  const gap = keyState(random(2 * 4, 5), random(2 * 4, 6), 2, 4, 4);
  t.throws(() => addInto(a, gap), { message: /do not follow \[0, 3\)/ });
  t.throws(() => addInto(emptyState(5), a), { message: /D 4 differs from 5/ });
});

test('linearPlan: per row, the state tile and the exact tile cover exactly the keys the row may see, once', (t) => {
  for (const [Sq, Sk, causal, blockQ, blockK] of [
    [37, 91, true, 8, 16],
    [91, 37, true, 16, 8],
    [50, 50, true, 64, 64],
    [33, 70, false, 8, 32],
    [64, 64, true, 7, 5],
  ] as const) {
    const spec = validateSpec({ q: [2, Sq, 6], k: [1, Sk, 6], v: [1, Sk, 6] }, { causal, linear: true });
    const p = plan(spec, { blockQ, blockK });
    let tiles = 0;
    for (const block of p.blocks()) {
      tiles += block.tiles.length;
      t.is(p.tilesIn(block.index), block.tiles.length);
      for (let r = block.qStart; r < block.qStart + block.rows; r++) {
        const last = causal ? Math.min(Sk - 1, r + Sk - Sq) : Sk - 1;
        const covered: number[] = [];
        for (const tile of block.tiles) {
          const end = tile.full ? tile.kStart + tile.keys - 1 : Math.min(tile.kStart + tile.keys - 1, last);
          if (tile.full) t.true(end <= last, 'a state tile holds only keys every row sees');
          if (tile.full) t.is((tile.kStart + tile.keys) % blockK === 0 || tile.kStart + tile.keys === Sk, true);
          for (let j = tile.kStart; j <= end; j++) covered.push(j);
        }
        t.deepEqual(
          covered,
          Array.from({ length: last + 1 }, (_, j) => j),
          `Sq ${Sq} Sk ${Sk} row ${r}`,
        );
      }
    }
    t.is(p.tileCount, tiles);
    t.is(p.skippedTiles, 0);
  }
  t.deepEqual(LINEAR_BLOCKS, { blockQ: 64, blockK: 64 });
});

test('validateSpec: --linear with a window, a pattern or a scale names the flag', (t) => {
  const shapes = { q: [4, 3], k: [4, 3], v: [4, 3] };
  t.throws(() => validateSpec(shapes, { linear: true, window: { left: 2, right: 0 } }), { message: /^--window: not with --linear/ });
  t.throws(() => validateSpec(shapes, { linear: true, pattern: { stride: 2 } }), { message: /^--stride: not with --linear/ });
  t.throws(() => validateSpec(shapes, { linear: true, scale: 1 }), { message: /^--scale: not with --linear/ });
  t.true(validateSpec(shapes, { linear: true, causal: true }).linear);
});
