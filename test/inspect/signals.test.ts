import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { uniformF32, writeTensor } from '@longattn/tensor';
import { BIN, ROOT, tempDir } from '../support/cli.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU seconds a process has used (utime + stime of /proc/PID/stat, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A real SIGINT during the statistics pass: the pool stops, nothing is written, exit 130. */
test('SIGINT during inspect: stops, writes no file, exit 130', async (t) => {
  const dir = tempDir();
  const out = tempDir();
  // ~1.2G (query, key) pairs: ~10 CPU seconds of score tiles and sums even on a fast machine.
  const [H, n, D] = [8, 12288, 64];
  writeTensor(join(dir, 'q.npy'), [H, n, D], uniformF32(H * n * D, 1));
  writeTensor(join(dir, 'k.npy'), [H, n, D], uniformF32(H * n * D, 2));
  writeTensor(join(dir, 'lse.npy'), [H, n], new Float32Array(H * n)); // any finite LSE: the pass runs the same
  const args = ['inspect', '--q', join(dir, 'q.npy'), '--k', join(dir, 'k.npy'), '--lse', join(dir, 'lse.npy'), '--threads', '2'];
  const files = ['--received', join(out, 'r.npy'), '--map', join(out, 'm.png'), '--rows', '0:3', '--weights-out', join(out, 'w.npy')];
  const child = spawn(process.execPath, [BIN, ...args, ...files], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Mid-pass, whatever the machine's load: starting and validating take well under 3 CPU seconds.
  while (child.exitCode === null && cpuSeconds(child.pid!) < 3) await sleep(100);
  t.is(child.exitCode, null, `still running when signalled: ${stderr}`);
  child.kill('SIGINT');
  t.is(await exited, 130, stderr);
  t.regex(stderr, /^longattn: interrupted by SIGINT/);
  t.deepEqual(readdirSync(out), [], 'no output and no temporary file left');
});
