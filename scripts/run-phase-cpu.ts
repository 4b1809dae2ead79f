/**
 * CPU time of a whole local run's compute phase, per thread (docs/math.md, "Where a run's compute
 * phase went"): `runLocal` as `longattn run --backend ort` runs it, the bench's pattern rows
 * (packages/cli/src/bench/pattern-rows.ts) at n tokens, 1 head, D = 64; between the first and the
 * last progress event (the compute phase) it reads every thread's utime + stime from
 * /proc/self/task (10 ms ticks): the pool threads (the two busiest), the main thread, and the rest
 * (V8's platform threads: TurboFan and concurrent GC). Prints a sha256 of O to compare versions.
 * Inputs (bench/inputs.ts' writeInputs and the bench's BigBird mask) are written to --dir once.
 *
 *   node --import tsx scripts/run-phase-cpu.ts [--n 131072] [--threads 2] [--reps 1] [--dir /tmp/phase] [--only streaming,bigbird]
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLocal } from '@longattn/engine';
import { writeInputs } from '../packages/cli/src/bench/inputs.ts';
import { blockLayout } from '../packages/cli/src/block-layouts.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '131072' },
    threads: { type: 'string', default: '2' },
    reps: { type: 'string', default: '1' },
    dir: { type: 'string', default: '/tmp/phase' },
    only: { type: 'string', default: 'streaming,bigbird' },
  },
});
const n = Number(values.n);
const dir = values.dir;
mkdirSync(dir, { recursive: true });
const files = { q: join(dir, `q-${n}-1.npy`), k: join(dir, `k-${n}-1.npy`), v: join(dir, `v-${n}-1.npy`) };
if (!existsSync(files.v)) writeInputs(dir, n, 1, 64);
const nb = Math.ceil(n / 128);
const cells = blockLayout('bigbird', { nQb: nb, nKb: nb, heads: 1, window: 1, globals: 1, random: 3, seed: 0, stride: 0 });
const cases: Record<string, object> = {
  causal: { causal: true },
  streaming: { causal: true, window: { left: 4095, right: 0 }, pattern: { sinks: 4 } },
  longformer: { window: { left: 256, right: 256 }, pattern: { global: Array.from({ length: 16 }, (_, g) => g) } },
  bigbird: { pattern: { blockMask: { block: 128, shape: [nb, nb], cells } } },
  strided: { causal: true, window: { left: 127, right: 0 }, pattern: { stride: 128 } },
};

/** CPU ms of every thread of this process, by thread id ('main' for the main thread). */
function threadsCpu(): Map<string, number> {
  const cpu = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu.set(Number(tid) === process.pid ? 'main' : tid, (Number(f[11]) + Number(f[12])) * 10);
    } catch {} // a thread that ended meanwhile
  }
  return cpu;
}

for (let rep = 0; rep < Number(values.reps); rep++) {
  for (const name of values.only.split(',')) {
    let start: Map<string, number> | undefined;
    let end: Map<string, number> | undefined;
    const out = join(dir, `out-${process.pid}.npy`);
    const result = await runLocal(
      { ...files, out, backend: 'ort', options: cases[name] as never },
      {
        threads: Number(values.threads),
        onProgress: (p) => {
          if (!start) start = threadsCpu();
          if (p.doneTiles === p.totalTiles) end = threadsCpu();
        },
      },
    );
    const used = [...end!].map(([tid, ms]) => [tid, ms - (start!.get(tid) ?? 0)] as const);
    const main = used.find(([tid]) => tid === 'main')?.[1] ?? 0;
    const others = used
      .filter(([tid]) => tid !== 'main')
      .map(([, ms]) => ms)
      .sort((a, b) => b - a);
    const pool = others.slice(0, Number(values.threads)).reduce((a, b) => a + b, 0);
    const rest = others.slice(Number(values.threads)).reduce((a, b) => a + b, 0);
    const sha = createHash('sha256').update(readFileSync(out)).digest('hex').slice(0, 16);
    rmSync(out);
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    console.log(
      `${name}\tcompute ${result.computeMs.toFixed(0)} ms\tCPU ms: pool ${pool}, main ${main}, other ${rest}, all ${pool + main + rest}\tO sha256 ${sha}\tload ${load}`,
    );
  }
}
