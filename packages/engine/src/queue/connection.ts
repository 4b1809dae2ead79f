import { Redis } from 'ioredis';
import { InputError } from '@longattn/tensor';
import { excerpt } from '../errors.ts';
import { QUEUE_DEFAULTS } from './config.ts';

/** Checks the shape of a Redis URL (`redis://host:port[/db]`, `rediss://…`); InputError naming `argument`. */
export function checkRedisUrl(url: string, argument = '--redis'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError(argument, `expected a Redis URL like redis://host:6379, got ${excerpt(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new InputError(argument, `expected a redis:// or rediss:// URL, got ${excerpt(url)}`);
  }
  return url;
}

export interface ConnectOptions {
  /** Commands fail after this long instead of waiting (clients, blob stores). Default: wait (services: BullMQ blocks). */
  commandTimeoutMs?: number;
  /** The flag the URL came from, for messages. */
  argument?: string;
}

/**
 * A connection for long-lived use: it reconnects through Redis restarts on its own (BullMQ
 * requires maxRetriesPerRequest: null for workers); with commandTimeoutMs a command that gets no
 * reply in time fails ("Command timed out"), which redisFault turns into one line naming --redis.
 */
export function connectRedis(url: string, options: ConnectOptions = {}): Redis {
  const redis = new Redis(checkRedisUrl(url, options.argument), {
    maxRetriesPerRequest: null,
    connectTimeout: QUEUE_DEFAULTS.connectTimeoutMs,
    ...(options.commandTimeoutMs ? { commandTimeout: options.commandTimeoutMs } : {}),
  });
  redis.on('error', () => {}); // reconnects on its own; commands wait or time out
  return redis;
}

/** BullMQ connection options for the same URL (clients: with a command timeout; never for blocking readers). */
export function bullConnection(
  url: string,
  commandTimeoutMs?: number,
): { url: string; maxRetriesPerRequest: null; connectTimeout: number } {
  return {
    url: checkRedisUrl(url),
    maxRetriesPerRequest: null,
    connectTimeout: QUEUE_DEFAULTS.connectTimeoutMs,
    ...(commandTimeoutMs ? { commandTimeout: commandTimeoutMs } : {}),
  };
}

/** Whether an error is Redis not answering (refused, reset, timed out, closed) rather than a reply. */
export function isRedisFault(error: unknown): boolean {
  if (error instanceof InputError) return false; // already says which argument
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string } | null)?.code ?? '';
  const faults =
    /Command timed out|Connection is closed|Stream isn't writeable|max retries per request|ETIMEDOUT|ECONNREFUSED|ECONNRESET|EPIPE/;
  return faults.test(message) || /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND)$/.test(code);
}

/** InputError(`argument`) for Redis at `url` not answering; other errors unchanged. */
export function redisFault(error: unknown, url: string, argument = '--redis'): unknown {
  if (!isRedisFault(error)) return error;
  const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0];
  return new InputError(
    argument,
    `Redis at ${url} stopped answering (${reason}; commands time out after ${QUEUE_DEFAULTS.commandTimeoutMs / 1000} s)`,
  );
}

/**
 * Fails fast, before anything is created, when Redis cannot be reached or does not answer PING
 * within timeoutMs: InputError `--redis: cannot reach Redis at URL: <reason>` (exit code 2).
 */
export async function checkReachable(
  url: string,
  argument = '--redis',
  timeoutMs: number = QUEUE_DEFAULTS.connectTimeoutMs,
): Promise<void> {
  checkRedisUrl(url, argument);
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  redis.on('error', (error: Error) => (lastError = error));
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no reply to PING within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([
      (async () => {
        await redis.connect();
        await redis.ping();
      })(),
      silent,
    ]);
  } catch (error) {
    const reason = (lastError ?? (error as Error)).message.split('\n')[0];
    throw new InputError(argument, `cannot reach Redis at ${url}: ${reason}`);
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}

/** Runs `close` but gives up after `ms` (a dead Redis must not hold a process at exit); then runs `force`. */
export async function closeWithin(ms: number, close: () => Promise<unknown>, force: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  const outcome = await Promise.race([close().catch(() => 'late' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') force();
}
