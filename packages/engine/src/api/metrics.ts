import { Queue } from 'bullmq';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { bullConnection } from '../queue/connection.ts';
import { QUEUE_PREFIX, QUEUES } from '../queue/names.ts';
import type { ApiJobs } from './jobs.ts';
import type { JobSignals } from './signals.ts';

/** Queue job states counted as depth. */
const DEPTH_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed'] as const;

/** Tile jobs seen starting but not yet finishing, bounded (a lost `completed` event must not leak). */
const MAX_ACTIVE_TRACKED = 100_000;

/**
 * Prometheus metrics of /metrics (own registry): jobs by state, queue depth per queue and state,
 * tile latency (from the tiles queue's active → completed events, timed by the event stream's own
 * timestamps), GFLOP/s of finished jobs, tile failures and retries, uploaded bytes, and the
 * process's defaults (RSS, event-loop lag).
 */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly uploadBytes: Counter;
  readonly jobGflops: Gauge;
  private readonly queues: Queue[];

  constructor(redisUrl: string, jobs: ApiJobs, signals: JobSignals) {
    const connection = bullConnection(redisUrl);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'longattn_api_' });
    this.queues = Object.values(QUEUES).map((name) => new Queue(name, { connection, prefix: QUEUE_PREFIX }));
    const queues = this.queues;
    new Gauge({
      name: 'longattn_jobs',
      help: 'Jobs by state (the most recent jobs of every tenant)',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        for (const [state, n] of await jobs.recentStates()) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'longattn_queue_depth',
      help: 'BullMQ jobs per queue and state',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        for (const queue of queues) {
          const counts = await queue.getJobCounts(...DEPTH_STATES);
          for (const state of DEPTH_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
        }
      },
    });
    const latency = new Histogram({
      name: 'longattn_tile_seconds',
      help: 'Tile job latency, taken to completed',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const failures = new Counter({ name: 'longattn_tile_failures_total', help: 'Failed tile job attempts', registers });
    const retries = new Counter({ name: 'longattn_tile_retries_total', help: 'Tile jobs put back for a retry (backoff)', registers });
    const jobFailures = new Counter({ name: 'longattn_job_failures_total', help: 'Jobs that failed', registers });
    this.uploadBytes = new Counter({ name: 'longattn_upload_bytes_total', help: 'Bytes of tensors uploaded', registers });
    this.jobGflops = new Gauge({ name: 'longattn_job_gflops', help: 'GFLOP/s of the most recently finished job', registers });
    jobs.onFinished = ({ state, gflops }) => {
      if (state === 'done' && gflops !== undefined) this.jobGflops.set(gflops);
    };

    const started = new Map<string, number>();
    const at = (eventId: string) => Number(eventId.split('-')[0]);
    signals.tiles.on('active', ({ jobId }, id) => {
      if (started.size >= MAX_ACTIVE_TRACKED) started.clear();
      started.set(jobId, at(id));
    });
    signals.tiles.on('completed', ({ jobId }, id) => {
      const from = started.get(jobId);
      started.delete(jobId);
      if (from !== undefined) latency.observe((at(id) - from) / 1000);
    });
    signals.tiles.on('failed', ({ jobId }) => {
      started.delete(jobId);
      failures.inc();
    });
    signals.tiles.on('delayed', () => retries.inc());
    signals.root.on('failed', () => jobFailures.inc());
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
