import { encodeModel, float } from '../onnx/model.ts';
import { OrtGraph, unshared } from '../ort/runtime.ts';
import type { Linear } from './linear.ts';

/**
 * y = Gemm(x, w; transB = 1) (+ b): every size through one session per (inDim, outDim, bias)
 * with a symbolic row count, so MLAS packs w once per call and runs the GEMM on one thread.
 */
function linearModel(inDim: number, outDim: number, bias: boolean): Uint8Array {
  return encodeModel({
    opsets: { '': 18 },
    graph: {
      name: 'longattn_linear',
      nodes: [
        { op: 'Gemm', inputs: bias ? ['x', 'w', 'b'] : ['x', 'w'], outputs: ['y'], attrs: { transB: 1, alpha: float(1), beta: float(1) } },
      ],
      inputs: [
        { name: 'x', type: 'float', dims: ['rows', inDim] },
        { name: 'w', type: 'float', dims: [outDim, inDim] },
        ...(bias ? [{ name: 'b', type: 'float' as const, dims: [outDim] }] : []),
      ],
      outputs: [{ name: 'y', type: 'float', dims: ['rows', outDim] }],
    },
  });
}

/** The ort projection: one 1-thread session per shape, opened on first use and kept. */
export async function ortLinear(): Promise<Linear> {
  const graphs = new Map<string, Promise<OrtGraph>>();
  const graph = (inDim: number, outDim: number, bias: boolean) => {
    const key = `${inDim}x${outDim}${bias ? '+b' : ''}`;
    let g = graphs.get(key);
    if (!g) {
      g = OrtGraph.open(linearModel(inDim, outDim, bias), 1);
      graphs.set(key, g);
    }
    return g;
  };
  return {
    name: 'ort',
    async run(x, rows, w, outDim, b) {
      const inDim = w.length / outDim;
      const g = await graph(inDim, outDim, b !== undefined);
      const feeds = {
        x: { data: unshared(x), dims: [rows, inDim] },
        w: { data: unshared(w), dims: [outDim, inDim] },
        ...(b ? { b: { data: unshared(b), dims: [outDim] } } : {}),
      };
      return (await g.run(feeds)).y!;
    },
    async dispose() {
      for (const g of graphs.values()) await (await g).dispose();
      graphs.clear();
    },
  };
}
