import test from 'ava';
import { hasPattern, markVisible, maskRule, plan, type SpecOptions } from '@longattn/attention';
import { getBackend, listBackends, selectBackend, TEST_KERNELS_ENV, tileFlops, type TileJob } from '@longattn/kernels';
import { makeCase } from './support.ts';

// Serial: the tests switch LONGATTN_TEST_KERNELS on and off in this process.
const withKernels = async <T>(value: string | undefined, body: () => Promise<T>): Promise<T> => {
  const before = process.env[TEST_KERNELS_ENV];
  if (value === undefined) delete process.env[TEST_KERNELS_ENV];
  else process.env[TEST_KERNELS_ENV] = value;
  try {
    return await body();
  } finally {
    if (before === undefined) delete process.env[TEST_KERNELS_ENV];
    else process.env[TEST_KERNELS_ENV] = before;
  }
};

/** Every tile of a case's plan as the engines' tile loop hands it to a kernel (computeTiles). */
function tileJobs(Sq: number, Sk: number, D: number, options: SpecOptions, blockQ: number, blockK: number) {
  const c = makeCase(Sq, Sk, D, options);
  const rule = maskRule(c.spec);
  const jobs: { job: TileJob; flops: number }[] = [];
  for (const block of plan(c.spec, { blockQ, blockK }).blocks())
    for (const tile of block.tiles) {
      const visible =
        hasPattern(c.spec) && !tile.full ? markVisible(c.spec, tile.h, tile.qStart, tile.rows, tile.kStart, tile.keys) : undefined;
      const job: TileJob = {
        rows: tile.rows,
        keys: tile.keys,
        D,
        scale: c.spec.scale,
        qStart: tile.qStart,
        kStart: tile.kStart,
        rule,
        full: tile.full,
        ...(visible ? { visible } : {}),
        q: c.q.subarray(tile.qStart * D, (tile.qStart + tile.rows) * D),
        k: c.k.subarray(tile.kStart * D, (tile.kStart + tile.keys) * D),
        v: c.v.subarray(tile.kStart * D, (tile.kStart + tile.keys) * D),
      };
      jobs.push({ job, flops: tile.flops });
    }
  return jobs;
}

test.serial('wait is refused unless LONGATTN_TEST_KERNELS names it, and never listed (auto, conformance, bench)', async (t) => {
  t.false(
    listBackends().some((b) => b.name === 'wait'),
    'listed',
  );
  await withKernels(undefined, async () => {
    t.regex((await getBackend('wait').probe()) ?? '', /test-only.*LONGATTN_TEST_KERNELS=wait/);
    await t.throwsAsync(getBackend('wait').create(), { message: /test-only/ });
    const error = await t.throwsAsync(selectBackend('wait:10'));
    t.is((error as { argument?: string }).argument, '--backend');
    t.not((await selectBackend('auto')).name.split(':')[0], 'wait');
  });
  await withKernels('other', async () => t.truthy(await getBackend('wait').probe()));
  await withKernels('wait', async () => {
    t.is(await getBackend('wait').probe({ mode: '12.5' }), null);
    t.regex((await getBackend('wait').probe({ mode: 'fast' })) ?? '', /wait:fast: .*GFLOP\/s/);
    t.regex((await getBackend('wait').probe({ mode: '0' })) ?? '', /number > 0/);
    t.not((await selectBackend('auto')).name.split(':')[0], 'wait');
  });
});

// Pattern tiles run on gathered keys, row groups and gathered rows (compute-block.ts,
// stride-block.ts), which this job builder does not make: the kernel counts their `visible` ones,
// and their pairs are checked against the rule in test/patterns/.
test.serial('tileFlops counts what the planner counts: causal, window, ragged edges', (t) => {
  const cases: [number, number, number, SpecOptions, number, number][] = [
    [203, 317, 24, { causal: true }, 64, 128],
    [317, 203, 8, { causal: true }, 64, 48],
    [257, 600, 16, { window: { left: 37, right: 5 } }, 40, 100],
  ];
  for (const [Sq, Sk, D, options, blockQ, blockK] of cases) {
    const jobs = tileJobs(Sq, Sk, D, options, blockQ, blockK);
    t.true(jobs.length > 1);
    for (const { job, flops } of jobs) t.is(tileFlops(job), flops, `${JSON.stringify(options)} tile at ${job.qStart},${job.kStart}`);
  }
});

test.serial(
  'wait:G takes FLOPs / G of wall time per tile, summed over tiles, with almost no CPU; rows seeing no key get lse -Infinity',
  async (t) => {
    await withKernels('wait', async () => {
      // causal Sq > Sk: the first rows see no key (bottom-right alignment)
      const jobs = tileJobs(203, 113, 16, { causal: true }, 32, 48);
      const flops = jobs.reduce((s, j) => s + j.flops, 0);
      const gflops = flops / 0.3e9; // the whole case should take 300 ms
      const kernel = await getBackend('wait').create({ mode: String(gflops) });
      t.is(kernel.backend, `wait:${gflops}`);
      t.regex(kernel.device, /test-only/);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const outs = [];
      for (const { job } of jobs) outs.push(await kernel.run(job));
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      t.true(ms >= 299, `${ms.toFixed(1)} ms, expected ≥ 300`);
      t.true(ms < 1500, `${ms.toFixed(1)} ms, expected about 300`);
      t.true((cpu.user + cpu.system) / 1000 < ms / 3, `CPU ${(cpu.user + cpu.system) / 1000} ms while waiting ${ms} ms`);
      for (const [i, { job }] of jobs.entries()) {
        const out = outs[i]!;
        t.is(out.kStart, job.kStart);
        t.true(out.o.every((x) => x === 0));
        for (let r = 0; r < job.rows; r++) {
          const i = job.qStart + r; // bottom-right causal: row i sees keys ≤ i − (Sq − Sk)
          const sees = Math.min(job.kStart + job.keys - 1, i - 90) >= job.kStart;
          t.is(out.lse[r], sees ? 0 : -Infinity);
        }
      }
    });
  },
);
