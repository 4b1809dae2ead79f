import { join } from 'node:path';
import test from 'ava';
import { runInspect } from '@longattn/engine';
import { readTensor, uniformF32, writeTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';

/**
 * A NaN key under --allow-nonfinite (docs/math.md, "Attention patterns"): p_ij is NaN exactly where
 * row i sees key j = 30 (causal: rows ≥ 30), so received is NaN at key 30 only, and a map cell is
 * NaN only when one of its rows sees key 30. The score tiles sum columns per row group in one
 * MatMul, where a masked row's 0 times another row's NaN would spread the NaN to every group of
 * that column; a tile with non-finite row sums takes its column sums from the visible p instead.
 * Everything finite is held to 1e-5 of float64 from the definitions.
 */
test('inspect with a NaN key (--allow-nonfinite): NaN only in its own key and the cells of rows that see it', async (t) => {
  const dir = tempDir();
  const [S, D, bad] = [37, 4, 30];
  const q = uniformF32(S * D, 3, -1, 1);
  const k = uniformF32(S * D, 4, -1, 1);
  k.fill(Number.NaN, bad * D, (bad + 1) * D);
  const scale = 1 / Math.sqrt(D);
  const score = (i: number, j: number) => {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[i * D + d]! * k[j * D + d]!;
    return scale * dot;
  };
  // Each row's LSE over its finite visible keys (any finite value would do for rows that see the NaN).
  const lse = Float32Array.from({ length: S }, (_, i) => {
    let sum = 0;
    for (let j = 0; j <= i; j++) if (j !== bad) sum += Math.exp(score(i, j));
    return Math.log(sum);
  });
  writeTensor(join(dir, 'q.npy'), [1, 1, S, D], q);
  writeTensor(join(dir, 'k.npy'), [1, 1, S, D], k);
  writeTensor(join(dir, 'lse.npy'), [1, 1, S], lse);
  const result = await runInspect(
    {
      q: join(dir, 'q.npy'),
      k: join(dir, 'k.npy'),
      lse: join(dir, 'lse.npy'),
      options: { causal: true },
      allowNonfinite: true,
      received: join(dir, 'r.npy'),
      map: join(dir, 'm.png'),
      mapSize: 4,
    },
    { threads: 1 },
  );
  t.is(result.report.heads[0]!.rows, bad, 'rows that see the NaN key are not counted');
  const received = readTensor(join(dir, 'r.npy')).data;
  for (let j = 0; j < S; j++) {
    let want = 0;
    for (let i = j; i < S; i++) want += Math.exp(score(i, j) - lse[i]!);
    if (j === bad) t.true(Number.isNaN(received[j]!), 'received at the NaN key');
    else t.true(Math.abs(received[j]! - want) <= 1e-5 * Math.max(1, want), `received[${j}]: ${received[j]} vs ${want}`);
  }
  const means = result.mapMeans!;
  const cell = (x: number) => Math.floor((x * 4) / S);
  for (let cr = 0; cr < 4; cr++)
    for (let cc = 0; cc < 4; cc++) {
      let sum = 0;
      let n = 0;
      let nan = false;
      for (let i = 0; i < S; i++)
        for (let j = 0; j < S; j++) {
          if (cell(i) !== cr || cell(j) !== cc) continue;
          n++;
          if (j > i) continue;
          if (j === bad) nan = true;
          else sum += Math.exp(score(i, j) - lse[i]!);
        }
      const got = means[cr * 4 + cc]!;
      if (nan) t.true(Number.isNaN(got), `cell (${cr}, ${cc}) is NaN`);
      else t.true(Math.abs(got - sum / n) <= 1e-5 * Math.max(1, sum / n), `cell (${cr}, ${cc}): ${got} vs ${sum / n}`);
    }
  t.true(Number.isFinite(means[0 * 4 + cell(bad)]!), 'the NaN key leaves cells of rows that do not see it finite');
});
