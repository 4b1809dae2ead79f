import { onSoftware, selectBackend, type Selection } from '@longattn/kernels';

/**
 * Which jobs a worker computes, by backend. Every job names one backend (submit resolves `auto`
 * once per job), and every tile of it runs on that backend:
 *   `--backend auto` (default) — any backend that can run on this machine;
 *   `--backend NAME`           — jobs on NAME only (checked at start: it must run here).
 * A job this worker cannot run is declined (handed back for another worker), never computed on
 * a different backend. An `auto` worker also declines a GPU backend (gpujs, webgpu) that reaches
 * only a software renderer or the CPU here, unless started with `--allow-software`: a job sent
 * to GPU workers is not run at software speed by a CPU box that happens to load the backend.
 */
export class BackendChoice {
  private readonly selections = new Map<string, Promise<Selection>>();

  private constructor(
    /** What the worker was started with: `auto` or a backend name. */
    readonly flag: string,
    /** The backend it picked at start (auto: this machine's best), for its log line. */
    readonly own: Selection,
    /** `--allow-software`: GPU backends may run on a software renderer. */
    readonly allowSoftware: boolean,
  ) {
    this.selections.set(own.name, Promise.resolve(own));
  }

  /** InputError(`--backend`) when a named backend cannot run here. */
  static async start(flag: string, allowSoftware = false): Promise<BackendChoice> {
    return new BackendChoice(flag, await selectBackend(flag, { threads: 1 }), allowSoftware);
  }

  /** The selection for a job's backend, or why this worker does not run it. */
  async forJob(backend: string): Promise<{ selection: Selection } | { declined: string }> {
    if (this.flag !== 'auto' && backend !== this.own.name) return { declined: `serves ${this.own.name} only` };
    let selection = this.selections.get(backend);
    if (!selection) {
      selection = selectBackend(backend, { threads: 1 });
      this.selections.set(backend, selection);
    }
    let resolved: Selection;
    try {
      resolved = await selection;
    } catch (error) {
      return { declined: (error as Error).message.split('\n')[0]! };
    }
    if (!this.allowSoftware && onSoftware(resolved)) {
      return { declined: `${backend} reaches only ${resolved.device} here, no GPU (worker not started with --allow-software)` };
    }
    return { selection: resolved };
  }
}
