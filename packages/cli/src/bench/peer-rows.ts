import { type ColdInputs, coldNumpy, coldOrtMha } from './peers/cold-runs.ts';
import { runNumpy } from './peers/numpy-peer.ts';
import { runOrtMha } from './peers/ort-mha.ts';
import { median, type PeerOptions, type PeerResult, type PeerSkipped } from './peers/peer-common.ts';
import { type BenchCase, type BenchRow, rowBase } from './rows.ts';

/** A peer: timed warm in its own process, and as cold whole processes. */
interface Peer {
  who: string;
  warm: (o: PeerOptions) => Promise<PeerResult | PeerSkipped>;
  cold: (o: ColdInputs) => Promise<number | PeerSkipped>;
}

/** The peers, in the order their rows are written. */
export const PEERS: readonly Peer[] = [
  { who: 'onnxruntime MultiHeadAttention', warm: runOrtMha, cold: coldOrtMha },
  { who: 'numpy naive', warm: runNumpy, cold: coldNumpy },
];

/** One peer on one case; a peer that cannot run (or fails) gives a skipped row saying why. */
export async function measurePeer(peer: Peer, c: BenchCase, o: { dir: string; threads: number; reps: number }): Promise<BenchRow> {
  const base = rowBase(peer.who, c);
  const { n, H, D, causal } = c;
  try {
    const warm = await peer.warm({ Sq: n, Sk: n, H, D, threads: o.threads, reps: o.reps, causal });
    if ('skipped' in warm) return { ...base, skipped: warm.skipped };
    const processMs = await peer.cold({ files: c.files, dir: o.dir, H, S: n, D, threads: o.threads, reps: o.reps, causal });
    const ms = median(warm.ms);
    return {
      ...base,
      ms,
      ...(typeof processMs === 'number' ? { processMs } : {}),
      gflops: c.flops / 1e6 / ms,
      peakRssMB: warm.peakRssMB,
    };
  } catch (error) {
    return { ...base, skipped: `failed: ${(error as Error).message.split('\n')[0]}` };
  }
}
