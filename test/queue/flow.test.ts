import test from 'ava';
import { plan, validateSpec } from '@longattn/attention';
import {
  batchPlan,
  buildFlow,
  defaultJobFlops,
  guidedJobFlops,
  isWholeRun,
  kvHeadOf,
  decodeManifest,
  encodeManifest,
  flowIds,
  isJobId,
  newJobId,
  queueKey,
  QUEUE_DEFAULTS,
  QUEUE_PREFIX,
  type JobManifest,
} from '@longattn/engine/queue';

const spec = validateSpec({ q: [4, 300, 24], k: [2, 517, 24], v: [2, 517, 24] }, { causal: true });
const thePlan = plan(spec, { blockQ: 64, blockK: 128 });
const qBlocks = [...thePlan.blocks()];

for (const options of [{ tilesPerJob: 1 }, { tilesPerJob: 5 }, { jobFlops: 3e6 }, {}]) {
  test(`batchPlan ${JSON.stringify(options)}: every tile in exactly one job, in plan order, groups contiguous`, (t) => {
    const groups = batchPlan(thePlan, options);
    t.is(groups[0]!.from, 0);
    t.is(groups.at(-1)!.to, thePlan.qBlockCount);
    const seen: string[] = [];
    groups.forEach((g, i) => {
      if (i > 0) t.is(g.from, groups[i - 1]!.to, 'groups tile the q-blocks');
      for (const job of g.tileJobs) {
        t.true(job.length > 0);
        if (options.tilesPerJob) t.true(job.reduce((n, [, a, b]) => n + b - a, 0) <= options.tilesPerJob);
        for (const [qi, from, to] of job) {
          t.true(qi >= g.from && qi < g.to, 'a tile job only holds tiles of its reduce group');
          for (let ti = from; ti < to; ti++) seen.push(`${qi}.${ti}`);
        }
      }
    });
    const expected = qBlocks.flatMap((b, qi) => b.tiles.map((_, ti) => `${qi}.${ti}`));
    t.deepEqual(seen, expected);
  });
}

test('batchPlan: q-blocks that fit a job stay whole (the worker merges them); bigger ones split into balanced parts', (t) => {
  const sizes = qBlocks.map((b) => b.tiles.length);
  t.deepEqual([...new Set(sizes)].sort(), [3, 4, 5], 'the odd shape has q-blocks of 3, 4 and 5 tiles');
  const runs = batchPlan(thePlan, { tilesPerJob: 4 }).flatMap((g) => g.tileJobs.flat());
  for (const [qi, size] of sizes.entries()) {
    const mine = runs.filter(([q]) => q === qi);
    if (size <= 4) t.true(mine.length === 1 && isWholeRun(thePlan, mine[0]!), `q-block ${qi} (${size} tiles) whole`);
    else
      t.deepEqual(
        mine.map(([, from, to]) => [from, to]),
        [
          [0, 3],
          [3, 5],
        ],
        `q-block ${qi} (${size} tiles) split in two`,
      );
  }
  // By FLOPs: the largest q-block costs 2.5 jobs → split in 3 parts of about equal cost.
  const costs = qBlocks.map((b) => b.tiles.reduce((sum, tile) => sum + tile.flops, 0));
  const jobFlops = Math.max(...costs) / 2.5;
  const maxTile = Math.max(...qBlocks.flatMap((b) => b.tiles.map((tile) => tile.flops)));
  const groups = batchPlan(thePlan, { jobFlops });
  for (const g of groups) {
    for (const job of g.tileJobs) {
      const cost = job.reduce((sum, [qi, from, to]) => sum + qBlocks[qi]!.tiles.slice(from, to).reduce((s, tile) => s + tile.flops, 0), 0);
      if (job.every((run) => isWholeRun(thePlan, run)))
        t.true(job.length === 1 || cost <= jobFlops, 'packed whole q-blocks fit the target');
      else t.true(job.length === 1 && cost <= jobFlops + maxTile, `a split part costs ${cost / jobFlops} jobs`);
    }
  }
  const whole = groups
    .flatMap((g) => g.tileJobs.flat())
    .filter((run) => isWholeRun(thePlan, run))
    .map(([qi]) => qi);
  t.deepEqual(
    whole,
    costs.flatMap((c, qi) => (c <= 2 * jobFlops ? [qi] : [])),
    'whole exactly when the q-block costs ≤ 2 jobs',
  );
});

