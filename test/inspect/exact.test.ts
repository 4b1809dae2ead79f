import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runInspect, type InspectRequest, type InspectResult } from '@longattn/engine';
import { readTensor, uniformF32, writeTensor } from '@longattn/tensor';
import { tempDir } from '../support/cli.ts';
import { referenceInspect, referenceMap, referenceTop, type RefHead, type RefProblem } from './reference.ts';

/**
 * runInspect against the float64 definitions (reference.ts) on odd shapes, with windows, causal,
 * the pattern flags, GQA and fully masked rows: every statistic, top-k list, weight row, received
 * vector and map cell.
 * Tolerance (docs/math.md, "Attention patterns: precision"): the engine's p = exp(logp) with
 * logp = s·q·k − lse from a float32 GEMM (score tiles) and a float32 LSE (the first pass, or the
 * --lse file), so p carries a relative error of about (D·s·Σ|q_d k_d| + |s·q·k| + |lse|)·2⁻²⁴; with
 * these inputs (|q|, |k| ≤ 1, D ≤ 7, |lse| ≤ 5) that is below 1e-6, and 1e-5 leaves 10× room while
 * still catching any off-by-one key, wrong mask or wrong normalisation (each ≥ 1e-3 on these sizes).
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
  {
    name: 'GQA causal + sinks 3 + stride 5 + globals 7,40, Sq < Sk, 47×61 d6',
    problem: { layout: 'bhsd', B: 1, H: 4, Hk: 2, Sq: 47, Sk: 61, D: 6, causal: true, sinks: 3, stride: 5, global: [7, 40] },
    rows: [0, 47],
    mapSize: 9,
    topK: 4,
    sinks: 2,
    local: 3,
  },
  {
    name: 'per-head block mask (block 8) ∪ window (2,1), a zero block row: fully masked rows, Sq > Sk, 45×38 d5',
    problem: {
      layout: 'bshd',
      B: 1,
      H: 2,
      Hk: 1,
      Sq: 45,
      Sk: 38,
      D: 5,
      causal: false,
      window: [2, 1],
      // [H = 2, nQb = 6, nKb = 5]: head 1's block row 0 is all zero and the window (2,1) around
      // pos(i) = i − 7 reaches no key for rows 0 … 5, so those rows of head 1 see nothing.
      blockMask: {
        block: 8,
        shape: [2, 6, 5],
        cells: [
          ...[1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0],
          ...[0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1],
        ],
      },
    },
    rows: [0, 12],
    mapSize: 6,
    topK: 3,
    sinks: 4,
    local: 2,
  },
  {
    name: 'StreamingLLM: causal window (6,0) ∪ sinks 2, global row 30, two chunks, 1100×1100 d4',
    problem: { layout: 'bhsd', B: 1, H: 1, Hk: 1, Sq: 1100, Sk: 1100, D: 4, causal: true, window: [6, 0], sinks: 2, global: [30] },
    rows: [1020, 1030],
    mapSize: 17,
    topK: 4,
    sinks: 2,
    local: 3,
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
      ...(pr.sinks || pr.global || pr.stride || pr.blockMask
        ? {
            pattern: {
              ...(pr.sinks ? { sinks: pr.sinks } : {}),
              ...(pr.global ? { global: [...pr.global] } : {}),
              ...(pr.stride ? { stride: pr.stride } : {}),
              ...(pr.blockMask ? { blockMask: pr.blockMask } : {}),
            },
          }
        : {}),
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
      const want = referenceTop(pr, head.h, i, r.p[i]!, c.topK);
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
    const ref = referenceInspect(pr, c.sinks, c.local);
    check(t, c, pr, result, ref);
    t.is(result.scores, 'ort');
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
