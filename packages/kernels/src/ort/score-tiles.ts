import { createRequire } from 'node:module';
import { encodeModel, float, type OnnxNode } from '../onnx/model.ts';
import type { ScoreSums, ScoreTiles } from '../score-tiles.ts';

/**
 * Score tiles for `longattn inspect`'s second pass (docs/math.md, "Attention patterns"), on MLAS,
 * one graph per tile:
 *   logp   = Where(mask, Gemm(q, k; transB, alpha = scale, C = −lse, beta = 1), −1e30)   [rows, keys]
 *            (so a masked p is 0 and adds 0 to every sum, whatever its score)
 *   p      = Exp(logp)                                                 [rows, keys]
 *   plogp  = ReduceSum(p·logp, 1)                                      [rows]
 *   pdist  = ReduceSum(p·|rowPos − colPos|, 1)                         [rows]
 *   columns = MatMul(groups, p)                                        [groups, keys]
 * q [rows, D], k [keys, D], −lse and rowPos [rows, 1], colPos = 0 … keys−1 [1, keys], groups
 * [groups, rows], float32; mask bool [rows, keys], or [1, 1] true for a tile without a masked pair
 * (one graph for both). The sums are float32 over ≤ one tile's keys (rows for `columns`), folded
 * by the caller in float64.
 *
 * Synchronous on purpose: the inspect chunk (engine/src/inspect/chunk.ts) is a plain function that
 * local pool threads and queue workers both call. onnxruntime-node's public `run` is a Promise
 * around a synchronous native call (its backend defers it with setImmediate), so this file talks to
 * that native session directly — the addon of the exact onnxruntime-node version pinned in
 * package.json; test/inspect/scores.test.ts fails if an upgrade changes it.
 */
interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: object, fetches: object, options: object): unknown;
}