test('batchPlan by default at n = 32768, H = 8, causal, 256×2048 tiles: only whole q-blocks, several per job, plan order', (t) => {
  const big = plan(validateSpec({ q: [8, 32768, 64], k: [8, 32768, 64], v: [8, 32768, 64] }, { causal: true }), {
    blockQ: 256,
    blockK: 2048,
  });
  const jobs = batchPlan(big).flatMap((g) => g.tileJobs);
  const runs = jobs.flat();
  t.true(runs.every((run) => isWholeRun(big, run)));
  t.deepEqual(
    runs.map(([qi]) => qi),
    [...big.blocks()].map((_, qi) => qi),
    'every q-block once, in plan order (b, h, qBlock)',
  );
  t.true(jobs.length < big.qBlockCount / 2, `${jobs.length} tile jobs for ${big.qBlockCount} q-blocks`);
});

test('batchPlan: a tile job never spans two kv heads (its worker caches one head’s K/V), however big the jobs', (t) => {
  // B = 2, 6 query heads on 3 kv heads: query heads 2k, 2k+1 read kv head k; kv heads of batch 1 are 3 … 5.
  const gqa = plan(validateSpec({ q: [2, 6, 300, 24], k: [2, 3, 517, 24], v: [2, 3, 517, 24] }, { causal: true }), {
    blockQ: 64,
    blockK: 128,
  });
  const perHead = gqa.qBlocksPerHead;
  t.is(perHead, 5);
  // From the layout: q-block qi belongs to head (b·H + h) = ⌊qi / perHead⌋, which reads kv head b·Hk + ⌊h / 2⌋.
  for (let qi = 0; qi < gqa.qBlockCount; qi++) {
    const bh = Math.floor(qi / perHead);
    t.is(kvHeadOf(gqa, qi), Math.floor(bh / 6) * 3 + Math.floor((bh % 6) / 2), `q-block ${qi}`);
  }
  for (const options of [{ jobFlops: 1e15 }, { jobFlops: gqa.flops / 7 }, { tilesPerJob: 9 }, {}]) {
    const jobs = batchPlan(gqa, options).flatMap((g) => g.tileJobs);
    for (const job of jobs) t.is(new Set(job.map(([qi]) => kvHeadOf(gqa, qi))).size, 1, JSON.stringify({ options, job }));
    if (options.jobFlops === 1e15) t.is(jobs.length, 6, 'one job per kv head when a job could hold them all');
  }
});

/** A causal self-attention plan of `heads` heads × n tokens, D, 256×2048 tiles. */
const causalPlan = (heads: number, n: number, D: number) =>
  plan(validateSpec({ q: [heads, n, D], k: [heads, n, D], v: [heads, n, D] }, { causal: true }), { blockQ: 256, blockK: 2048 });

test('batchPlan by default grows jobs with the document: at n = 1M (1 head, D = 64) no q-block is split, with 1024–16384 jobs', (t) => {
  const long = causalPlan(1, 1 << 20, 64);
  let longest = 0;
  for (let qi = 0; qi < long.qBlockCount; qi++) longest = Math.max(longest, long.flopsIn(qi));
  const target = defaultJobFlops(long);
  t.is(target, longest / 2, 'half the longest q-block: the biggest size that splits none');
  t.true(target > QUEUE_DEFAULTS.jobFlops);
  const jobs = batchPlan(long).flatMap((g) => g.tileJobs);
  t.true(
    jobs.every((job) => job.every((run) => isWholeRun(long, run))),
    'every run a whole q-block',
  );
  t.true(jobs.length >= QUEUE_DEFAULTS.wholeQBlockTileJobs && jobs.length <= QUEUE_DEFAULTS.maxTileJobs, `${jobs.length} tile jobs`);
  // From the definitions: causal with Sq = Sk, row i sees keys 0 … i; the last q-block is the longest.
  let pairs = 0;
  for (let i = (1 << 20) - 256; i < 1 << 20; i++) pairs += i + 1;
  t.is(longest, 4 * 64 * pairs);
});

