import { mulberry32 } from '@longattn/tensor';

/** Seeded random float32 tensors for tests (mulberry32 + Box–Muller), so failures reproduce. */
export function randomTensor(length: number, seed: number, scale = 1): Float32Array {
  const next = mulberry32(seed);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = scale * Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
  return out;
}
