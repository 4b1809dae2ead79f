import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ortModuleUrl } from '@longattn/kernels';
import { median, type PeerSkipped } from './peer-common.ts';
import { mhaModel } from './ort-mha.ts';
import { numpyEnv } from './numpy-peer.ts';
import { numpyPython } from './python.ts';

/**
 * Cold runs: each peer as a user would run it once — a fresh process that loads the bench's
 * [H, S, D] .npy inputs, computes, saves its output and exits — timed as a whole process, the way
 * `longattn run` is. `reps` fresh processes, median wall time.
 */
export interface ColdInputs {
  files: { q: string; k: string; v: string };
  /** Scratch folder for the output and the peer's model file. */
  dir: string;
  H: number;
  S: number;
  D: number;
  threads: number;
  reps: number;
  causal: boolean;
}

/** The whole process's wall time, or why the peer skipped (its last stdout line, {skipped}). */
function timed(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<number | PeerSkipped> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    execFile(command, args, { maxBuffer: 16 << 20, ...(env ? { env } : {}) }, (err, stdout, stderr) => {
      const ms = performance.now() - started;
      if (err) return reject(new Error(`${command} cold run failed: ${stderr.trim().split('\n').at(-1) || err.message}`));
      const last = stdout.trim().split('\n').at(-1) ?? '';
      resolve(last.includes('"skipped"') ? (JSON.parse(last) as PeerSkipped) : ms);
    });
  });
}

async function medianOf(reps: number, run: () => Promise<number | PeerSkipped>): Promise<number | PeerSkipped> {
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const got = await run();
    if (typeof got !== 'number') return got;
    ms.push(got);
  }
  return median(ms);
}

/**
 * onnxruntime's fused MultiHeadAttention from a plain .mjs script. Called after the peer's warm
 * run succeeded, i.e. when its causal path's S×S fits in memory.
 */
export async function coldOrtMha(o: ColdInputs): Promise<number | PeerSkipped> {
  const model = join(o.dir, `mha-${o.S}-${o.H}-${o.D}-${o.causal ? 'causal' : 'dense'}.onnx`);
  writeFileSync(model, mhaModel(o.S, o.S, o.H, o.D, o.causal));
  const script = fileURLToPath(new URL('./ort-mha-cold.mjs', import.meta.url));
  const args = JSON.stringify({ ort: ortModuleUrl(), model, ...o.files, out: join(o.dir, 'mha-out.npy'), threads: o.threads });
  return medianOf(o.reps, () => timed(process.execPath, [script, args]));
}

/** numpy's naive attention from numpy_attention.py in its cold mode. */
export async function coldNumpy(o: ColdInputs): Promise<number | PeerSkipped> {
  const script = fileURLToPath(new URL('./numpy_attention.py', import.meta.url));
  const args = JSON.stringify({
    Sq: o.S,
    Sk: o.S,
    H: o.H,
    D: o.D,
    reps: 1,
    causal: o.causal,
    files: o.files,
    out: join(o.dir, 'numpy-out.npy'),
  });
  const found = numpyPython();
  if ('missing' in found) return { skipped: found.missing };
  return medianOf(o.reps, () => timed(found.python, [script, args], numpyEnv(o.threads)));
}
