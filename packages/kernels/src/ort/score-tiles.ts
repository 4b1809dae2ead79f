import { createRequire } from 'node:module';
import { encodeModel, float } from '../onnx/model.ts';
import type { ScoreTiles } from '../score-tiles.ts';

/**
 * Score tiles for `longattn inspect`'s second pass (docs/math.md, "Attention patterns"), on MLAS:
 *   logp = Gemm(q, k; transB, alpha = scale, C = −lse, beta = 1)   [rows, keys]
 *   p    = Exp(logp)                                                [rows, keys]
 * q [rows, D], k [keys, D], −lse [rows, 1] float32. Every score of the tile is computed; the caller
 * reads only the visible ones.
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

type TensorClass = new (type: 'float32', data: Float32Array, dims: readonly number[]) => object;

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

function scoreModel(D: number, scale: number): Uint8Array {
  return encodeModel({
    opsets: { '': 18 },
    graph: {
      name: 'longattn_inspect_scores',
      nodes: [
        { op: 'Gemm', inputs: ['q', 'k', 'neglse'], outputs: ['logp'], attrs: { transB: 1, alpha: float(scale), beta: float(1) } },
        { op: 'Exp', inputs: ['logp'], outputs: ['p'] },
      ],
      inputs: [
        { name: 'q', type: 'float', dims: ['rows', D] },
        { name: 'k', type: 'float', dims: ['keys', D] },
        { name: 'neglse', type: 'float', dims: ['rows', 1] },
      ],
      outputs: [
        { name: 'logp', type: 'float', dims: ['rows', 'keys'] },
        { name: 'p', type: 'float', dims: ['rows', 'keys'] },
      ],
    },
  });
}

const plain = (a: Float32Array) => (a.buffer instanceof SharedArrayBuffer ? a.slice() : a);

const sessions = new Map<string, ScoreTiles>();

/**
 * This thread's ORT score tiles for (D, scale): one session, one intra-op thread (the pool gives
 * the parallelism), no spinning; null when onnxruntime-node does not load on this machine.
 */
export function ortScoreTiles(D: number, scale: number): ScoreTiles | null {
  const key = `${D}:${scale}`;
  const made = sessions.get(key);
  if (made) return made;
  const loaded = loadNative();
  if (!loaded) return null;
  const session = new loaded.ort.binding.InferenceSession();
  const model = scoreModel(D, scale);
  session.loadModel(model.buffer, model.byteOffset, model.byteLength, {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
  const { Tensor } = loaded;
  // Outputs go into buffers kept across calls (views of the tile's size): a fresh 2 MiB pair per
  // tile is external memory that V8 has to collect.
  let logp = new Float32Array(0);
  let p = new Float32Array(0);
  const tiles: ScoreTiles = {
    name: 'ort',
    score(q, rows, k, keys, negLse) {
      const n = rows * keys;
      if (logp.length < n) {
        logp = new Float32Array(n);
        p = new Float32Array(n);
      }
      const out = { logp: logp.subarray(0, n), p: p.subarray(0, n) };
      session.run(
        {
          q: new Tensor('float32', plain(q.subarray(0, rows * D)), [rows, D]),
          k: new Tensor('float32', plain(k.subarray(0, keys * D)), [keys, D]),
          neglse: new Tensor('float32', plain(negLse.subarray(0, rows)), [rows, 1]),
        },
        { logp: new Tensor('float32', out.logp, [rows, keys]), p: new Tensor('float32', out.p, [rows, keys]) },
        {},
      );
      return out;
    },
  };
  sessions.set(key, tiles);
  return tiles;
}
