/**
 * numpy for cross-checks: the same python3 the bench's numpy peer runs (packages/cli's python.ts:
 * LONGATTN_PYTHON, python3 on PATH, Debian's /usr/bin/python3). A test that needs numpy fails,
 * never skips, where none has it: scripts/setup-system.sh installs python3-numpy.
 */
import { spawnSync } from 'node:child_process';
import { numpyPython } from '../../packages/cli/src/bench/peers/python.ts';

/** The python3 that imports numpy; throws (failing the test) with how to install it otherwise. */
export function pythonWithNumpy(): string {
  const found = numpyPython();
  if ('missing' in found) throw new Error(found.missing);
  return found.python;
}

/** Runs a python script with numpy (argv after the script); throws with its stderr when it fails. Returns stdout. */
export function runNumpy(script: string, args: string[] = []): string {
  const r = spawnSync(pythonWithNumpy(), ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}
