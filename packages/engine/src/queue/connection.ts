import { Redis } from 'ioredis';
import { InputError } from '@longattn/tensor';

/** Checks the shape of a Redis URL (`redis://host:port[/db]`, `rediss://…`); InputError naming `argument`. */
export function checkRedisUrl(url: string, argument = '--redis'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError(argument, `expected a Redis URL like redis://host:6379, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new InputError(argument, `expected a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
  }
  return url;
}

/**
 * A connection for long-lived use (services, waiting clients): commands wait through Redis
 * restarts instead of failing (BullMQ requires maxRetriesPerRequest: null for workers).
 */
export function connectRedis(url: string): Redis {
  const redis = new Redis(checkRedisUrl(url), { maxRetriesPerRequest: null });
  redis.on('error', () => {}); // reconnects on its own; commands wait
  return redis;
}

/** BullMQ connection options for the same URL. */
export function bullConnection(url: string): { url: string; maxRetriesPerRequest: null } {
  return { url: checkRedisUrl(url), maxRetriesPerRequest: null };
}

/**
 * Fails fast, before anything is created, when Redis cannot be reached: InputError
 * `--redis: cannot reach Redis at URL: <reason>` (exit code 2).
 */
export async function checkReachable(url: string, argument = '--redis', timeoutMs = 3000): Promise<void> {
  checkRedisUrl(url, argument);
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  redis.on('error', (error: Error) => (lastError = error));
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    const reason = (lastError ?? (error as Error)).message.split('\n')[0];
    throw new InputError(argument, `cannot reach Redis at ${url}: ${reason}`);
  } finally {
    redis.disconnect();
  }
}
