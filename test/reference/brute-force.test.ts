/**
 * The library's float64 reference (and its planner's mask) against an independent brute force
 * written from the definitions (test/support/reference64.ts), on odd shapes; then `longattn run`
 * outputs against the brute force with the exactness rule.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { referenceAttention, unmaskedFlops, validateSpec, type SpecOptions } from '@longattn/attention';
import { readTensor } from '@longattn/tensor';
import { BRUTE_CASES, bruteFlags, bruteInputs, bruteShapes, writeBruteCase } from '../support/brute-cases.ts';
import { CASES, caseShapes } from '../support/cases.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { bruteAttention, exactness, visible, type BruteSpec } from '../support/reference64.ts';

function libraryOptions(s: BruteSpec): SpecOptions {
  return {
    layout: s.layout,
    causal: s.causal,
    ...(s.window ? { window: { left: s.window[0], right: s.window[1] } } : {}),
    ...(s.scale !== undefined ? { scale: s.scale } : {}),
  };
}

/** The visible-key matrix of a spec as text rows of 0/1. */
function maskText(s: Pick<BruteSpec, 'Sq' | 'Sk' | 'causal' | 'window'>): string[] {
  return Array.from({ length: s.Sq }, (_, i) => Array.from({ length: s.Sk }, (_, j) => (visible(s, i, j) ? '1' : '0')).join(''));
}

test('the brute force’s mask matches the definitions’ worked examples', (t) => {
  // FlashAttention ≥ 2.1's README: causal with Sq = 2, Sk = 5, and Sq = 5, Sk = 2 (bottom-right).
  t.deepEqual(maskText({ Sq: 2, Sk: 5, causal: true }), ['11110', '11111']);
  t.deepEqual(maskText({ Sq: 5, Sk: 2, causal: true }), ['00', '00', '00', '10', '11']);
  // Window (1, 0) on a square: the key at the query's position and one to its left.
  t.deepEqual(maskText({ Sq: 4, Sk: 4, causal: false, window: [1, 0] }), ['1000', '1100', '0110', '0011']);
  // −1 is unbounded on its side: (-1, 1) sees every earlier key and one later.
  t.deepEqual(maskText({ Sq: 3, Sk: 4, causal: false, window: [-1, 1] }), ['1110', '1111', '1111']);
  t.deepEqual(maskText({ Sq: 3, Sk: 4, causal: false, window: [0, -1] }), ['0111', '0011', '0001']);
  // Causal forces right = min(right, 0): Mistral's W = 2 is causal + (1, 0), and (1, 5) is the same.
  const mistral = maskText({ Sq: 4, Sk: 4, causal: true, window: [1, 0] });
  t.deepEqual(mistral, ['1000', '1100', '0110', '0011']);
  t.deepEqual(maskText({ Sq: 4, Sk: 4, causal: true, window: [1, 5] }), mistral);
  t.deepEqual(maskText({ Sq: 4, Sk: 4, causal: true, window: [-1, -1] }), maskText({ Sq: 4, Sk: 4, causal: true }));
});

test('the brute force on a hand-computed case: GQA head map, bshd placement, scale, masked row', (t) => {
  // bshd [B=1, S, H, D=1], H = 2 query heads on Hk = 1 kv head, causal with Sq = 2 > Sk = 1:
  // row 0 sees nothing (out 0, lse −∞); row 1 sees key 0 alone: out = v0, lse = s·q·k0.
  const spec: BruteSpec = { layout: 'bshd', B: 1, H: 2, Hk: 1, Sq: 2, Sk: 1, D: 1, causal: true, scale: 0.5 };
  const r = bruteAttention(spec, [9, 9, 2, 4], [3], [7]); // q[s][h]: (0,0)=9 (0,1)=9 (1,0)=2 (1,1)=4
  t.deepEqual([...r.out], [0, 0, 7, 7]);
  t.deepEqual([...r.lse], [-Infinity, 0.5 * 2 * 3, -Infinity, 0.5 * 4 * 3]); // lse is [B, H, Sq]
  // Two kv heads, four query heads: heads 0,1 read kv head 0 and heads 2,3 read kv head 1.
  const gqa: BruteSpec = { layout: 'bhsd', B: 1, H: 4, Hk: 2, Sq: 1, Sk: 2, D: 1, causal: false, scale: 1 };
  const g = bruteAttention(gqa, [0, 0, 0, 0], [1, 1, 1, 1], [1, 3, 10, 30]);
  t.deepEqual([...g.out], [2, 2, 20, 20]);
  t.deepEqual([...g.lse], Array(4).fill(Math.log(2)));
});

