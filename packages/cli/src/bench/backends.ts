import { listBackends } from '@longattn/kernels';

/** Backends to measure: the requested ones (all registered when none), each with the reason its probe gives when it cannot run here. */
export async function availableBackends(requested: string[]): Promise<{ name: string; skipped?: string }[]> {
  const names = requested.length ? requested : listBackends().map((b) => b.name);
  return Promise.all(
    names.map(async (name) => {
      const [base, mode] = name.split(':') as [string, string | undefined];
      const backend = listBackends().find((b) => b.name === base);
      const reason = !backend ? 'not registered' : await backend.probe(mode ? { mode } : {});
      return reason ? { name, skipped: reason } : { name };
    }),
  );
}
