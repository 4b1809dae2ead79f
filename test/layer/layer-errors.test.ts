import { mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { writeSafetensors, writeTensor } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';

/**
 * `longattn layer` with weights that disagree with X or the head counts: exit 2, one line on
 * stderr naming the tensor, nothing written (docs/contracts.md, "Document layers").
 */
const dir = tempDir();
const S = 12;
const d = 10;
const H = 4;
const Hk = 2;
const D = 6;
writeTensor(join(dir, 'x.npy'), [S, d], randomTensor(S * d, 1));
const m = (rows: number, cols: number, seed: number) => ({ shape: [rows, cols], data: randomTensor(rows * cols, seed) });
const good = {
  'l.q_proj.weight': m(H * D, d, 2),
  'l.k_proj.weight': m(Hk * D, d, 3),
  'l.v_proj.weight': m(Hk * D, d, 4),
  'l.o_proj.weight': m(d, H * D, 5),
};
const variants: Record<string, Record<string, { shape: number[]; data: Float32Array }>> = {
  good,
  noK: { 'l.q_proj.weight': good['l.q_proj.weight'], 'l.v_proj.weight': good['l.v_proj.weight'] },
  qRows: { ...good, 'l.q_proj.weight': m(H * D + 1, d, 2) },
  kRows: { ...good, 'l.k_proj.weight': m(3 * D, d, 3) },
  qCols: { ...good, 'l.q_proj.weight': m(H * D, d + 3, 2) },
  oShape: { ...good, 'l.o_proj.weight': m(d, H * D - 1, 5) },
  qBias: { ...good, 'l.q_proj.bias': { shape: [H * D - 2], data: randomTensor(H * D - 2, 6) } },
};
for (const [name, tensors] of Object.entries(variants)) writeSafetensors(join(dir, `${name}.safetensors`), tensors);

/** Each run writes into a directory of its own (the tests run concurrently: one run's files are not another's leftovers). */
const layer = async (weights: string, ...extra: string[]) => {
  const outDir = mkdtempSync(join(dir, 'out-'));
  return {
    outDir,
    ...(await longattn([
      'layer',
      '--x',
      join(dir, 'x.npy'),
      '--weights',
      join(dir, `${weights}.safetensors`),
      '--prefix',
      'l.',
      '--heads',
      `${H}`,
      '--kv-heads',
      `${Hk}`,
      '--out',
      join(outDir, 'y.npy'),
      ...extra,
    ])),
  };
};

const cases: [string, string[], RegExp][] = [
  ['noK', [], /^longattn: --weights: no tensor "l\.k_proj\.weight"/],
  ['qRows', [], /^longattn: --weights: "l\.q_proj\.weight" has 25 rows, not a positive multiple of 4 heads/],
  ['kRows', [], /^longattn: --weights: "l\.k_proj\.weight" has 18 rows; --kv-heads 2 × D 6 \(from q_proj\) is 12/],
  ['qCols', [], /^longattn: --weights: "l\.q_proj\.weight" has 13 columns; --x's d_model is 10/],
  ['oShape', [], /^longattn: --weights: "l\.o_proj\.weight" has 23 columns; H·D is 24/],
  ['qBias', [], /^longattn: --weights: "l\.q_proj\.bias" is \[22\]; expected \[24\]/],
  ['good', ['--kv-heads', '3'], /^longattn: --kv-heads: --heads 4 is not a multiple of --kv-heads 3/],
  ['good', ['--prefix', 'm.'], /^longattn: --weights: no tensor "m\.q_proj\.weight"/],
  ['good', ['--no-rope', '--rope-theta', '5'], /^longattn: --rope-theta: given with --no-rope/],
];

for (const [weights, extra, message] of cases) {
  test(`layer refuses ${weights} ${extra.join(' ')}: exit 2, one line`, async (t) => {
    const r = await layer(weights, ...extra);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.deepEqual(readdirSync(r.outDir), [], 'no output and no temporary files left');
  });
}

test('layer runs with the good weights (the refusals above are about the weights alone)', async (t) => {
  const r = await layer('good', '--causal', '--json');
  t.is(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  t.deepEqual(result.shape, { B: 1, H, Hk, Sq: S, Sk: S, D });
  t.is(result.layer.outDim, d);
});
