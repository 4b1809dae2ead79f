import test from 'ava';
import { longattn, tempDir } from '../support/cli.ts';

/**
 * `longattn demo --layer` on a short document: the Mistral-shaped layer runs and its own check
 * (sampled rows of Y against float64, docs/contracts.md "Document layers") passes; the check's
 * numbers are reported, and a demo that failed it would exit 1.
 */
test('demo --layer runs a Mistral-shaped layer and verifies sampled rows', async (t) => {
  const dir = tempDir('longattn-layer-demo-');
  const r = await longattn(['demo', '--layer', '--n', '700', '--dir', dir, '--json'], { timeoutMs: 300_000 });
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.deepEqual(out.shape, { B: 1, H: 16, Hk: 4, Sq: 700, Sk: 700, D: 64 });
  t.deepEqual(out.verified.rows, [0, 1, 300, 699]);
  t.true(out.verified.exact && out.verified.maxAbsErr <= out.verified.bound && out.verified.maxAbsErr > 0);
  t.is(out.layer.outDim, 1024);
  t.true(out.layer.rope);
});
