import test from 'ava';
import { exactnessBound, keyHigh, keyLow, maskRule, maxAbsDiff, naiveFloat32Attention, referenceAttention } from '@longattn/attention';
import { getBackend } from '@longattn/kernels';
import { attend, makeCase } from './support.ts';

// ort's masked graph clips S − m to [−87, 0] before Exp (tile-graph.ts: MLAS's Exp is slow below
// −87.3) and zeroes masked entries with Where: visible keys far below their row's maximum must
// still come out exact, and rows that see no key o = 0, lse = −∞.
test('ort masked tiles stay exact where visible scores lie more than 87 below their row maximum', async (t) => {
  const c = makeCase(230, 181, 16, { causal: true, scale: 4 }, 7); // rows i < 49 see no key
  const { spec } = c;
  const rule = maskRule(spec);
  let farBelow = 0; // visible pairs whose score is more than 87 under their row's max (float64)
  for (let i = 0; i < spec.Sq; i++) {
    const scores: number[] = [];
    for (let j = Math.max(0, keyLow(rule, i)); j <= Math.min(spec.Sk - 1, keyHigh(rule, i)); j++) {
      let s = 0;
      for (let d = 0; d < spec.D; d++) s += c.q[i * spec.D + d]! * c.k[j * spec.D + d]!;
      scores.push(spec.scale * s);
    }
    const m = Math.max(...scores);
    farBelow += scores.filter((s) => s - m < -87).length;
  }
  t.true(farBelow > 100, `the case reaches the clip (${farBelow} pairs)`);
  const kernel = await getBackend('ort').create({ threads: 1 });
  try {
    for (const [blockQ, blockK] of [
      [230, 181],
      [64, 48],
    ] as const) {
      const ours = await attend(kernel, c, blockQ, blockK);
      const ref = referenceAttention(spec, c.q, c.k, c.v);
      const naive = naiveFloat32Attention(spec, c.q, c.k, c.v);
      t.true(
        maxAbsDiff(ours.out, ref.out) <= exactnessBound(naive.out, ref.out),
        `out ${maxAbsDiff(ours.out, ref.out)} (${blockQ}×${blockK})`,
      );
      t.true(maxAbsDiff(ours.lse, ref.lse) <= 1e-4, `lse ${maxAbsDiff(ours.lse, ref.lse)} (${blockQ}×${blockK})`);
      t.true(ours.lse.subarray(0, 49).every((x) => x === -Infinity));
      t.true(ours.out.subarray(0, 49 * 16).every((x) => x === 0));
      t.false(ours.out.some(Number.isNaN) || ours.lse.some(Number.isNaN), 'no NaN');
    }
  } finally {
    await kernel.dispose?.();
  }
});
