import { spawnSync } from 'node:child_process';

/**
 * The python3 that has numpy, for the numpy peer and the numpy cross-checks: `LONGATTN_PYTHON` when
 * set, else `python3` on PATH, else Debian's `/usr/bin/python3` (scripts/setup-system.sh installs
 * python3-numpy for it; a pyenv or venv python3 first on PATH may not see that numpy).
 */
export const PYTHON_CANDIDATES: readonly string[] = [process.env.LONGATTN_PYTHON, 'python3', '/usr/bin/python3'].filter(
  (p): p is string => !!p,
);

let found: { python?: string; tried: string } | undefined;

/** The first candidate where `import numpy` works (checked once per process), or why there is none. */
export function numpyPython(): { python: string } | { missing: string } {
  if (!found) {
    const python = PYTHON_CANDIDATES.find((p) => spawnSync(p, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0);
    found = { ...(python ? { python } : {}), tried: PYTHON_CANDIDATES.join(', ') };
  }
  return found.python
    ? { python: found.python }
    : { missing: `numpy is not installed for any python3 tried (${found.tried}); install python3-numpy (scripts/setup-system.sh)` };
}
