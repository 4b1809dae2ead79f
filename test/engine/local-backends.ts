import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runLocal } from '@longattn/engine';
import { listBackends } from '@longattn/kernels';
import { readTensor, writeTensor } from '@longattn/tensor';
import { caseShapes, type Case } from '../support/cases.ts';
import { tempDir } from '../support/cli.ts';
import { assertExact, prepare } from '../support/exactness.ts';

/** LocalEngine end to end through files: exact, bitwise independent of thread count, atomic output. */
export const gqaCausal: Case = {
  name: 'engine GQA causal 150×170 d20',
  H: 4,
  Hk: 2,
  Sq: 150,
  Sk: 170,
  D: 20,
  options: { causal: true },
  blockQ: 32,
  blockK: 48,
};

export function writeCase(c: Case, dir: string) {
  const p = prepare(c);
  const shapes = caseShapes(c);
  writeTensor(join(dir, 'q.npy'), shapes.q, p.q);
  writeTensor(join(dir, 'k.npy'), shapes.k, p.k);
  writeTensor(join(dir, 'v.npy'), shapes.v, p.v);
  return { p, q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') };
}

/**
 * Registers the per-backend end-to-end test for the backends `only` accepts. webgpu runs in a
 * process of its own (local-webgpu.test.ts): Dawn's EGL finds no adapter once the gl addon
 * (gpujs headlessgl) holds a context in the same process.
 */
export function localBackendSuite(only: (backend: string) => boolean): void {
  const targets = listBackends()
    .filter((b) => only(b.name))
    .flatMap((b) => (b.testedModes ?? [undefined]).map((mode) => (mode ? `${b.name}:${mode}` : b.name)));
  for (const backend of targets) {
    test.serial(`${backend}: output is exact and bitwise identical with 1 and 2 threads`, async (t) => {
      const dir = tempDir();
      const files = writeCase(gqaCausal, dir);
      const run = (threads: number) =>
        runLocal(
          {
            ...files,
            out: join(dir, `o${threads}.npy`),
            lse: join(dir, `l${threads}.npy`),
            options: gqaCausal.options,
            backend,
            blockQ: 32,
            blockK: 48,
          },
          { threads },
        );
      const one = await run(1);
      const two = await run(2);
      t.is(one.backend, backend);
      t.true(readFileSync(join(dir, 'o1.npy')).equals(readFileSync(join(dir, 'o2.npy'))), 'O differs between 1 and 2 threads');
      t.true(readFileSync(join(dir, 'l1.npy')).equals(readFileSync(join(dir, 'l2.npy'))), 'LSE differs between 1 and 2 threads');
      const out = readTensor(join(dir, 'o2.npy'));
      t.deepEqual(out.shape, caseShapes(gqaCausal).q);
      t.deepEqual(readTensor(join(dir, 'l2.npy')).shape, [1, 4, 150]);
      assertExact(t, files.p, out.data, readTensor(join(dir, 'l2.npy')).data);
      t.is(two.tiles + two.skippedTiles, 4 * 5 * 4);
    });
  }
}
