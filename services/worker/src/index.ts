/**
 * @longattn/worker: the tile worker service, a thin process around the engine's startWorker.
 *   node --import tsx services/worker/src/index.ts --redis redis://host:6379 [--concurrency N] [--backend NAME]
 * (the same as `longattn worker …`). Options fall back to LONGATTN_REDIS, LONGATTN_CONCURRENCY,
 * LONGATTN_BACKEND. Exit codes: 0 after SIGTERM/SIGINT, 2 bad options or Redis unreachable, 1 other errors.
 */
import { parseArgs } from 'node:util';
import { closeOnSignals, startWorker } from '@longattn/engine/queue';
import { InputError } from '@longattn/tensor';

const log = (line: string) => process.stderr.write(`longattn ${line}\n`);

function integer(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 0) throw new InputError(flag, `expected a non-negative integer, got "${text}"`);
  return n;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      redis: { type: 'string' },
      concurrency: { type: 'string' },
      backend: { type: 'string' },
      'grace-ms': { type: 'string' },
      'throttle-ms': { type: 'string' },
    },
  });
  const redis = values.redis ?? process.env.LONGATTN_REDIS;
  if (!redis) throw new InputError('--redis', 'required (or set LONGATTN_REDIS)');
  const service = await startWorker({
    redis,
    concurrency: Math.max(1, integer('--concurrency', values.concurrency ?? process.env.LONGATTN_CONCURRENCY, 1)),
    backend: values.backend ?? process.env.LONGATTN_BACKEND ?? 'auto',
    ...(values['grace-ms'] !== undefined ? { graceMs: integer('--grace-ms', values['grace-ms'], 0) } : {}),
    ...(values['throttle-ms'] !== undefined ? { throttleMs: integer('--throttle-ms', values['throttle-ms'], 0) } : {}),
    log,
  });
  await closeOnSignals(service, log);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: Error) => {
      log(`worker: ${error.message.split('\n')[0]}`);
      process.exit(error instanceof InputError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1);
    },
  );
}
