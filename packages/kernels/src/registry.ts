import { InputError } from '@longattn/attention';
import type { Backend } from './tile.ts';

const backends = new Map<string, Backend>();

/** Adds a backend under its name; kernels/index.ts registers every built-in one. */
export function registerBackend(backend: Backend): void {
  if (backends.has(backend.name)) throw new Error(`backend "${backend.name}" is already registered`);
  backends.set(backend.name, backend);
}

/** Every backend users can pick (test-only ones, such as `wait`, are left out: get them by name). */
export function listBackends(): Backend[] {
  return [...backends.values()].filter((b) => !b.testOnly);
}

/** `name` or `name:mode`; throws InputError('--backend') naming the known backends when there is none. */
export function getBackend(name: string): Backend {
  const backend = backends.get(name.split(':')[0]!);
  if (!backend)
    throw new InputError(
      '--backend',
      `unknown backend "${name}"; known: auto, ${listBackends()
        .map((b) => b.name)
        .join(', ')}`,
    );
  return backend;
}

/** Splits `gpujs:webasm` into its backend and mode. */
export function parseBackendName(spec: string): { name: string; mode?: string } {
  const [name, mode] = spec.split(':', 2) as [string, string | undefined];
  return mode ? { name, mode } : { name };
}
