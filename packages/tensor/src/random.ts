/**
 * Seeded random numbers, the one copy (tests, samples, benchmarks): mulberry32, a tiny PRNG whose
 * sequence depends only on the seed, so inputs and failures reproduce everywhere.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` float32 numbers uniform in [lo, hi) from mulberry32(seed). */
export function uniformF32(n: number, seed: number, lo = -2, hi = 2): Float32Array {
  const next = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() * (hi - lo) + lo;
  return out;
}

/** Standard normal numbers from a uniform source (Box–Muller, one pair of draws per number). */
export function gaussian(next: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
}
