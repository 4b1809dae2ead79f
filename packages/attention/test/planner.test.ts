import test from 'ava';
import { keyHigh, keyLow, maskRule, plan, unmaskedFlops, validateSpec, type AttentionSpec } from '../src/index.ts';

const spec = (Sq: number, Sk: number, options: Parameters<typeof validateSpec>[1]): AttentionSpec =>
  validateSpec({ q: [2, Sq, 8], k: [1, Sk, 8], v: [1, Sk, 8] }, options);

const layouts: [string, AttentionSpec][] = [
  ['dense 100×130', spec(100, 130, {})],
  ['causal Sq<Sk', spec(100, 130, { causal: true })],
  ['causal Sq>Sk', spec(130, 100, { causal: true })],
  ['window (3,2)', spec(90, 90, { window: { left: 3, right: 2 } })],
  ['Mistral causal+(9,0)', spec(90, 90, { causal: true, window: { left: 9, right: 0 } })],
];

for (const [name, s] of layouts) {
  test(`${name}: every visible pair is in exactly one tile, no tile is empty`, (t) => {
    const p = plan(s, { blockQ: 17, blockK: 23 });
    const rule = maskRule(s);
    const seen = new Uint8Array(s.H * s.Sq * s.Sk);
    for (const qb of [...p.blocks()]) {
      for (const tile of qb.tiles) {
        let visible = 0;
        for (let i = tile.qStart; i < tile.qStart + tile.rows; i++) {
          for (let j = tile.kStart; j < tile.kStart + tile.keys; j++) {
            if (j >= keyLow(rule, i) && j <= keyHigh(rule, i)) {
              seen[(tile.h * s.Sq + i) * s.Sk + j]! += 1;
              visible++;
            }
          }
        }
        t.true(visible > 0, 'a tile the mask empties was produced');
        t.is(tile.full, visible === tile.rows * tile.keys);
      }
    }
    for (let h = 0; h < s.H; h++) {
      for (let i = 0; i < s.Sq; i++) {
        for (let j = 0; j < s.Sk; j++) {
          const want = j >= keyLow(rule, i) && j <= keyHigh(rule, i) ? 1 : 0;
          if (seen[(h * s.Sq + i) * s.Sk + j] !== want)
            return t.fail(`pair (${h},${i},${j}) covered ${seen[(h * s.Sq + i) * s.Sk + j]} times`);
        }
      }
    }
    t.is(p.flops, unmaskedFlops(s));
  });
}

test('causal skips the tiles above the diagonal', (t) => {
  const s = spec(1024, 1024, { causal: true });
  const p = plan(s, { blockQ: 128, blockK: 128 });
  t.is(p.tileCount, (2 * (8 * 9)) / 2); // 2 heads × lower triangle of an 8×8 grid incl. diagonal
  t.true([...p.blocks()].every((qb) => qb.tiles.filter((tile) => !tile.full).length === 1));
});

test('GQA: query head h reads kv head ⌊h/(H/Hk)⌋', (t) => {
  const s = validateSpec({ q: [6, 10, 4], k: [2, 10, 4], v: [2, 10, 4] });
  const p = plan(s, { blockQ: 10, blockK: 10 });
  t.deepEqual(
    [...p.blocks()].map((qb) => qb.tiles[0]!.kvh),
    [0, 0, 0, 1, 1, 1],
  );
});

test('block-sparse keepBlock drops tiles', (t) => {
  const s = spec(64, 64, {});
  const p = plan(s, { blockQ: 16, blockK: 16, keepBlock: (qb, kb) => qb === kb });
  t.is(p.tileCount, 2 * 4);
});

test('bad block sizes are refused', (t) => {
  t.throws(() => plan(spec(8, 8, {}), { blockQ: 0, blockK: 4 }), { message: /blockQ/ });
  t.throws(() => plan(spec(8, 8, {}), { blockQ: 4, blockK: 1.5 }), { message: /blockK/ });
});