test('batchPlan by default guides job sizes at n = 65536, H = 8: big while much is left, never over 1/guidedJobs of it, the last ones at the base size', (t) => {
  const mid = causalPlan(8, 65536, 64);
  const base = defaultJobFlops(mid);
  t.is(base, QUEUE_DEFAULTS.jobFlops, 'a mid-size document: the 4 GFLOP base');
  const costs = Array.from({ length: mid.qBlockCount }, (_, qi) => mid.flopsIn(qi));
  const biggest = Math.max(...costs);
  // left[qi]: the plan's FLOPs from q-block qi to its end, summed here from the q-blocks' own costs.
  const left = costs.map((_, qi) => costs.slice(qi).reduce((a, b) => a + b, 0));
  const jobs = batchPlan(mid).flatMap((g) => g.tileJobs);
  const flat = batchPlan(mid, { jobFlops: base }).flatMap((g) => g.tileJobs);
  t.true(jobs.length < flat.length / 2, `${jobs.length} guided tile jobs against ${flat.length} of the base size`);
  t.deepEqual(jobs.flat(), flat.flat(), 'the same whole q-blocks in the same order: only the cuts differ');
  for (const job of jobs) {
    const first = job[0]![0];
    const cost = job.reduce((sum, [qi]) => sum + costs[qi]!, 0);
    const allowed = Math.max(base, Math.min(QUEUE_DEFAULTS.maxGuidedJobFlops, left[first]! / QUEUE_DEFAULTS.guidedJobs));
    t.true(job.length === 1 || cost <= allowed + biggest / 2, `job from q-block ${first}: ${cost / 1e9} GFLOP, allowed ${allowed / 1e9}`);
    if (left[first]! <= QUEUE_DEFAULTS.guidedJobs * base) t.true(job.length === 1 || cost <= base, 'the tail: base-size jobs');
  }
  t.true(
    jobs.slice(0, 8).every((job) => job.reduce((sum, [qi]) => sum + costs[qi]!, 0) > 2 * base),
    'the first jobs are more than twice the base size',
  );
  t.is(guidedJobFlops(base, QUEUE_DEFAULTS.guidedJobs * base), base);
  t.is(guidedJobFlops(base, 1e18), QUEUE_DEFAULTS.maxGuidedJobFlops);
  const long = causalPlan(1, 1 << 20, 64);
  t.deepEqual(batchPlan(long), batchPlan(long, { jobFlops: defaultJobFlops(long) }), 'long documents (base ≥ the guided cap): as before');
});

test('defaultJobFlops: 4 GFLOP for mid-size problems, flops / 64 for small ones, flops / maxTileJobs for the biggest', (t) => {
  t.is(defaultJobFlops(causalPlan(8, 32768, 64)), QUEUE_DEFAULTS.jobFlops);
  const small = causalPlan(1, 4096, 64);
  t.is(defaultJobFlops(small), small.flops / QUEUE_DEFAULTS.minTileJobs);
  // 1M tokens, 32 heads, D = 128 (≈ 9 PFLOP): half a q-block would leave ~130,000 jobs.
  const huge = causalPlan(32, 1 << 20, 128);
  t.is(defaultJobFlops(huge), huge.flops / QUEUE_DEFAULTS.maxTileJobs);
});

test('job ids and flow ids: BullMQ-safe (no ":", never all digits), derived, unique', (t) => {
  const ids = new Set(Array.from({ length: 200 }, newJobId));
  t.is(ids.size, 200);
  for (const id of ids) {
    t.true(isJobId(id));
    for (const node of [flowIds.root(id), flowIds.reduce(id, 7), flowIds.tile(id, 12)]) {
      t.false(node.includes(':'));
      t.false(/^\d+$/.test(node));
    }
  }
  t.false(isJobId('123'));
});

test('the flow: finalise ← reduce ← tile, failParentOnFailure, attempts with exponential backoff, sizeLimit, one prefix', (t) => {
  const groups = batchPlan(thePlan, { tilesPerJob: 2 });
  const flow = buildFlow('la-x-1', groups);
  t.is(flow.queueName, 'jobs');
  t.is(flow.opts?.jobId, 'la-x-1');
  t.is(flow.children!.length, groups.length);
  let tiles = 0;
  for (const reduce of flow.children!) {
    t.is(reduce.queueName, 'reduce');
    t.true(reduce.opts!.failParentOnFailure);
    for (const tile of reduce.children ?? []) {
      tiles++;
      t.is(tile.queueName, 'tiles');
      t.true(tile.opts!.failParentOnFailure);
      t.true((tile.opts!.attempts ?? 1) > 1);
      t.deepEqual(tile.opts!.backoff, { type: 'exponential', delay: 500 });
      t.true((tile.opts!.sizeLimit ?? Infinity) <= 64 << 10);
      t.true(JSON.stringify(tile.data).length < 1000, 'references, not tensors');
    }
  }
  t.is(
    tiles,
    groups.reduce((n, g) => n + g.tileJobs.length, 0),
  );
  t.is(QUEUE_PREFIX, 'bull:{longattn}');
  t.is(queueKey('tiles', 'wait'), 'bull:{longattn}:tiles:wait');
});

test('manifests survive JSON with unbounded windows', (t) => {
  const windowed = validateSpec({ q: [10, 8], k: [12, 8], v: [12, 8] }, { window: { left: -1, right: 3 } });
  const manifest: JobManifest = {
    version: 1,
    id: 'la-a-1',
    spec: windowed,
    qShape: [10, 8],
    blockQ: 4,
    blockK: 4,
    backend: 'js',
    blobs: 'redis',
    tileCount: 9,
    skippedTiles: 0,
    qBlockCount: 3,
    flops: 1,
    tileJobs: 1,
    reduceJobs: 1,
  };
  const back = decodeManifest(encodeManifest(manifest), 'la-a-1');
  t.deepEqual(back.spec, windowed);
  t.is(back.spec.window.left, Infinity);
});
