import { maskRule, plan, validateSpec, type AttentionSpec, type SpecOptions } from '@longattn/attention';
// The engines' tile loop, reached through the root workspace (test only: @longattn/kernels itself never imports the engine).
import { arraySource, computeQBlock, JobOutputMemory } from '@longattn/engine';
import { uniformF32 } from '@longattn/tensor';
import type { TileJob, TileKernel } from '@longattn/kernels';

/** Shared by the backend tests: seeded inputs, one head through the planner, the whole head as one tile. */

/** Deterministic uniform numbers in [-2, 2) (the shared mulberry32). */
export function random(n: number, seed: number): Float32Array {
  return uniformF32(n, seed);
}

export interface Case {
  spec: AttentionSpec;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

export function makeCase(Sq: number, Sk: number, D: number, options: SpecOptions = {}, seed = 1): Case {
  const spec = validateSpec({ q: [Sq, D], k: [Sk, D], v: [Sk, D] }, options);
  return { spec, q: random(Sq * D, seed), k: random(Sk * D, seed + 1), v: random(Sk * D, seed + 2) };
}

/** One head ([Sq,D]) through the planner and the engines' own tile loop (computeQBlock): every tile on `kernel`, merged per q-block in key order. */
export async function attend(
  kernel: TileKernel,
  c: Case,
  blockQ: number,
  blockK: number,
): Promise<{ out: Float32Array; lse: Float32Array }> {
  const { spec } = c;
  const out = new JobOutputMemory(spec);
  const source = arraySource(spec, c.q, c.k, c.v);
  for (const block of plan(spec, { blockQ, blockK }).blocks()) out.write(block, await computeQBlock(kernel, spec, block, source));
  return { out: out.out, lse: out.lse };
}

/** The whole head as one tile (qStart = kStart = 0, full = false: the kernel masks). */
export function wholeJob(c: Case): TileJob {
  const { Sq, Sk, D, scale } = c.spec;
  return { rows: Sq, keys: Sk, D, scale, qStart: 0, kStart: 0, rule: maskRule(c.spec), full: false, q: c.q, k: c.k, v: c.v };
}