interface Native {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

type TensorClass = new (type: 'float32' | 'bool', data: Float32Array | Uint8Array, dims: readonly number[]) => object;

let native: { ort: Native; Tensor: TensorClass } | null | undefined;

/** The native binding and the Tensor class it expects, or null when the addon does not load here. */
function loadNative(): { ort: Native; Tensor: TensorClass } | null {
  if (native !== undefined) return native;
  try {
    const require = createRequire(import.meta.resolve('onnxruntime-node'));
    const ort = require('./binding.js') as Native;
    const { Tensor } = require('onnxruntime-common') as { Tensor: TensorClass };
    ort.initOrt();
    native = { ort, Tensor };
  } catch {
    native = null;
  }
  return native;
}

/** The tile graph (above); `grouped` adds the groups input and the `columns` output. */
function scoreModel(D: number, scale: number, grouped: boolean): Uint8Array {
  const rowSum = (input: string, output: string): OnnxNode => ({
    op: 'ReduceSum',
    inputs: [input, 'axes'],
    outputs: [output],
    attrs: { keepdims: 0 },
  });
  const nodes: OnnxNode[] = [
    {
      op: 'Gemm',
      inputs: ['q', 'k', 'neglse'],
      outputs: ['scores'],
      attrs: { transB: 1, alpha: float(scale), beta: float(1) },
    },
    { op: 'Where', inputs: ['mask', 'scores', 'masked'], outputs: ['logp'] },
    { op: 'Exp', inputs: ['logp'], outputs: ['p'] },
    { op: 'Mul', inputs: ['p', 'logp'], outputs: ['pl'] },
    rowSum('pl', 'plogp'),
    { op: 'Sub', inputs: ['rowpos', 'colpos'], outputs: ['offset'] },
    { op: 'Abs', inputs: ['offset'], outputs: ['dist'] },
    { op: 'Mul', inputs: ['p', 'dist'], outputs: ['pd'] },
    rowSum('pd', 'pdist'),
    ...(grouped ? [{ op: 'MatMul', inputs: ['groups', 'p'], outputs: ['columns'] }] : []),
  ];
  return encodeModel({
    opsets: { '': 18 },
    graph: {
      name: 'longattn_inspect_scores',
      nodes,
      inputs: [
        { name: 'q', type: 'float', dims: ['rows', D] },
        { name: 'k', type: 'float', dims: ['keys', D] },
        { name: 'neglse', type: 'float', dims: ['rows', 1] },
        { name: 'rowpos', type: 'float', dims: ['rows', 1] },
        { name: 'colpos', type: 'float', dims: [1, 'keys'] },
        { name: 'mask', type: 'bool', dims: ['maskRows', 'maskKeys'] },
        ...(grouped ? [{ name: 'groups', type: 'float' as const, dims: ['groups', 'rows'] }] : []),
      ],
      outputs: [
        { name: 'p', type: 'float', dims: ['rows', 'keys'] },
        { name: 'plogp', type: 'float', dims: ['rows'] },
        { name: 'pdist', type: 'float', dims: ['rows'] },
        ...(grouped ? [{ name: 'columns', type: 'float' as const, dims: ['groups', 'keys'] }] : []),
      ],
      initializers: [
        { name: 'axes', dims: [1], data: BigInt64Array.of(1n) },
        { name: 'masked', dims: [], data: Float32Array.of(-1e30) },
      ],
    },
  });
}

const plain = <T extends Float32Array | Uint8Array>(a: T): T => (a.buffer instanceof SharedArrayBuffer ? (a.slice() as T) : a);

/** A float32 buffer kept across calls, grown to the largest size asked; `view(n)` is its first n. */
class Kept {
  private data = new Float32Array(0);
  view(n: number): Float32Array {
    if (this.data.length < n) this.data = new Float32Array(n);
    return this.data.subarray(0, n);
  }
}

const sessions = new Map<string, ScoreTiles>();

/**
 * This thread's ORT score tiles for (D, scale): sessions made on first use (with column groups
 * or not), one intra-op thread each (the pool gives the parallelism), no spinning;
 * null when onnxruntime-node does not load on this machine.
 */
export function ortScoreTiles(D: number, scale: number): ScoreTiles | null {
  const key = `${D}:${scale}`;
  const made = sessions.get(key);
  if (made) return made;
  const loaded = loadNative();
  if (!loaded) return null;
  const { Tensor } = loaded;
  const graphs = new Map<string, NativeSession>();
  const session = (grouped: boolean) => {
    const name = `${grouped}`;
    let s = graphs.get(name);
    if (!s) {
      s = new loaded.ort.binding.InferenceSession();
      const model = scoreModel(D, scale, grouped);
      s.loadModel(model.buffer, model.byteOffset, model.byteLength, {
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      });
      graphs.set(name, s);
    }
    return s;
  };
  // Outputs go into buffers kept across calls (views of the tile's size): a fresh 2 MiB one per
  // tile is external memory that V8 has to collect.
  const p = new Kept();
  const plogp = new Kept();
  const pdist = new Kept();
  const columns = new Kept();
  let colPos = new Float32Array(0); // 0, 1, 2, …
  const unmasked = Uint8Array.of(1);
  const tiles: ScoreTiles = {
    name: 'ort',
    score({ q, rows, k, keys, negLse, rowPos, mask, groups, groupCount = 0 }) {
      const grouped = groups !== undefined && groupCount > 0;
      if (colPos.length < keys) colPos = Float32Array.from({ length: keys }, (_, c) => c);
      const out: ScoreSums = {
        p: p.view(rows * keys),
        plogp: plogp.view(rows),
        pdist: pdist.view(rows),
        ...(grouped ? { columns: columns.view(groupCount * keys) } : {}),
      };
      const f32 = (name: string, data: Float32Array, dims: number[]) => [name, new Tensor('float32', data, dims)] as const;
      session(grouped).run(
        Object.fromEntries([
          f32('q', plain(q.subarray(0, rows * D)), [rows, D]),
          f32('k', plain(k.subarray(0, keys * D)), [keys, D]),
          f32('neglse', plain(negLse.subarray(0, rows)), [rows, 1]),
          f32('rowpos', plain(rowPos.subarray(0, rows)), [rows, 1]),
          f32('colpos', colPos.subarray(0, keys), [1, keys]),
          ['mask', mask ? new Tensor('bool', plain(mask.subarray(0, rows * keys)), [rows, keys]) : new Tensor('bool', unmasked, [1, 1])],
          ...(grouped ? [f32('groups', plain(groups.subarray(0, groupCount * rows)), [groupCount, rows])] : []),
        ]),
        Object.fromEntries([
          f32('p', out.p, [rows, keys]),
          f32('plogp', out.plogp as Float32Array, [rows]),
          f32('pdist', out.pdist as Float32Array, [rows]),
          ...(grouped ? [f32('columns', out.columns as Float32Array, [groupCount, keys])] : []),
        ]),
        {},
      );
      return out;
    },
  };
  sessions.set(key, tiles);
  return tiles;
}
