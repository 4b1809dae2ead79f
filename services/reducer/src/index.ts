/**
 * @longattn/reducer: the reducer service, a thin process around the engine's startReducer.
 *   node --import tsx services/reducer/src/index.ts --redis redis://host:6379 [--concurrency N]
 * (the same as `longattn reducer …`). Options fall back to LONGATTN_REDIS, LONGATTN_CONCURRENCY.
 * Exit codes: 0 after SIGTERM/SIGINT, 2 bad options or Redis unreachable, 1 other errors.
 */
import { parseArgs } from 'node:util';
import { closeOnSignals, startReducer } from '@longattn/engine/queue';
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
      'throttle-ms': { type: 'string' },
    },
  });
  const redis = values.redis ?? process.env.LONGATTN_REDIS;
  if (!redis) throw new InputError('--redis', 'required (or set LONGATTN_REDIS)');
  const service = await startReducer({
    redis,
    concurrency: Math.max(1, integer('--concurrency', values.concurrency ?? process.env.LONGATTN_CONCURRENCY, 2)),
    ...(values['throttle-ms'] !== undefined ? { throttleMs: integer('--throttle-ms', values['throttle-ms'], 0) } : {}),
    log,
  });
  await closeOnSignals(service, log);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: Error) => {
      log(`reducer: ${error.message.split('\n')[0]}`);
      process.exit(error instanceof InputError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1);
    },
  );
}
