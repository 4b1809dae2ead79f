import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { JobRequest } from '@longattn/engine';
import { uniformF32, writeTensor } from '@longattn/tensor';

const root = resolve(import.meta.dirname, '../..');

/** Q, K, V of shape [n, 1] (one head, D = 1) in `dir` as q.npy, k.npy, v.npy, seeded. */
export function columnInputs(dir: string, n: number, dtype: 'f16' | 'f32'): { q: string; k: string; v: string } {
  const paths = { q: join(dir, 'q.npy'), k: join(dir, 'k.npy'), v: join(dir, 'v.npy') };
  for (const [name, seed] of [
    ['q', 1],
    ['k', 2],
    ['v', 3],
  ] as const)
    writeTensor(paths[name], [n, 1], uniformF32(n, seed), { dtype });
  return paths;
}

/** Peak resident set (VmHWM) of a live process, in MiB, from /proc: threads included. */
export function peakRssMB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+) kB/m);
  if (!line) throw new Error(`no VmHWM for process ${pid}`);
  return Number(line[1]) / 1024;
}

export interface Progress {
  doneTiles: number;
  totalTiles: number;
  doneFlops: number;
  totalFlops: number;
  rssMB: number;
  /** Milliseconds since the process started. */
  atMs: number;
}

/** long-run.ts as a real process: its progress lines as they come, its result, its exit. */
export function longRun(request: JobRequest & { threads?: number }): {
  child: ChildProcess;
  progress: Progress[];
  /** Resolves with the first progress that satisfies `test`, or rejects when the process ends first. */
  progressWhere(test: (p: Progress) => boolean): Promise<Progress>;
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
} {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import=tsx', join(root, 'test/planning/long-run.ts'), JSON.stringify(request)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const progress: Progress[] = [];
  const waiters: { test: (p: Progress) => boolean; resolve: (p: Progress) => void }[] = [];
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk;
    pending += chunk;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const m = line.match(/^progress (\d+) (\d+) (\S+) (\S+) (\d+)$/);
      if (!m) continue;
      const [doneTiles, totalTiles, doneFlops, totalFlops, rssMB] = m.slice(1).map(Number) as [number, number, number, number, number];
      const p = { doneTiles, totalTiles, doneFlops, totalFlops, rssMB, atMs: Date.now() - started };
      progress.push(p);
      for (const w of waiters.filter((w) => w.test(p))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(p);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((done) =>
    child.once('close', (code) => done({ code, stdout, stderr })),
  );
  return {
    child,
    progress,
    progressWhere: (test) =>
      new Promise((resolve, reject) => {
        const seen = progress.find(test);
        if (seen) return resolve(seen);
        waiters.push({ test, resolve });
        void exit.then(({ code }) => reject(new Error(`long-run exited with ${code} first: ${stderr}`)));
      }),
    exit,
  };
}
