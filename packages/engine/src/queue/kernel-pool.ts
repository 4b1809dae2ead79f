import { Piscina } from 'piscina';

/**
 * Tile jobs a worker holds per kernel thread: one computing, the others' queue round trips and
 * block reads under way meanwhile (tile-thread.ts runs a thread's tasks one at a time, in arrival
 * order, and reads theirs in the same order). With two, a thread idled whenever finishing one
 * job (its writes, record, BullMQ's moveToFinished and the next fetch) took longer than the next
 * job's compute, as on a loaded machine or a remote store (docs/scaling.md, "Data movement").
 */
export const TASKS_PER_THREAD = 3;

/** A worker's kernel threads: `threads` threads of `filename`, TASKS_PER_THREAD tasks each at once. */
export function kernelPool(filename: string, threads: number): Piscina {
  return new Piscina({
    filename,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: TASKS_PER_THREAD,
  });
}

/**
 * `task` on the pool, or an Error('aborted') once `signal` aborts (a worker handing its jobs back
 * at shutdown); the abandoned task stops when the pool is destroyed, and whatever it wrote are the
 * bits a retry writes. Not piscina's own `signal` option: piscina gives an abortable task only to
 * a thread with no task, so each thread would get its next tile job only after finishing the
 * last, and no read would ever overlap a compute (measured: docs/scaling.md, "Data movement").
 */
export function runOnThread<T>(pool: Piscina, task: unknown, signal: AbortSignal): Promise<T> {
  return untilAborted(pool.run(task) as Promise<T>, signal);
}

/** `work`, or an Error('aborted') once `signal` aborts (what is left of `work` runs on, unobserved). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => {});
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(new Error('aborted'));
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}
