/**
 * Issue 8.5: services/worker and services/reducer are the CLI's commands, nothing else: the same
 * flags, checks, messages and exit codes (they used to re-parse and drift: `--concurrency 0`).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { type CliResult, longattn, ROOT } from '../support/cli.ts';

function service(kind: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, `services/${kind}/src/index.ts`), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

for (const [kind, args] of [
  ['worker', ['--redis', 'redis://127.0.0.1:1', '--concurrency', '0']],
  ['reducer', ['--redis', 'redis://127.0.0.1:1', '--concurrency', '0']],
  ['worker', ['--redis', 'nowhere']],
  ['worker', ['--redis', 'redis://127.0.0.1:1', '--blobs', 'relative/dir']],
  ['reducer', ['--bogus']],
] as const) {
  test(`services/${kind} ${args.join(' ')}: exactly what longattn ${kind} does`, async (t) => {
    const [viaService, viaCli] = await Promise.all([service(kind, [...args]), longattn([kind, ...args])]);
    t.is(viaCli.code, 2, viaCli.stderr);
    t.is(viaService.code, viaCli.code);
    t.is(viaService.stderr, viaCli.stderr);
    t.regex(viaService.stderr, /^longattn: [^\n]+\n$/);
  });
}

test('services/worker --help is longattn worker --help', async (t) => {
  const [viaService, viaCli] = await Promise.all([service('worker', ['--help']), longattn(['worker', '--help'])]);
  t.is(viaService.code, 0);
  t.is(viaService.stdout, viaCli.stdout);
  t.regex(viaService.stdout, /--blobs <where>/);
});
