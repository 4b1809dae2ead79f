#!/usr/bin/env node
/**
 * Self time by function, summed over the V8 CPU profiles in a folder (`BENCH_PROF=DIR` of
 * scripts/bench-cluster.ts), optionally only samples in a window before each profile's end (the
 * measured job: the warm-up, start-up and idle phases come earlier) and only profiles of processes
 * that ran a given function (e.g. the workers: `processTileJob`). Prints ms and ms per job.
 *
 *   node scripts/cpuprofile-summary.mjs DIR [--only processTileJob] [--from-end 52] [--to-end 4] [--jobs 1092] [--top 40]
 *
 * Sample times are wall time on the profiled thread: on a loaded machine a sample that lands while
 * the thread waits for a core counts where it stopped, so read shares on a quiet machine
 * (docs/scaling.md, "Fifth pass").
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    only: { type: 'string', default: 'processTileJob' },
    'from-end': { type: 'string', default: '1e9' },
    'to-end': { type: 'string', default: '0' },
    jobs: { type: 'string', default: '1' },
    top: { type: 'string', default: '40' },
  },
});
const dir = positionals[0];
if (!dir) throw new Error('usage: cpuprofile-summary.mjs DIR [--only FN] [--from-end S] [--to-end S] [--jobs N] [--top N]');
const byFunction = new Map();
let total = 0;
let profiles = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const p = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
  if (values.only && !p.nodes.some((n) => n.callFrame.functionName === values.only)) continue;
  profiles++;
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const from = p.endTime - Number(values['from-end']) * 1e6;
  const to = p.endTime - Number(values['to-end']) * 1e6;
  let at = p.startTime;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    if (at < from || at > to || functionName === '(idle)') return;
    const where = url.replace(/^.*node_modules\/(\.pnpm\/)?/, '').replace(/^.*\/packages\//, '');
    const key = `${functionName || '(anonymous)'} ${where}${where ? `:${lineNumber}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
    total += dt;
  });
}
const jobs = Number(values.jobs);
console.log(`${profiles} profiles, ${(total / 1000).toFixed(0)} ms not idle, ${(total / 1000 / jobs).toFixed(3)} ms per job`);
for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top)))
  console.log(
    `${(us / 1000).toFixed(0).padStart(8)} ms ${(us / 1000 / jobs).toFixed(3).padStart(7)} ms/job ${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`,
  );
