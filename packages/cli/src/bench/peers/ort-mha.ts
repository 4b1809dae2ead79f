import { encodeModel, OrtGraph } from '@longattn/kernels';
import {
  availableBytes,
  denseGflops,
  median,
  peakRssMB,
  peerInput,
  timeRuns,
  type PeerOptions,
  type PeerResult,
  type PeerSkipped,
} from './peer-common.ts';
import { runPeer } from './peer-process.ts';

/**
 * Peer: onnxruntime's fused `com.microsoft` MultiHeadAttention on the same inputs.
 * query [1, Sq, H·D], key and value [1, Sk, H·D] → output [1, Sq, H·D]; scale 1/√D (its default).
 * Dense runs take its flash path (memory flat); `unidirectional=1` (causal) builds the H×Sq×Sk
 * probabilities, so causal is skipped when that would not fit in memory.
 */
export function mhaModel(Sq: number, Sk: number, H: number, D: number, causal: boolean): Uint8Array {
  const hd = H * D;
  return encodeModel({
    opsets: { '': 18, 'com.microsoft': 1 },
    graph: {
      name: 'mha_peer',
      nodes: [
        {
          op: 'MultiHeadAttention',
          domain: 'com.microsoft',
          inputs: ['query', 'key', 'value'],
          outputs: ['out'],
          attrs: { num_heads: H, ...(causal ? { unidirectional: 1 } : {}) },
        },
      ],
      inputs: [
        { name: 'query', type: 'float', dims: [1, Sq, hd] },
        { name: 'key', type: 'float', dims: [1, Sk, hd] },
        { name: 'value', type: 'float', dims: [1, Sk, hd] },
      ],
      outputs: [{ name: 'out', type: 'float', dims: [1, Sq, hd] }],
    },
  });
}

/** Bytes the unfused causal path holds: the probabilities and a mask, H×Sq×Sk and Sq×Sk floats. */
const causalBytes = (o: PeerOptions): number => (o.H + 1) * o.Sq * o.Sk * 4;

/** In this process: builds the model, times `reps` runs after one warm-up. */
export async function measureOrtMha(opts: PeerOptions): Promise<PeerResult | PeerSkipped> {
  const { Sq, Sk, H, D, threads, reps } = opts;
  const causal = opts.causal ?? false;
  if (causal && causalBytes(opts) > 0.6 * availableBytes()) {
    return { skipped: `causal MultiHeadAttention builds ${(causalBytes(opts) / 2 ** 30).toFixed(1)} GiB of S×S, more than fits` };
  }
  const graph = await OrtGraph.open(mhaModel(Sq, Sk, H, D, causal), threads);
  const hd = H * D;
  const feeds = {
    query: graph.tensor({ data: peerInput(Sq * hd, 1), dims: [1, Sq, hd] }),
    key: graph.tensor({ data: peerInput(Sk * hd, 2), dims: [1, Sk, hd] }),
    value: graph.tensor({ data: peerInput(Sk * hd, 3), dims: [1, Sk, hd] }),
  };
  const { ms, cpuMs } = await timeRuns(reps, () => graph.run(feeds));
  await graph.dispose();
  return { ms, cpuMs, gflops: denseGflops(opts, median(ms)), peakRssMB: peakRssMB() };
}

/** The peer in its own process (its peak RSS is its own). */
export function runOrtMha(opts: PeerOptions): Promise<PeerResult | PeerSkipped> {
  return runPeer('ort-mha', opts);
}
