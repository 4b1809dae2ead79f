/**
 * Helpers for the user-path tests: a brute-force case on disk, `longattn` runs whose output is
 * checked against the brute force (exactness rule), and polling a queued job through the CLI.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { QueueEngine, type QueueJobStatus } from '@longattn/engine/queue';
import { readTensor } from '@longattn/tensor';
import { bruteFlags, bruteShapes, writeBruteCase } from '../support/brute-cases.ts';
import { longattn, tempDir, type CliResult } from '../support/cli.ts';
import { exactness, type BruteSpec } from '../support/reference64.ts';
import { until } from '../queue/support.ts';

export interface OnDisk {
  dir: string;
  spec: BruteSpec;
  /** `--q … --k … --v …` plus the flags that say the spec (layout, mask, scale). */
  inputFlags: string[];
  ref: ReturnType<typeof writeBruteCase>['ref'];
  bound: number;
  /** A path in the case's dir. */
  path(name: string): string;
  /** Asserts the O (and LSE, when given) files meet the exactness rule against the brute force. */
  assertExact(t: ExecutionContext, out: string, lse?: string): void;
  cleanup(): void;
}

/** Writes a case's inputs to a fresh temp dir, with its brute-force reference. */
export function onDisk(spec: BruteSpec, seed = 31): OnDisk {
  const dir = tempDir('longattn-paths-');
  const c = writeBruteCase(dir, spec, seed);
  return {
    dir,
    spec,
    inputFlags: ['--q', c.files.q, '--k', c.files.k, '--v', c.files.v, ...bruteFlags(spec)],
    ref: c.ref,
    bound: c.bound,
    path: (name) => join(dir, name),
    assertExact(t, out, lse) {
      const o = readTensor(out);
      t.deepEqual(o.shape, bruteShapes(spec).q, 'O has Q’s shape and layout');
      const l = lse ? readTensor(lse).data : undefined;
      const e = exactness({ out: o.data, ...(l ? { lse: l } : {}) }, c);
      t.true(e.exact, `max |O − ref| = ${e.err} (bound ${c.bound}), max |LSE − ref| = ${e.lseErr}`);
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Asserts a CLI refusal: the exit code, exactly one stderr line starting `longattn: ` and matching `pattern`. */
export function assertOneLine(t: ExecutionContext, r: CliResult, code: number, pattern: RegExp): void {
  t.is(r.code, code, r.stderr);
  t.regex(r.stderr, /^longattn: [^\n]+\n$/, 'one line');
  t.regex(r.stderr, pattern);
}

/** Polls a job's status in-process (cheaper than a CLI process per poll) until `accept` holds. */
export async function untilStatus(
  redis: string,
  id: string,
  accept: (s: QueueJobStatus) => boolean,
  ms = 120_000,
): Promise<QueueJobStatus> {
  const engine = await QueueEngine.connect(redis);
  try {
    return await until(
      `job ${id} to reach the awaited state`,
      async () => {
        const s = await engine.status(id);
        return accept(s) ? s : undefined;
      },
      ms,
    );
  } finally {
    await engine.close();
  }
}

/** `longattn run … --engine queue --redis URL --detach`: the job id. */
export async function submitDetached(args: string[], redis: string): Promise<string> {
  const r = await longattn(['run', ...args, '--engine', 'queue', '--redis', redis, '--detach']);
  if (r.code !== 0) throw new Error(`run --detach: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}
