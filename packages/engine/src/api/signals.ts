import { EventEmitter } from 'node:events';
import { QueueEvents } from 'bullmq';
import { bullConnection } from '../queue/connection.ts';
import { flowIds, QUEUE_PREFIX, QUEUES } from '../queue/names.ts';

/**
 * One QueueEvents reader per queue for the whole api process: SSE streams wake on their job's
 * events (a tile or reduce done, the root done or failed) instead of waiting out a poll, so a
 * finished job is reported within milliseconds. Metrics listen on the same readers.
 */
export class JobSignals {
  readonly tiles: QueueEvents;
  readonly reduce: QueueEvents;
  readonly root: QueueEvents;
  private readonly emitter = new EventEmitter();

  constructor(redisUrl: string) {
    const connection = bullConnection(redisUrl);
    this.tiles = new QueueEvents(QUEUES.tiles, { connection, prefix: QUEUE_PREFIX });
    this.reduce = new QueueEvents(QUEUES.reduce, { connection, prefix: QUEUE_PREFIX });
    this.root = new QueueEvents(QUEUES.jobs, { connection, prefix: QUEUE_PREFIX });
    this.emitter.setMaxListeners(0);
    const kick = ({ jobId }: { jobId: string }) => this.emitter.emit(flowIds.jobOf(jobId), false);
    const end = ({ jobId }: { jobId: string }) => this.emitter.emit(flowIds.jobOf(jobId), true);
    for (const events of [this.tiles, this.reduce]) events.on('completed', kick);
    this.root.on('completed', end);
    this.root.on('failed', end);
  }

  /**
   * Resolves at the job's next event (with `finalOnly`, only at its root's end) or after `ms`,
   * whichever comes first: true when a root ended (the job, or an inspect job's pass, is done or failed).
   */
  next(job: string, ms: number, finalOnly = false): Promise<boolean> {
    return new Promise((resolve) => {
      const settle = (final: boolean) => {
        clearTimeout(timer);
        this.emitter.off(job, onEvent);
        resolve(final);
      };
      const onEvent = (final: boolean) => {
        if (final || !finalOnly) settle(final);
      };
      const timer = setTimeout(() => settle(false), ms);
      this.emitter.on(job, onEvent);
    });
  }

  async ready(): Promise<void> {
    await Promise.all([this.tiles.waitUntilReady(), this.reduce.waitUntilReady(), this.root.waitUntilReady()]);
  }

  async close(): Promise<void> {
    await Promise.all([this.tiles.close(), this.reduce.close(), this.root.close()]);
  }
}
