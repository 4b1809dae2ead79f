import test from 'ava';
import { emptyPartial, merge, widenPartial, type TilePartial } from '../src/index.ts';

/** A partial with given lse per row and random-ish o. */
function partial(kStart: number, lse: number[], D: number, seed: number): TilePartial {
  const o = new Float32Array(lse.length * D).map((_, i) => Math.sin(seed * 7.1 + i * 0.37));
  return { rows: lse.length, D, kStart, o, lse: Float32Array.from(lse) };
}

const bits = (p: TilePartial) =>
  Buffer.concat([Buffer.from(p.o.buffer, p.o.byteOffset, p.o.byteLength), Buffer.from(p.lse.buffer, p.lse.byteOffset, p.lse.byteLength)]);

test('self-merge gives lse + log 2 and the same o', (t) => {
  const p = partial(0, [0.5, -3, 12], 4, 1);
  const m = merge([p, { ...p, kStart: 10 }]);
  for (let r = 0; r < 3; r++) t.true(Math.abs(m.lse[r]! - (p.lse[r]! + Math.LN2)) < 1e-6);
  for (let i = 0; i < p.o.length; i++) t.true(Math.abs(m.o[i]! - p.o[i]!) < 1e-6);
});

test('all −∞ partials give o = 0 and lse = −∞, no NaN', (t) => {
  const m = merge([emptyPartial(3, 5, 0), emptyPartial(3, 5, 8)]);
  t.deepEqual([...m.lse], [-Infinity, -Infinity, -Infinity]);
  t.true(m.o.every((x) => x === 0));
});

test('a −∞ partial does not change the other', (t) => {
  const p = partial(0, [1, 2], 3, 2);
  const m = merge([p, emptyPartial(2, 3, 5)]);
  t.deepEqual([...m.lse], [...p.lse]);
  t.deepEqual([...m.o], [...p.o]);
});

test('shuffled order is bitwise identical (merge sorts by kStart)', (t) => {
  const parts = [0, 1, 2, 3, 4, 5].map((i) => partial(i * 16, [i - 2, 0.5 * i, -i, 3], 6, i + 1));
  const expected = bits(merge(parts));
  for (const order of [
    [5, 4, 3, 2, 1, 0],
    [2, 0, 5, 1, 4, 3],
    [1, 3, 5, 0, 2, 4],
  ]) {
    t.true(bits(merge(order.map((i) => parts[i]!))).equals(expected));
  }
});

test('tree merge equals linear merge (to float32 rounding)', (t) => {
  const parts = [0, 1, 2, 3].map((i) => partial(i * 8, [i, -i, 2 * i], 5, i + 3));
  const linear = merge(parts);
  const tree = merge([merge(parts.slice(0, 2)), merge(parts.slice(2))]);
  for (let i = 0; i < linear.o.length; i++) t.true(Math.abs(linear.o[i]! - tree.o[i]!) < 1e-6);
  for (let i = 0; i < linear.lse.length; i++) t.true(Math.abs(linear.lse[i]! - tree.lse[i]!) < 1e-6);
});

test('merge refuses partials of different shapes', (t) => {
  t.throws(() => merge([emptyPartial(2, 3), emptyPartial(3, 3)]), { message: /differs/ });
  t.throws(() => merge([]), { message: /no partials/ });
});

test('row-span partials merge bit for bit as their widened forms, also into given arrays', (t) => {
  const rows = 7;
  const D = 3;
  // Spans inside the rows (odd sizes, one at the edge), lse with −∞ rows, a tiny one whose weight underflows, and o ≤ 0.
  const spans: [number, number][] = [
    [0, 7],
    [2, 3],
    [6, 1],
    [0, 2],
  ];
  const parts = spans.map(([from, count], n): TilePartial => {
    const lse = Array.from({ length: count }, (_, r) => (r === 1 && n === 1 ? -Infinity : n === 3 ? -800 : Math.cos(r + n) * 4));
    const inner = partial(n * 5, lse, D, n + 1);
    for (let x = 0; x < inner.o.length; x += 4) inner.o[x] = -Math.abs(inner.o[x]!);
    return { ...inner, rows, rowSpan: [from, count] };
  });
  const wide = merge(parts.map(widenPartial));
  t.is(widenPartial(parts[0]!).o.length, rows * D);
  t.true(bits(merge(parts)).equals(bits(wide)));
  const into = { o: new Float32Array(rows * D + 5), lse: new Float32Array(rows + 2) };
  const placed = merge([...parts].reverse(), into);
  t.is(placed.o.buffer, into.o.buffer);
  t.true(bits(placed).equals(bits(wide)));
  // A NaN inside a span still reaches its row (--allow-nonfinite); rows outside every span stay o = 0, lse = −∞.
  const nan = { ...parts[1]!, o: parts[1]!.o.map((v, i) => (i === 0 ? Number.NaN : v)) };
  const withNan = merge([parts[2]!, nan]);
  t.true(Number.isNaN(withNan.o[2 * D]!));
  t.true(bits(withNan).equals(bits(merge([parts[2]!, nan].map(widenPartial)))));
  t.is(withNan.lse[0], -Infinity);
  t.true(withNan.o.subarray(0, D).every((v) => Object.is(v, 0)));
});

test('row-strided partials (stride tiles: rows from, from+step, …) merge bit for bit as their widened forms', (t) => {
  const rows = 11;
  const D = 3;
  // [from, count, step]: residue classes of step 3 and 4 (uneven counts), a band group, a whole-rows partial.
  const spans: [number, number, number][] = [
    [0, 4, 3],
    [1, 4, 3],
    [2, 3, 3],
    [3, 2, 4],
    [4, 5, 1],
    [0, 11, 1],
  ];
  const parts = spans.map(([from, count, step], n): TilePartial => {
    const lse = Array.from({ length: count }, (_, r) => (r === 1 && n === 2 ? -Infinity : Math.cos(r * 1.3 + n) * 5));
    const inner = partial(n * 3, lse, D, n + 2);
    return { ...inner, rows, rowSpan: [from, count], ...(step > 1 ? { rowStep: step } : {}) };
  });
  const wide = parts.map(widenPartial);
  // Widened: each of its rows in place, every other row o = 0, lse = −∞.
  t.is(wide[1]!.lse[4], parts[1]!.lse[1]);
  t.is(wide[1]!.lse[5], -Infinity);
  t.deepEqual([...wide[3]!.o.subarray(7 * D, 8 * D)], [...parts[3]!.o.subarray(D, 2 * D)]);
  t.true(bits(merge(parts)).equals(bits(merge(wide))));
  t.true(bits(merge([...parts].reverse())).equals(bits(merge(wide))));
});
