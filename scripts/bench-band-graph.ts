/**
 * CPU time per call of ort's band graph (bandModel) against today's tiles for the same rows
 * (docs/math.md, "Band tiles"): graph calls alone, one thread, random inputs, CPU time
 * (process.cpuUsage) of `calls` calls after a warm-up, median of `reps`; GFLOP/s count visible pairs only.
 *
 *   node --import tsx scripts/bench-band-graph.ts [--calls 200] [--reps 5]
 */
import { parseArgs } from 'node:util';
import { OrtGraph } from '@longattn/kernels';
import { bandModel, tileModel } from '../packages/kernels/src/ort/tile-graph.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '200' }, reps: { type: 'string', default: '5' } } });
const calls = Number(values.calls);
const reps = Number(values.reps);
const D = 64;
const scale = 1 / Math.sqrt(D);
const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const graphs = {
  free: await OrtGraph.open(tileModel('rows', 'keys', D, scale, false)),
  masked: await OrtGraph.open(tileModel('rows', 'keys', D, scale, true)),
  band: await OrtGraph.open(bandModel(D, scale)),
};

/** Median CPU ms per call of `run`. */
async function time(run: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await run();
  const ms: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) await run();
    const t = process.cpuUsage(t0);
    ms.push((t.user + t.system) / 1000 / calls);
  }
  return median(ms);
}

const tile = (masked: boolean, rows: number, keys: number, vis?: Uint8Array) => {
  const q = random(rows * D);
  const k = random(keys * D);
  const v = random(keys * D);
  const g = masked ? graphs.masked : graphs.free;
  return () =>
    g.run({
      q: { data: q, dims: [rows, D] },
      k: { data: k, dims: [keys, D] },
      v: { data: v, dims: [keys, D] },
      ...(masked ? { vis: { data: vis!, dims: [rows, keys] } } : {}),
    });
};

/** A band call: rows in sub-blocks of r, each seeing `shared` keys and its window (left, right) of positions. */
const band = (rows: number, r: number, shared: number, left: number, right: number) => {
  const B = rows / r;
  const K = shared + r - 1 + left + right + 1;
  const vis = new Uint8Array(r * K);
  for (let x = 0; x < r; x++) {
    vis.fill(1, x * K, x * K + shared);
    vis.fill(1, x * K + shared + x, x * K + shared + x + left + right + 1);
  }
  const q = random(rows * D);
  const k = random(B * K * D);
  const v = random(B * K * D);
  return {
    K,
    run: () =>
      graphs.band.run({
        q: { data: q, dims: [B, r, D] },
        k: { data: k, dims: [B, K, D] },
        v: { data: v, dims: [B, K, D] },
        vis: { data: vis, dims: [r, K] },
      }),
  };
};

/** [rows, keys] visibility of row x seeing keys [x + lo, x + hi] (relative), clipped to the tile. */
const diagonal = (rows: number, keys: number, lo: number, hi: number) => {
  const vis = new Uint8Array(rows * keys);
  for (let x = 0; x < rows; x++) {
    const a = Math.max(0, x + lo);
    const b = Math.min(keys - 1, x + hi);
    if (b >= a) vis.fill(1, x * keys + a, x * keys + b + 1);
  }
  return vis;
};

const gflops = (pairs: number, ms: number) => ((4 * pairs * D) / ms / 1e6).toFixed(1);
const line = (name: string, pairs: number, ms: number) =>
  console.log(`${name.padEnd(44)} ${ms.toFixed(3)} ms/q-block  ${gflops(pairs, ms)} visible GFLOP/s`);

const big = await time(tile(false, 256, 2048));
line('reference: mask-free 256x2048', 256 * 2048, big);

// Longformer, window (256, 256) + 16 global keys, an interior q-block of 256 rows: 529 keys a row.
const lfPairs = 256 * 529;
{
  // today: the 16 globals + the 258 keys every row sees (mask-free), the band's two edges (masked, 510 keys).
  const free = tile(false, 256, 274);
  const edges = tile(
    true,
    256,
    510,
    (() => {
      const vis = new Uint8Array(256 * 510);
      for (let x = 0; x < 256; x++) {
        vis.fill(1, x * 510 + x, x * 510 + 255); // left edge: keys qStart−256+x … qStart−2
        vis.fill(1, x * 510 + 255, x * 510 + 255 + x); // right edge: keys qStart+257 … qStart+256+x
      }
      return vis;
    })(),
  );
  line(
    'longformer today: 256x274 free + 256x510 masked',
    lfPairs,
    await time(async () => {
      await free();
      await edges();
    }),
  );
  const whole = tile(
    true,
    256,
    16 + 767,
    (() => {
      const vis = diagonal(256, 783, 16, 16 + 512);
      for (let x = 0; x < 256; x++) vis.fill(1, x * 783, x * 783 + 16);
      return vis;
    })(),
  );
  line('longformer one masked 256x783', lfPairs, await time(whole));
  for (const r of [16, 32, 64, 128]) {
    const b = band(256, r, 16, 256, 256);
    line(`longformer band r=${r} (K=${b.K})`, lfPairs, await time(b.run));
  }
}
// Strided's window part: causal window (127, 0), 128 keys a row.
const stPairs = 256 * 128;
line('window (127,0) today: 256x383 masked', stPairs, await time(tile(true, 256, 383, diagonal(256, 383, 0, 127))));
for (const r of [16, 32, 64, 128]) {
  const b = band(256, r, 0, 127, 0);
  line(`window (127,0) band r=${r} (K=${b.K})`, stPairs, await time(b.run));
}
// Wider causal windows (left, 0): today's tiles are the core every row sees (mask-free, ≤ 2048 keys a tile) and the
// two edges (256×510 masked); the band holds r − 1 + width keys a row, all masked. Where the band stops paying: MAX_BAND_WIDTH.
for (const width of [512, 768, 1024, 2048, 4096]) {
  const core = width - 255;
  const edges = diagonal(256, 510, 0, 254); // half of the 510 edge keys a row (the two triangles), as the real edges
  const free = [...Array(Math.ceil(core / 2048)).keys()].map((n) => tile(false, 256, Math.min(2048, core - n * 2048)));
  const masked = tile(true, 256, 510, edges);
  const today = async () => {
    for (const f of free) await f();
    await masked();
  };
  line(`causal window (${width - 1},0) today: ${core} free + 510 masked`, 256 * width, await time(today));
  const b = band(256, 64, 0, width - 1, 0);
  line(`causal window (${width - 1},0) band r=64 (K=${b.K})`, 256 * width, await time(b.run));
}
for (const g of Object.values(graphs)) await g.dispose();