for (const c of BRUTE_CASES) {
  test(`library reference = brute force: ${c.name}`, (t) => {
    const s = c.spec;
    const { q, k, v } = bruteInputs(s);
    const lib = referenceAttention(validateSpec(bruteShapes(s), libraryOptions(s)), q, k, v);
    const brute = bruteAttention(s, q, k, v);
    const masked = (lse: Float64Array) => [...lse].flatMap((x, n) => (x === -Infinity ? [n] : []));
    t.deepEqual(masked(lib.lse), masked(brute.lse), 'the same rows see no key');
    // Both are float64 sums over the same keys: only the order of a few roundings may differ.
    const { err, lseErr } = exactness(lib, { ref: brute, bound: 0 });
    t.true(err <= 1e-12, `max |out − brute| = ${err}`);
    t.true(lseErr <= 1e-12, `max |lse − brute| = ${lseErr}`);
  });

  test(`planner's unmasked work = brute force's visible pairs: ${c.name}`, (t) => {
    const s = c.spec;
    let pairs = 0;
    for (let i = 0; i < s.Sq; i++) for (let j = 0; j < s.Sk; j++) if (visible(s, i, j)) pairs++;
    t.is(unmaskedFlops(validateSpec(bruteShapes(s), libraryOptions(s))), 4 * pairs * s.D * s.H * s.B);
  });
}

// The shapes the backend conformance suite (test/conformance) trusts the library's reference on.
for (const c of CASES) {
  test(`library reference = brute force on the conformance case ${c.name}`, (t) => {
    const { window, layout, causal, scale } = c.options;
    const spec: BruteSpec = {
      layout: layout ?? 'bhsd',
      B: c.B ?? 1,
      ...{ H: c.H, Hk: c.Hk, Sq: c.Sq, Sk: c.Sk, D: c.D },
      causal: causal ?? false,
      ...(window ? { window: [window.left, window.right] as const } : {}),
      ...(scale !== undefined ? { scale } : {}),
    };
    t.deepEqual(libraryOptions(spec), { ...c.options, layout: spec.layout, causal: spec.causal }, 'the case converts as written');
    const { q, k, v } = bruteInputs(spec, 3);
    const lib = referenceAttention(validateSpec(caseShapes(c), c.options), q, k, v);
    const { err, lseErr } = exactness(lib, { ref: bruteAttention(spec, q, k, v), bound: 0 });
    t.true(err <= 1e-12 && lseErr <= 1e-12, `max |out − brute| = ${err}, max |lse − brute| = ${lseErr}`);
  });
}

const CLI_CASES = [
  'causal Sq>Sk 203×113 d59 (masked rows)',
  'window (-1,9) 150×180 d59',
  'MQA H5/Hk1 window (3,2) 61×45 d59',
  'bshd B2 GQA H6/Hk2 causal + window (9,-1) 71×53 d59',
  'bshd B3 MQA H4/Hk1 dense scale 0.37 33×47 d59',
];

for (const name of CLI_CASES) {
  test(`longattn run output = brute force (exactness rule): ${name}`, async (t) => {
    const c = BRUTE_CASES.find((x) => x.name === name)!;
    const dir = tempDir();
    try {
      const { files, ref, bound } = writeBruteCase(dir, c.spec);
      const out = join(dir, 'out.npy');
      const lse = join(dir, 'lse.npy');
      const r = await longattn([
        'run',
        ...['--q', files.q, '--k', files.k, '--v', files.v, '--out', out, '--lse', lse],
        ...bruteFlags(c.spec),
        ...['--backend', 'js', '--block-q', String(c.blockQ), '--block-k', String(c.blockK), '--threads', '2', '--quiet'],
      ]);
      t.is(r.code, 0, r.stderr);
      const o = readTensor(out);
      t.deepEqual(o.shape, bruteShapes(c.spec).q, 'O has Q’s shape and layout');
      const l = readTensor(lse);
      t.deepEqual(l.shape, [c.spec.B, c.spec.H, c.spec.Sq]);
      const e = exactness({ out: o.data, lse: l.data }, { ref, bound });
      t.true(e.exact, `max |O − ref| = ${e.err} (bound ${bound}), max |LSE − ref| = ${e.lseErr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
