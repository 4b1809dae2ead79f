/** Helpers for the hardening tests: small inputs on disk, a directory snapshot, one-line exit-2 checks. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { writeTensor } from '@longattn/tensor';
import type { CliResult } from '../support/cli.ts';
import { tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';

/** q.npy, k.npy, v.npy of shape [H, S, D] (seeded) in a fresh temp dir. */
export function smallInputs(H = 2, S = 37, D = 8, scale = 1): { dir: string; q: string; k: string; v: string } {
  const dir = tempDir('longattn-hardening-');
  const files = { q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') };
  writeTensor(files.q, [H, S, D], randomTensor(H * S * D, 1, scale));
  writeTensor(files.k, [H, S, D], randomTensor(H * S * D, 2, scale));
  writeTensor(files.v, [H, S, D], randomTensor(H * S * D, 3));
  return { dir, ...files };
}

/** Every file under `dir` (names, sizes, bytes, mtimes): what "nothing touched" compares. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stat = statSync(path, { throwIfNoEntry: false });
    out[name] = stat?.isFile()
      ? `${stat.size} bytes, mtime ${stat.mtimeMs}, sha256 ${createHash('sha256').update(readFileSync(path)).digest('hex')}`
      : `mode ${stat?.mode}`;
  }
  return out;
}

/** Exit 2, exactly one stderr line `longattn: ARG: …` matching `pattern`, no stack trace. */
export function assertBadInput(t: ExecutionContext, r: CliResult, argument: string, pattern: RegExp): void {
  t.is(r.code, 2, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, `expected one line, got: ${r.stderr}`);
  t.true(r.stderr.startsWith(`longattn: ${argument}: `), r.stderr);
  t.regex(r.stderr, pattern);
  t.notRegex(r.stderr, /\bat .*\.(ts|mjs):\d+/);
}
