import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import type { JobView } from '../jobs.ts';
import { jobIdParams } from '../schemas.ts';
import { notFound } from './jobs.ts';

/** Comment line this often, so proxies keep an idle stream open. */
const HEARTBEAT_MS = 15_000;

/** A stream reads the job at most this often, however fast its tiles complete. */
const MIN_READ_MS = 20;

/** The `progress` event's data: the job's numbers, and the q-blocks written since the last event (all of them in the first). */
export interface ProgressEvent {
  state: JobView['state'];
  done: number;
  total: number;
  doneFlops: number;
  totalFlops: number;
  qBlocks: number;
  reduced: number[];
  gflops?: number;
}

/**
 * GET /v1/jobs/:id/events: server-sent events. The first `progress` event is the job's current
 * state (so a client that connects late starts from it), then one per change, in order (tile
 * counts never go back), then `done` or `failed` (a cancelled job: `failed`, state cancelled)
 * with the job's view, and the stream ends.
 */
export function eventRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/jobs/:id/events',
    {
      schema: {
        summary: 'Progress as server-sent events: progress…, then done or failed',
        params: jobIdParams,
        produces: ['text/event-stream'],
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const record = await ctx.jobs.owned(request.tenant, id);
      if (!record) throw notFound();
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      let closed = false;
      request.raw.on('close', () => (closed = true));
      let seq = 0;
      const send = (event: string, data: unknown) => out.write(`id: ${seq++}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      const sent = new Set<number>();
      let last = '';
      let beat = Date.now();
      try {
        while (!closed) {
          const view = await ctx.jobs.view(id, record);
          // A done job's reduced set is gone (finalise removes it): every q-block is written.
          const all = view.state === 'done' ? Array.from({ length: view.qBlocks ?? 0 }, (_, i) => i) : await ctx.jobs.reduced(id);
          const reduced = all.filter((i) => !sent.has(i));
          for (const i of reduced) sent.add(i);
          const key = `${view.state}/${view.progress.done}/${view.flops.done}`;
          if (key !== last || reduced.length > 0) {
            last = key;
            const event: ProgressEvent = {
              state: view.state,
              done: view.progress.done,
              total: view.progress.total,
              doneFlops: view.flops.done,
              totalFlops: view.flops.total,
              qBlocks: view.qBlocks ?? 0,
              reduced,
              ...(view.gflops !== undefined ? { gflops: view.gflops } : {}),
            };
            send('progress', event);
          }
          if (view.state === 'done' || view.state === 'failed' || view.state === 'cancelled') {
            send(view.state === 'done' ? 'done' : 'failed', view);
            break;
          }
          if (Date.now() - beat > HEARTBEAT_MS) {
            out.write(': keep-alive\n\n');
            beat = Date.now();
          }
          // Tile and reduce completions come in bursts: read at most every MIN_READ_MS, but the end at once.
          const woke = Date.now();
          const final = await ctx.signals.next(id, ctx.eventPollMs);
          const early = MIN_READ_MS - (Date.now() - woke);
          if (!final && early > 0) await ctx.signals.next(id, early, true);
        }
      } catch (error) {
        request.log.error({ err: error }, 'event stream failed');
        if (!closed) send('error', { message: (error as Error).message.split('\n')[0] });
      } finally {
        out.end();
      }
    },
  );
}
