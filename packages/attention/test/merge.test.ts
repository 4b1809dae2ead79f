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

/**
 * The merge formula as written in merge.ts's doc, term by term over widened partials in kStart
 * order (acc from +0, float64, no shortcut): the fast paths (one partial, one partial per row)
 * must give its values exactly — Object.is per element: −0 ≠ +0, NaN = NaN (a NaN's payload bits
 * depend on the operation that made it, which is not part of the formula).
 */
function formulaMerge(partials: TilePartial[]): TilePartial {
  const parts = [...partials].sort((a, b) => a.kStart - b.kStart).map(widenPartial);
  const { rows, D } = parts[0]!;
  const o = new Float32Array(rows * D);
  const lse = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (const p of parts) m = Math.max(m, p.lse[r]!);
    if (m === -Infinity) m = 0;
    const w = parts.map((p) => Math.exp(p.lse[r]! - m));
    const z = w.reduce((s, x) => s + x, 0);
    lse[r] = z === 0 ? -Infinity : m + Math.log(z);
    for (let d = 0; d < D; d++) {
      let acc = 0;
      parts.forEach((p, t) => {
        acc += (w[t]! / (z === 0 ? 1 : z)) * p.o[r * D + d]!;
      });
      o[r * D + d] = acc;
    }
  }
  return { rows, D, kStart: parts[0]!.kStart, o, lse };
}

/** Element by element with Object.is (see formulaMerge). */
const same = (a: TilePartial, b: TilePartial) =>
  a.rows === b.rows && a.D === b.D && [...a.o].every((x, i) => Object.is(x, b.o[i])) && [...a.lse].every((x, i) => Object.is(x, b.lse[i]));

test('one partial, rows of one partial and whole-row partials give the formula bit for bit (−0, −∞, NaN, +∞ rows; into dirty arrays)', (t) => {
  const D = 5;
  const special = (p: TilePartial) => {
    p.o.fill(-0, 0, D); // row 0: −0 values (the sum gives +0)
    p.lse[1] = -Infinity; // row 1: no key (o zeroed by its weight)
    p.lse[2] = Number.NaN; // rows 2, 3: non-finite LSE (--allow-nonfinite)
    p.lse[3] = Infinity;
    p.o[4 * D + 1] = Number.NaN; // row 4: finite LSE, NaN and −∞ in O
    p.o[4 * D + 2] = -Infinity;
    p.lse[5] = -0;
    return p;
  };
  const one = special(partial(3, [0.5, 1, 2, 3, -4, 7, 1e30, -88], D, 4));
  const into = { o: new Float32Array(8 * D + 3).fill(9), lse: new Float32Array(11).fill(9) };
  t.true(same(merge([one]), formulaMerge([one])));
  t.true(same(merge([one], into), formulaMerge([one])));
  t.true(Object.is(merge([one]).o[0], 0)); // −0 in, +0 out
  // Several partials over every row (the whole-rows pass), special rows in two of them.
  const whole = [special(partial(40, [1, 2, 3, 4, 5, 6, 7, 8], D, 8)), partial(8, [0, -1, 2, -3, 4, -5, 6, -7], D, 9), one];
  t.true(same(merge(whole), formulaMerge(whole)));
  t.true(same(merge(whole, into), formulaMerge(whole)));
  // Row groups: rows 0–3 from one partial, 4–7 from two, one row from none.
  const a = { ...special(partial(0, [0.5, 1, 2, 3], D, 5)), rows: 9, rowSpan: [0, 4] as [number, number] };
  const b = { ...partial(16, [2, -1, 0, 5], D, 6), rows: 9, rowSpan: [4, 4] as [number, number] };
  const c = { ...partial(32, [1, 1, -Infinity, 3], D, 7), rows: 9, rowSpan: [4, 4] as [number, number] };
  const expected = formulaMerge([a, b, c]);
  t.true(same(merge([c, a, b]), expected));
  t.true(same(merge([a, b, c], { o: new Float32Array(9 * D).fill(7), lse: new Float32Array(9).fill(7) }), expected));
  t.is(merge([a, b, c]).lse[8], -Infinity);
  // Row groups that tile the rows, one partial each (BigBird's q-blocks), special rows in one.
  const g0 = { ...a, rows: 8 };
  const g1 = { ...b, rows: 8 };
  t.true(same(merge([g1, g0]), formulaMerge([g0, g1])));
  t.true(same(merge([g0, g1], into), formulaMerge([g0, g1])));
});
