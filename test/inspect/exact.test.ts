import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runInspect, type InspectRequest, type InspectResult } from '@longattn/engine';
import { readTensor, uniformF32, writeTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';
import { referenceInspect, referenceMap, referenceTop, type RefHead, type RefProblem } from './reference.ts';

/**
 * runInspect against the float64 definitions (reference.ts) on odd shapes: every statistic, top-k
 * list, weight row, received vector and map cell.
 * Tolerance: the engine's p uses the kernels' float32 LSE (the first pass) or a float32 --lse file,
 * so p carries a relative error of about |lse|·2⁻²⁴ ≈ 1e-6 here; 1e-5 leaves 10× room and still
 * catches any off-by-one key, wrong mask or wrong normalisation (each ≥ 1e-3 on these sizes).
 */
const TOL = 1e-5;

interface Case {
  name: string;
  problem: Omit<RefProblem, 'q' | 'k'>;
  rows: [number, number];
  mapSize: number;
  topK: number;
  sinks: number;
  local: number;
}

const cases: Case[] = [
  {
    name: 'GQA causal + window, Sq > Sk (16 fully masked rows), 53×37 d7',
    problem: { layout: 'bhsd', B: 1, H: 4, Hk: 2, Sq: 53, Sk: 37, D: 7, causal: true, window: [5, -1] },
    rows: [13, 22],
    mapSize: 7,
    topK: 3,
    sinks: 3,
    local: 2,
  },
  {
    name: 'bshd B=2, window (3,2) both sides, scale 0.7, 41×29 d5',
    problem: { layout: 'bshd', B: 2, H: 3, Hk: 3, Sq: 41, Sk: 29, D: 5, causal: false, window: [3, 2], scale: 0.7 },
    rows: [0, 41],
    mapSize: 64,
    topK: 8,
    sinks: 4,
    local: 1,
  },
  {
    name: 'two chunks (1030 rows), left window 40, 1030×67 d3',
    problem: { layout: 'bhsd', B: 1, H: 1, Hk: 1, Sq: 1030, Sk: 67, D: 3, causal: false, window: [40, -1] },
    rows: [1020, 1027],
    mapSize: 13,
    topK: 5,
    sinks: 1,
    local: 50,
  },
];

function makeProblem(c: Case, seed: number): RefProblem {
  const { B, H, Hk, Sq, Sk, D } = c.problem;
  return { ...c.problem, q: uniformF32(B * H * Sq * D, seed), k: uniformF32(B * Hk * Sk * D, seed + 1) };
}

function shapes(pr: RefProblem): { q: number[]; k: number[]; lse: number[] } {
  const seq = (heads: number, S: number) => (pr.layout === 'bhsd' ? [pr.B, heads, S, pr.D] : [pr.B, S, heads, pr.D]);
  return { q: seq(pr.H, pr.Sq), k: seq(pr.Hk, pr.Sk), lse: [pr.B, pr.H, pr.Sq] };
}

function request(c: Case, pr: RefProblem, dir: string, lse?: string): InspectRequest {
  const s = shapes(pr);
  writeTensor(join(dir, 'q.npy'), s.q, pr.q);
  writeTensor(join(dir, 'k.npy'), s.k, pr.k);
  return {
    q: join(dir, 'q.npy'),
    k: join(dir, 'k.npy'),
    options: {
      layout: pr.layout,
      causal: pr.causal,
      ...(pr.window ? { window: { left: pr.window[0], right: pr.window[1] } } : {}),
      ...(pr.scale !== undefined ? { scale: pr.scale } : {}),
    },
    ...(lse ? { lse } : {}),
    rows: { from: c.rows[0], to: c.rows[1] },
    topK: c.topK,
    sinksStat: c.sinks,
    localStat: c.local,
    weightsOut: join(dir, 'w.npy'),
    received: join(dir, 'r.npy'),
    map: join(dir, 'map.png'),
    mapSize: c.mapSize,
    backend: 'js',
  };
}

const close = (ours: number, ref: number, scale = 1) => Math.abs(ours - ref) <= TOL * Math.max(1, scale, Math.abs(ref));

function check(t: import('ava').ExecutionContext, c: Case, pr: RefProblem, result: InspectResult, ref: RefHead[]): void {
  const { report } = result;
  t.is(report.heads.length, pr.B * pr.H);
  const tracked = c.rows[1] - c.rows[0];
  const weights = readTensor(join(result.files.weightsOut!)).data;
  const received = readTensor(result.files.received!).data;
  const nr = Math.min(c.mapSize, pr.Sq);
  const nc = Math.min(c.mapSize, pr.Sk);
  t.deepEqual(result.mapGrid, [nr, nc]);
  report.heads.forEach((head, x) => {
    const r = ref[x]!;
    const where = `b=${head.b} h=${head.h}`;
    t.is(head.rows, r.rows, `${where} rows`);
    for (const key of ['entropy', 'sinkShare', 'localShare'] as const)
      t.true(close(head[key]!, r[key]!), `${where} ${key}: ${head[key]} vs ${r[key]}`);
    t.true(close(head.meanDistance!, r.meanDistance!, pr.Sk), `${where} meanDistance: ${head.meanDistance} vs ${r.meanDistance}`);
    t.is(head.top.length, tracked);
    head.top.forEach((row, n) => {
      const i = c.rows[0] + n;
      t.is(row.row, i);
      if (r.lse[i] === -Infinity) {
        t.is(row.lse, null, `${where} row ${i} sees no key`);
        t.deepEqual(row.keys, []);
        return;
      }
      t.true(close(row.lse!, r.lse[i]!), `${where} row ${i} lse`);
      const want = referenceTop(pr, i, r.p[i]!, c.topK);
      t.deepEqual(
        row.keys.map(([j]) => j),
        want.map(([j]) => j),
        `${where} row ${i} top keys`,
      );
      row.keys.forEach(([, p], s) => {
        t.true(close(p, want[s]![1]), `${where} row ${i} top p`);
      });
    });
    for (let n = 0; n < tracked; n++) {
      const row = weights.subarray((x * tracked + n) * pr.Sk, (x * tracked + n + 1) * pr.Sk);
      const want = r.p[c.rows[0] + n]!;
      for (let j = 0; j < pr.Sk; j++) {
        if (want[j] === 0) t.is(row[j], 0, `${where} weight (${c.rows[0] + n}, ${j}) masked`);
        else if (!close(row[j]!, want[j]!)) t.fail(`${where} weight (${c.rows[0] + n}, ${j}): ${row[j]} vs ${want[j]}`);
      }
    }
    for (let j = 0; j < pr.Sk; j++) {
      if (!close(received[x * pr.Sk + j]!, r.received[j]!))
        t.fail(`${where} received[${j}]: ${received[x * pr.Sk + j]} vs ${r.received[j]}`);
    }
    const map = referenceMap(pr, r, nr, nc);
    const ours = result.mapMeans!.subarray(x * nr * nc, (x + 1) * nr * nc);
    for (let cell = 0; cell < map.length; cell++) {
      if (Math.abs(ours[cell]! - map[cell]!) > TOL * map[cell]! + 1e-12) t.fail(`${where} map cell ${cell}: ${ours[cell]} vs ${map[cell]}`);
    }
  });
}

for (const [n, c] of cases.entries()) {
  test(`inspect exact (first pass LSE): ${c.name}`, async (t) => {
    const pr = makeProblem(c, 100 + n);
    const dir = tempDir();
    const result = await runInspect(request(c, pr, dir), { threads: 2 });
    t.is(result.lseFrom, 'pass');
    check(t, c, pr, result, referenceInspect(pr, c.sinks, c.local));
    t.true(readFileSync(result.files.map!).subarray(1, 4).equals(Buffer.from('PNG')));
  });

  test(`inspect exact (--lse given): ${c.name}`, async (t) => {
    const pr = makeProblem(c, 200 + n);
    const dir = tempDir();
    const ref = referenceInspect(pr, c.sinks, c.local);
    const lse = new Float32Array(pr.B * pr.H * pr.Sq);
    ref.forEach((head, x) => {
      lse.set(Float32Array.from(head.lse), x * pr.Sq);
    });
    writeTensor(join(dir, 'lse.npy'), shapes(pr).lse, lse);
    const result = await runInspect(request(c, pr, dir, join(dir, 'lse.npy')), { threads: 1 });
    t.is(result.lseFrom, 'file');
    check(t, c, pr, result, ref);
  });
}
