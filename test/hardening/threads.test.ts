/**
 * Issue 14.5: `--threads 256` on a 16 KB input took 3.66 GB. A local run starts no more threads
 * than it has q-blocks (nor than LOCAL_THREADS_MAX), so peak RSS stays that of a small run, and
 * the output bits never depend on the thread count.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { LOCAL_THREADS_MAX } from '@longattn/engine';
import { longattn, tempDir } from '../support/cli.ts';
import { smallInputs } from './support.ts';

/** [1, 64, 64] float32: 16 KB per tensor. */
const tiny = smallInputs(1, 64, 64);

async function run(args: string[]): Promise<{ threads: number; peakRssMB: number; out: Buffer }> {
  const out = join(tempDir(), 'o.npy');
  const r = await longattn(['run', ...args, '--out', out, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  const result = JSON.parse(r.stdout) as { threads: number; peakRssMB: number };
  return { ...result, out: readFileSync(out) };
}

test('--threads 256 on a 16 KB input: one q-block, one thread, peak RSS of a small run, same bits', async (t) => {
  const flags = ['--q', tiny.q, '--k', tiny.k, '--v', tiny.v, '--backend', 'ort'];
  const many = await run([...flags, '--threads', '256']);
  const one = await run([...flags, '--threads', '1']);
  t.log(`--threads 256: ${many.threads} thread(s), peak RSS ${many.peakRssMB.toFixed(0)} MB (--threads 1: ${one.peakRssMB.toFixed(0)} MB)`);
  t.is(many.threads, 1);
  // A 1-thread run here peaks near 100–150 MB; 256 threads held 3.66 GB before the cap.
  t.true(many.peakRssMB < one.peakRssMB + 100, `peak RSS ${many.peakRssMB} MB`);
  t.true(many.out.equals(one.out), 'bitwise the same output');
});

test('--threads 256 with 3 q-blocks starts 3 threads; the hard cap is documented and ≥ cores', async (t) => {
  const input = smallInputs(3, 40, 16);
  const flags = ['--q', input.q, '--k', input.k, '--v', input.v, '--backend', 'js', '--block-q', '64'];
  const many = await run([...flags, '--threads', '256']);
  const one = await run([...flags, '--threads', '1']);
  t.is(many.threads, 3);
  t.true(many.out.equals(one.out), 'bitwise the same output');
  t.true(LOCAL_THREADS_MAX >= 16 && LOCAL_THREADS_MAX <= 256);
  const limits = readFileSync(join(import.meta.dirname, '../../docs/limits.md'), 'utf8');
  t.regex(limits, new RegExp(`LOCAL_THREADS_MAX\\S*\\s*\\|\\s*${LOCAL_THREADS_MAX}\\s*\\|`), 'docs/limits.md gives the hard cap');
});
