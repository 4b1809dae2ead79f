import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { numpyPython } from './python.ts';
import { denseGflops, median, type PeerOptions, type PeerResult, type PeerSkipped } from './peer-common.ts';

/**
 * Peer: naive attention in numpy (numpy_attention.py) in its own python3 process (the python3 that
 * has numpy: python.ts), timed there.
 * OpenBLAS gets `threads` threads; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are dropped from the
 * child's environment only (with them set, OpenBLAS picks a slower kernel here). Skipped, with the
 * reason, when no python3 has numpy or the Sq×Sk score matrix would not fit in memory.
 */
export function runNumpy(opts: PeerOptions): Promise<PeerResult | PeerSkipped> {
  const script = fileURLToPath(new URL('./numpy_attention.py', import.meta.url));
  const childEnv = numpyEnv(opts.threads);
  const args = [script, JSON.stringify({ Sq: opts.Sq, Sk: opts.Sk, H: opts.H, D: opts.D, reps: opts.reps, causal: opts.causal ?? false })];
  const found = numpyPython();
  if ('missing' in found) return Promise.resolve({ skipped: found.missing });
  return new Promise((resolve, reject) => {
    execFile(found.python, args, { env: childEnv, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`numpy peer failed: ${stderr.trim().split('\n').at(-1) ?? err.message}`));
      const got = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as
        | { ms: number[]; cpuMs: number[]; peakRssMB: number }
        | PeerSkipped;
      if ('skipped' in got) return resolve(got);
      resolve({ ms: got.ms, cpuMs: got.cpuMs, gflops: denseGflops(opts, median(got.ms)), peakRssMB: got.peakRssMB });
    });
  });
}

/** The python3 child's environment: `threads` BLAS threads, without the variables that slow OpenBLAS here. */
export function numpyEnv(threads: number): NodeJS.ProcessEnv {
  const { OPENBLAS_CORETYPE: _c, OPENBLAS_L2_SIZE: _l, ...env } = process.env;
  return { ...env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
}
