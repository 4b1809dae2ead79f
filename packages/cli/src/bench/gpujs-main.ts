/**
 * `node --import tsx packages/cli/src/bench/gpujs-main.ts [--n 16384] [--d 64] [--h 8]
 *   [--mode headlessgl|webasm|cpu|webgpu] [--block-q N] [--block-k N] [--reps N]`
 * Prints one summary line and a JSON line; exits 1 when the sampled rows miss the exactness rule.
 * `--detect` prints detectGpu()'s JSON (null without a GL context) and exits (scripts/gpu-check.sh).
 */
import { parseArgs } from 'node:util';
import { detectGpu } from '@longattn/kernels';
import { benchGpujs } from './gpujs.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '16384' },
    d: { type: 'string', default: '64' },
    h: { type: 'string', default: '8' },
    mode: { type: 'string' },
    'block-q': { type: 'string' },
    'block-k': { type: 'string' },
    reps: { type: 'string', default: '1' },
    detect: { type: 'boolean', default: false },
  },
});
if (values.detect) {
  console.log(JSON.stringify(await detectGpu()));
  process.exit(0);
}
const int = (name: string, s: string | undefined): number | undefined => {
  if (s === undefined) return undefined;
  const x = Number(s);
  if (!Number.isInteger(x) || x < 1) {
    console.error(`--${name}: expected an integer ≥ 1, got "${s}"`);
    process.exit(2);
  }
  return x;
};
const r = await benchGpujs({
  n: int('n', values.n)!,
  D: int('d', values.d)!,
  H: int('h', values.h)!,
  ...(values.mode ? { mode: values.mode } : {}),
  ...(values['block-q'] ? { blockQ: int('block-q', values['block-q'])! } : {}),
  ...(values['block-k'] ? { blockK: int('block-k', values['block-k'])! } : {}),
  reps: int('reps', values.reps)!,
});
console.log(
  `${r.backend} on ${r.device}: n=${r.n} D=${r.D} H=${r.H} tiles ${r.blockQ}×${r.blockK} (${r.tiles}) ` +
    `${r.seconds.toFixed(3)} s → ${r.gflops.toFixed(2)} GFLOP/s (4·Sq·Sk·D·H/s); ` +
    `check ${r.check.rows} rows: max|err| ${r.check.err.toExponential(2)} (bound ${r.check.bound.toExponential(2)}), lse ${r.check.lseErr.toExponential(2)} ${r.check.ok ? 'OK' : 'FAILED'}`,
);
console.log(JSON.stringify(r));
process.exit(r.check.ok ? 0 : 1);
