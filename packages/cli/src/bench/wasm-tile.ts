// One-thread GFLOP/s of the wasm tile: `npx tsx packages/cli/src/bench/wasm-tile.ts [rows keys D reps causal]`.
// FLOPs = 4·rows·keys·D per dense tile (the planner's count); prints the median over reps.
import { getBackend } from '@longattn/kernels';

const [rows = 256, keys = 4096, D = 64, reps = 9, causal = 0] = process.argv.slice(2).map(Number);
const random = (n: number): Float32Array => Float32Array.from({ length: n }, () => Math.random() * 4 - 2);
const kernel = await getBackend('wasm').create();
const job = {
  rows,
  keys,
  D,
  scale: 1 / Math.sqrt(D),
  qStart: keys - rows,
  kStart: 0,
  rule: { diag: 0, left: Infinity, right: causal ? 0 : Infinity },
  full: !causal,
  q: random(rows * D),
  k: random(keys * D),
  v: random(keys * D),
};
kernel.run(job); // warm-up (compiles the wasm tiers)
const times: number[] = [];
for (let i = 0; i < reps; i++) {
  const t0 = performance.now();
  kernel.run(job);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const ms = times[Math.floor(reps / 2)]!;
console.log(
  `wasm ${rows}×${keys} D ${D}${causal ? ' causal' : ''}: median ${ms.toFixed(2)} ms, ${((4 * rows * keys * D) / ms / 1e6).toFixed(1)} GFLOP/s (min ${times[0]!.toFixed(2)} ms)`,
);
