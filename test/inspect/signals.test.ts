import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { uniformF32, writeTensor } from '@longattn/tensor';
import { BIN, ROOT, tempDir } from '../support/cli.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A real SIGINT during the statistics pass: the pool stops, nothing is written, exit 130. */
test('SIGINT during inspect: stops, writes no file, exit 130', async (t) => {
  const dir = tempDir();
  const out = tempDir();
  const [H, n, D] = [4, 4096, 64];
  writeTensor(join(dir, 'q.npy'), [H, n, D], uniformF32(H * n * D, 1));
  writeTensor(join(dir, 'k.npy'), [H, n, D], uniformF32(H * n * D, 2));
  writeTensor(join(dir, 'lse.npy'), [H, n], new Float32Array(H * n)); // any finite LSE: the pass runs the same
  const args = ['inspect', '--q', join(dir, 'q.npy'), '--k', join(dir, 'k.npy'), '--lse', join(dir, 'lse.npy'), '--threads', '2'];
  const files = ['--received', join(out, 'r.npy'), '--map', join(out, 'm.png'), '--rows', '0:3', '--weights-out', join(out, 'w.npy')];
  const child = spawn(process.execPath, [BIN, ...args, ...files], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await sleep(6000); // ~32 GFLOP of float64 JS: tens of seconds on two cores, so it is mid-pass now
  t.is(child.exitCode, null, `still running when signalled: ${stderr}`);
  child.kill('SIGINT');
  t.is(await exited, 130, stderr);
  t.regex(stderr, /^longattn: interrupted by SIGINT/);
  t.deepEqual(readdirSync(out), [], 'no output and no temporary file left');
});
