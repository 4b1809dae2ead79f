import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeTensor } from '@longattn/tensor';
import { makeSample } from '../sample.ts';

/** The bench's inputs for n tokens and H heads: q, k, v [H, n, D] float32 .npy files in `dir`, seeded by n and H. */
export function writeInputs(dir: string, n: number, H: number, D: number): { q: string; k: string; v: string } {
  const sample = makeSample({ n, H, D, seed: n + H });
  const files = { q: join(dir, `q-${n}-${H}.npy`), k: join(dir, `k-${n}-${H}.npy`), v: join(dir, `v-${n}-${H}.npy`) };
  writeTensor(files.q, [H, n, D], sample.q);
  writeTensor(files.k, [H, n, D], sample.k);
  writeTensor(files.v, [H, n, D], sample.v);
  return files;
}

export function removeInputs(files: { q: string; k: string; v: string }): void {
  for (const file of Object.values(files)) rmSync(file, { force: true });
}
