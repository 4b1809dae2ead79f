import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { JobResult } from '@longattn/engine';

const BIN = fileURLToPath(new URL('../../bin/longattn.mjs', import.meta.url));

/** One `longattn run` (or `command`, e.g. `layer`) as its own process: what it reported, plus the wall time of the whole process. */
export interface RunMeasurement {
  result: JobResult & { peakRssMB: number };
  processMs: number;
}

export function measureRun(args: string[], command = 'run'): Promise<RunMeasurement> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [BIN, command, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const processMs = performance.now() - started;
      if (code !== 0) return reject(new Error(`longattn ${command} ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      resolve({ result: JSON.parse(stdout.trim().split('\n').at(-1)!), processMs });
    });
  });
}
