import type * as Ort from 'onnxruntime-node';

/**
 * onnxruntime-node, loaded on first use (so importing @longattn/kernels never loads the addon),
 * and one way to open sessions: graph optimisation on, `threads` intra-op threads, one inter-op
 * thread, and no spinning (several sessions sharing few cores otherwise fight with idle spins).
 */
let loaded: Promise<typeof Ort> | undefined;

/** Where onnxruntime-node's entry lives (a file URL), for scripts run outside this package. */
export function ortModuleUrl(): string {
  return import.meta.resolve('onnxruntime-node');
}

export function loadOrt(): Promise<typeof Ort> {
  loaded ??= import('onnxruntime-node');
  return loaded;
}

/** An input of dims' product elements: float32, or bool from a Uint8Array of 0/1. */
export interface Feed {
  data: Float32Array | Uint8Array;
  dims: readonly number[];
}

/** One ONNX model in one session; run() takes and returns plain float32 arrays by name. */
export class OrtGraph {
  private constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
  ) {}

  static async open(model: Uint8Array, threads = 1): Promise<OrtGraph> {
    const ort = await loadOrt();
    const session = await ort.InferenceSession.create(model, {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
    return new OrtGraph(ort, session);
  }

  /** Feeds are wrapped as they are (SharedArrayBuffer-backed arrays are refused by ORT: copy them first). */
  async run(feeds: Record<string, Feed | Ort.Tensor>): Promise<Record<string, Float32Array>> {
    const tensors: Record<string, Ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) tensors[name] = f instanceof this.ort.Tensor ? f : this.tensor(f as Feed);
    const results = await this.session.run(tensors);
    const out: Record<string, Float32Array> = {};
    for (const [name, t] of Object.entries(results)) out[name] = t.data as Float32Array;
    return out;
  }

  tensor(f: Feed): Ort.Tensor {
    return f.data instanceof Uint8Array ? new this.ort.Tensor('bool', f.data, f.dims) : new this.ort.Tensor('float32', f.data, f.dims);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** `a` itself, or a plain copy when it lives in a SharedArrayBuffer (which ORT tensors refuse). */
export function unshared(a: Float32Array): Float32Array {
  return a.buffer instanceof SharedArrayBuffer ? a.slice() : a;
}
