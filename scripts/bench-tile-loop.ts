/**
 * CPU time of the tile loop alone (docs/math.md, "Cost follows the pattern"): one thread, ort,
 * q, k, v in memory, the plan built before the clock; computeQBlock over every q-block, each timed
 * with process.cpuUsage(); a sha256 of every output bit (outside the timer) to compare versions.
 * Patterns as the bench's pattern rows (packages/cli/src/bench/pattern-rows.ts).
 *
 *   node --import tsx scripts/bench-tile-loop.ts [--n 131072] [--reps 3] [--only causal,streaming,longformer,bigbird,strided] [--no-band | --ab] [--o-only]
 *
 * --o-only: as `run` without --lse (computeQBlock's outputs 'o': sole tiles skip their LSE, docs/math.md "Sole tiles");
 * the hash then covers o alone.
 */
import { createHash } from 'node:crypto';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type AttentionSpec, type Pattern, plan, strideBlocks } from '@longattn/attention';
import { arraySource, computeQBlock } from '@longattn/engine';
import { ortBackend } from '@longattn/kernels';
import { warmKernel } from '../packages/engine/src/compute-block.ts';
import { blockLayout } from '../packages/cli/src/block-layouts.ts';
import { makeSample } from '../packages/cli/src/sample.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '131072' },
    reps: { type: 'string', default: '3' },
    only: { type: 'string' },
    'no-band': { type: 'boolean', default: false },
    ab: { type: 'boolean', default: false },
    'o-only': { type: 'boolean', default: false },
  },
});
const n = Number(values.n);
const D = 64;
const reps = Number(values.reps);

function spec(extra: Partial<AttentionSpec>): AttentionSpec {
  return {
    layout: 'bhsd',
    B: 1,
    H: 1,
    Hk: 1,
    Sq: n,
    Sk: n,
    D,
    causal: false,
    window: { left: Infinity, right: Infinity },
    scale: 1 / Math.sqrt(D),
    ...extra,
  };
}
const nb = Math.ceil(n / 128);
const cells = blockLayout('bigbird', { nQb: nb, nKb: nb, heads: 1, window: 1, globals: 1, random: 3, seed: 0, stride: 0 });
const bigbird: Pattern = { blockMask: { block: 128, heads: 1, nQb: nb, nKb: nb, cells: Buffer.from(cells).toString('base64') } };
const cases: Record<string, AttentionSpec> = {
  causal: spec({ causal: true }),
  streaming: spec({ causal: true, window: { left: 4095, right: 0 }, pattern: { sinks: 4 } }),
  longformer: spec({ window: { left: 256, right: 256 }, pattern: { global: Array.from({ length: 16 }, (_, g) => g) } }),
  bigbird: spec({ pattern: bigbird }),
  strided: spec({ causal: true, window: { left: 127, right: 0 }, pattern: { stride: 128 } }),
};
const chosen = values.only ? values.only.split(',') : Object.keys(cases).filter((c) => c !== 'causal');
const only = values.ab ? chosen.flatMap((c) => [c, `${c}:parts`]) : chosen;
for (const c of chosen) cases[`${c}:parts`] = cases[c]!;
const sample = makeSample({ n, H: 1, D, seed: n + 1 });
const source = arraySource(cases.causal!, sample.q, sample.k, sample.v);
const ort = await ortBackend.create({ threads: 1 });
// --no-band: band tiles run as their parts (the tiles planned without bands, docs/math.md "Band tiles"), as on kernels
// without a band path: the output bits and tiles of the code before band tiles. --ab: each pattern both ways, interleaved.
const parts = Object.assign(Object.create(ort), { band: undefined, bandLse: undefined }) as typeof ort;
const kernel = values['no-band'] ? parts : ort;
const blocks = { blockQ: 256, blockK: 2048 };
const plans = Object.fromEntries(only.map((c) => [c, plan(cases[c]!, strideBlocks(cases[c]!, blocks))]));
const oOnly = values['o-only'];
const outputs = oOnly ? 'o' : 'o+lse';
for (const c of only) await warmKernel(kernel, cases[c]!, strideBlocks(cases[c]!, blocks), 3, outputs);
const maxRows = Math.max(...Object.values(plans).map((p) => p.blockQ));
const into = { o: new Float32Array(maxRows * D), lse: new Float32Array(maxRows) };
// GC pauses inside the timed loops (wall ms: under load they include waiting for a core).
let gcMs = 0;
let timing = false;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (timing) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });
const gcs: Record<string, number[]> = Object.fromEntries(only.map((c) => [c, []]));
const times: Record<string, number[]> = Object.fromEntries(only.map((c) => [c, []]));
// Every output bit of each pattern (o and lse of every q-block, in order), hashed outside the timer: before/after must agree.
const digests: Record<string, string> = {};
for (let rep = 0; rep < reps; rep++) {
  for (const c of only) {
    const p = plans[c]!;
    gcMs = 0;
    timing = true;
    const hash = createHash('sha256');
    let cpu = 0;
    for (let i = 0; i < p.qBlockCount; i++) {
      const t0 = process.cpuUsage();
      const out = await computeQBlock(c.endsWith(':parts') ? parts : kernel, p.spec, p.block(i), source, undefined, into, outputs);
      const t = process.cpuUsage(t0);
      cpu += t.user + t.system;
      hash.update(new Uint8Array(out.o.buffer, out.o.byteOffset, out.o.byteLength));
      if (!oOnly) hash.update(new Uint8Array(out.lse.buffer, out.lse.byteOffset, out.lse.byteLength));
    }
    digests[c] = hash.digest('hex').slice(0, 16);
    await new Promise((resolve) => setImmediate(resolve)); // the observer's entries of this run
    timing = false;
    gcs[c]!.push(gcMs);
    times[c]!.push(cpu / 1000);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const c of only)
  console.log(
    `${c}\ttiles ${plans[c]!.tileCount}\tCPU ms median ${median(times[c]!).toFixed(0)}\t[${times[c]!.map((t) => t.toFixed(0)).join(', ')}]\tGC wall ms median ${median(gcs[c]!).toFixed(0)}\tbits ${digests[c]}`,
  );
await ort.dispose?.();
