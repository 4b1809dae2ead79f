import test from 'ava';
import { InputError, validateSpec } from '../src/index.ts';

const ok = { q: [4, 10, 8], k: [2, 12, 8], v: [2, 12, 8] };

test('ranks, GQA and defaults', (t) => {
  const s = validateSpec(ok);
  t.like(s, { B: 1, H: 4, Hk: 2, Sq: 10, Sk: 12, D: 8, causal: false, layout: 'bhsd' });
  t.is(s.scale, 1 / Math.sqrt(8));
  t.deepEqual(s.window, { left: Infinity, right: Infinity });
  t.like(validateSpec({ q: [3, 5, 2, 8], k: [3, 7, 1, 8], v: [3, 7, 1, 8] }, { layout: 'bshd' }), { B: 3, H: 2, Hk: 1, Sq: 5, Sk: 7 });
  t.like(validateSpec({ q: [5, 8], k: [7, 8], v: [7, 8] }), { B: 1, H: 1, Sq: 5, Sk: 7 });
});

const bad: [string, Parameters<typeof validateSpec>[0], Parameters<typeof validateSpec>[1], RegExp][] = [
  ['rank 1', { q: [8], k: [8], v: [8] }, {}, /^q: expected rank/],
  ['rank 2 in bshd', { q: [5, 8], k: [5, 8], v: [5, 8] }, { layout: 'bshd' }, /^q: expected rank 3, 4/],
  ['ranks differ', { q: [4, 10, 8], k: [12, 8], v: [12, 8] }, {}, /^k: rank 2 differs/],
  ['head dim differs', { q: [4, 10, 8], k: [2, 12, 9], v: [2, 12, 9] }, {}, /^k: head dim 9/],
  ['v length differs', { q: [4, 10, 8], k: [2, 12, 8], v: [2, 11, 8] }, {}, /^v: sequence length 11/],
  ['H % Hk', { q: [3, 10, 8], k: [2, 12, 8], v: [2, 12, 8] }, {}, /^k: q's 3 heads are not a multiple of k's 2/],
  ['zero-length sequence', { q: [4, 0, 8], k: [2, 12, 8], v: [2, 12, 8] }, {}, /^q: every dimension must be ≥ 1/],
  ['window side < -1', ok, { window: { left: -2, right: 0 } }, /^--window: expected L,R/],
  ['scale NaN', ok, { scale: NaN }, /^--scale/],
];
for (const [name, shapes, options, message] of bad) {
  test(`refuses ${name}`, (t) => {
    const error = t.throws(() => validateSpec(shapes, options), { instanceOf: InputError, message });
    t.false(error!.message.includes('\n'));
  });
}
