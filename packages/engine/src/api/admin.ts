import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { bullConnection } from '../queue/connection.ts';
import { QUEUE_PREFIX, QUEUES } from '../queue/names.ts';
import { bearerKey, sameKey } from './keys.ts';

export const ADMIN_PATH = '/admin/queues';

/**
 * bull-board over the three queues at ADMIN_PATH, behind the admin key (Bearer, or Basic with the
 * key as password so a browser can sign in). Without an admin key the board is not mounted (404).
 * Returns the queues to close.
 */
export async function mountAdmin(app: FastifyInstance, redisUrl: string, adminKey: string | undefined): Promise<Queue[]> {
  if (!adminKey) return [];
  const connection = bullConnection(redisUrl);
  const queues = Object.values(QUEUES).map((name) => new Queue(name, { connection, prefix: QUEUE_PREFIX }));
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_PATH);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter });
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      const key = bearerKey(request.headers.authorization);
      if (!key || !sameKey(key, adminKey)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Basic realm="longattn admin"')
          .send({ statusCode: 401, error: 'Unauthorized', message: 'admin key required' });
      }
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: ADMIN_PATH });
  });
  return queues;
}
