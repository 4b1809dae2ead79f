/**
 * Issue 14.11 (local part): SIGINT / SIGTERM during a local `run` stop the job, remove its partial
 * outputs and exit 130 / 143 — a real process, a real signal, mid-run.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { BIN, ROOT, tempDir } from '../support/cli.ts';
import { smallInputs } from './support.ts';

// ~9 GFLOP on the js backend: several seconds on two threads, long enough to interrupt mid-run.
const input = smallInputs(4, 3000, 64);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts `longattn ARGS`, signals it once a partial output exists in `dir` (mid-run), returns how it ended. */
async function interrupt(t: ExecutionContext, args: string[], dir: string, signal: NodeJS.Signals) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // The partial outputs appear once the inputs are validated; compute starts right after.
  const deadline = Date.now() + 60_000;
  while (!readdirSync(dir).some((f) => f.includes('.pending-'))) {
    if (Date.now() > deadline || child.exitCode !== null) t.fail(`no partial output appeared: ${stderr}`);
    await sleep(20);
  }
  await sleep(700);
  t.is(child.exitCode, null, 'still running when signalled');
  const sent = Date.now();
  child.kill(signal);
  const code = await exited;
  t.log(`${signal}: stopped ${Date.now() - sent} ms after the signal`);
  return { code, stderr };
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  test.serial(`${signal} mid-run: the job stops, no partial file is left, exit ${code}`, async (t) => {
    const dir = tempDir();
    const args = ['run', '--q', input.q, '--k', input.k, '--v', input.v, '--out', join(dir, 'o.npy'), '--lse', join(dir, 'l.npy')];
    const end = await interrupt(t, [...args, '--backend', 'js', '--threads', '2'], dir, signal);
    t.is(end.code, code, end.stderr);
    t.regex(end.stderr, new RegExp(`^longattn: interrupted by ${signal}: the job was stopped and its partial outputs removed\\n$`));
    t.deepEqual(readdirSync(dir), [], 'no output and no partial file left');
  });
}

test.serial('SIGINT during demo: the job stops, no partial file, exit 130; the inputs it wrote are whole', async (t) => {
  const dir = tempDir();
  const end = await interrupt(t, ['demo', '--n', '4096', '--heads', '4', '--d', '64', '--dir', dir, '--backend', 'js'], dir, 'SIGINT');
  t.is(end.code, 130, end.stderr);
  t.deepEqual(readdirSync(dir).sort(), ['k.npy', 'q.npy', 'v.npy']);
});
