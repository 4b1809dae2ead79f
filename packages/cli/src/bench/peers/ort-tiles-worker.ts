import { parentPort, workerData } from 'node:worker_threads';
import { emptyPartial, maskRule, merge, plan, validateSpec, type TilePartial, type Tile } from '@longattn/attention';
import { getBackend, type TileJob } from '@longattn/kernels';
import { peerInput } from './peer-common.ts';
import type { OrtTilesWorkerData } from './ort-tiles.ts';

/** One worker of ort-tiles.ts: on each 'run', pulls q-blocks until none is left, then says 'done'. */
const { opts, sessionThreads, counter } = workerData as OrtTilesWorkerData;
const { Sq, Sk, H, D } = opts;
const spec = validateSpec({ q: [H, Sq, D], k: [H, Sk, D], v: [H, Sk, D] }, { causal: opts.causal });
const rule = maskRule(spec);
const grid = [...plan(spec, { blockQ: opts.blockQ, blockK: opts.blockK }).blocks()];
const q = peerInput(H * Sq * D, 1);
const k = peerInput(H * Sk * D, 2);
const v = peerInput(H * Sk * D, 3);
const out = new Float32Array(H * Sq * D);
const lse = new Float32Array(H * Sq);
const next = new Int32Array(counter);
const kernel = await getBackend('ort').create({ threads: sessionThreads });

const job = (t: Tile): TileJob => {
  const qAt = (t.h * Sq + t.qStart) * D;
  const kAt = (t.kvh * Sk + t.kStart) * D;
  return {
    rows: t.rows,
    keys: t.keys,
    D,
    scale: spec.scale,
    qStart: t.qStart,
    kStart: t.kStart,
    rule,
    full: t.full,
    q: q.subarray(qAt, qAt + t.rows * D),
    k: k.subarray(kAt, kAt + t.keys * D),
    v: v.subarray(kAt, kAt + t.keys * D),
  };
};

// Open every session this worker may need (one per tile shape) before the clock starts.
const shapes = new Map<string, Tile>();
for (const t of grid.flatMap((qb) => qb.tiles)) shapes.set(`${t.rows}x${t.keys}:${t.full}`, t);
for (const t of shapes.values()) await kernel.run(job(t));
parentPort!.postMessage('ready');

parentPort!.on('message', async () => {
  for (let i = Atomics.add(next, 0, 1); i < grid.length; i = Atomics.add(next, 0, 1)) {
    const qb = grid[i]!;
    const partials: TilePartial[] = [];
    for (const t of qb.tiles) partials.push(await kernel.run(job(t)));
    const m = partials.length ? merge(partials) : emptyPartial(qb.rows, D);
    out.set(m.o, (qb.h * Sq + qb.qStart) * D);
    lse.set(m.lse, qb.h * Sq + qb.qStart);
  }
  parentPort!.postMessage('done');
});
