import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runLocal, type Progress } from '@longattn/engine';
import { readTensor, writeSafetensors, writeTensor } from '@longattn/tensor';
import { caseShapes, type Case } from '../support/cases.ts';
import { tempDir } from '../support/cli.ts';
import { prepare } from '../support/exactness.ts';
import { gqaCausal, localBackendSuite, writeCase } from './local-backends.ts';

// Every backend but webgpu (local-webgpu.test.ts runs it in its own process).
localBackendSuite((backend) => backend !== 'webgpu');

test('bshd safetensors in, safetensors out, f16/bf16 inputs', async (t) => {
  const c: Case = {
    name: 'engine bshd',
    B: 2,
    H: 2,
    Hk: 1,
    Sq: 33,
    Sk: 45,
    D: 16,
    options: { layout: 'bshd', window: { left: 4, right: 4 } },
  };
  const p = prepare(c);
  const shapes = caseShapes(c);
  const dir = tempDir();
  const file = join(dir, 'qkv.safetensors');
  writeSafetensors(file, {
    q: { shape: shapes.q, data: p.q },
    k: { shape: shapes.k, data: p.k, dtype: 'f16' },
    v: { shape: shapes.v, data: p.v, dtype: 'bf16' },
  });
  await runLocal(
    {
      q: `${file}#q`,
      k: `${file}#k`,
      v: `${file}#v`,
      out: join(dir, 'o.safetensors'),
      lse: join(dir, 'lse.npy'),
      options: c.options,
      backend: 'js',
    },
    { threads: 2 },
  );
  const out = readTensor(join(dir, 'o.safetensors'));
  t.deepEqual(out.shape, shapes.q);
  // Inputs were rounded to f16/bf16, so compare with the js engine on the rounded inputs through npy.
  const k = readTensor(`${file}#k`).data;
  const v = readTensor(`${file}#v`).data;
  t.not(k[0], p.k[0]); // f16 really rounded
  const d2 = tempDir();
  writeTensor(join(d2, 'q.npy'), shapes.q, p.q);
  writeTensor(join(d2, 'k.npy'), shapes.k, k);
  writeTensor(join(d2, 'v.npy'), shapes.v, v);
  await runLocal(
    { q: join(d2, 'q.npy'), k: join(d2, 'k.npy'), v: join(d2, 'v.npy'), out: join(d2, 'o.npy'), options: c.options, backend: 'js' },
    { threads: 1 },
  );
  t.deepEqual([...out.data], [...readTensor(join(d2, 'o.npy')).data]);
});

test('f64 .npy inputs are converted', async (t) => {
  const dir = tempDir();
  const q = Float64Array.from({ length: 5 * 4 }, (_, i) => Math.sin(i));
  writeTensor(join(dir, 'q.npy'), [5, 4], q, { dtype: 'f64' });
  await runLocal(
    { q: join(dir, 'q.npy'), k: join(dir, 'q.npy'), v: join(dir, 'q.npy'), out: join(dir, 'o.npy'), options: {}, backend: 'js' },
    { threads: 1 },
  );
  t.is(readTensor(join(dir, 'q.npy')).dtype, 'f64');
  t.deepEqual(readTensor(join(dir, 'o.npy')).shape, [5, 4]);
});

test('progress reaches the total and never goes back', async (t) => {
  const dir = tempDir();
  const files = writeCase(gqaCausal, dir);
  const seen: Progress[] = [];
  const result = await runLocal(
    { ...files, out: join(dir, 'o.npy'), options: gqaCausal.options, backend: 'js', blockQ: 16, blockK: 16 },
    { threads: 2, onProgress: (p) => seen.push(p) },
  );
  t.true(seen.length > 5);
  for (let i = 1; i < seen.length; i++) t.true(seen[i]!.doneTiles >= seen[i - 1]!.doneTiles);
  t.like(seen.at(-1), { doneTiles: result.tiles, totalTiles: result.tiles, doneFlops: result.flops, totalFlops: result.flops });
});

test('an aborted job leaves no output behind', async (t) => {
  const dir = tempDir();
  const files = writeCase(gqaCausal, dir);
  const controller = new AbortController();
  const run = runLocal(
    { ...files, out: join(dir, 'o.npy'), lse: join(dir, 'l.npy'), options: {}, backend: 'js', blockQ: 1, blockK: 8 },
    { threads: 1, signal: controller.signal, onProgress: (p) => p.doneTiles > 50 && controller.abort() },
  );
  await t.throwsAsync(run);
  t.false(existsSync(join(dir, 'o.npy')));
  t.deepEqual(readdirSync(dir).sort(), ['k.npy', 'q.npy', 'v.npy']);
});
