import { Option, type Command } from 'commander';
import type { QueueEngine } from '@longattn/engine/queue';
import { requireRedis } from './parse.ts';

/** The flags every command about one queued job takes: where the queue is (Redis or the API) and which blob stores it may open. */
export interface JobTarget {
  redis?: string;
  api?: string;
  blobs?: string;
}

/** Adds `--redis`, `--api` and `--blobs` (docs/contracts.md) to a command about one queued job. */
export function jobTargetOptions(command: Command): Command {
  return command
    .addOption(new Option('--redis <url>', 'Redis URL of the queue (or --api)').env('LONGATTN_REDIS'))
    .option('--api <url>', 'the HTTP API instead of Redis (key from LONGATTN_API_KEY)')
    .addOption(
      new Option(
        '--blobs <where>',
        'blob stores this command may open besides the queue’s Redis: fs:DIR or redis://… (comma-separated)',
      ).env('LONGATTN_BLOBS'),
    );
}

/** Checks the job id, connects to the queue at `--redis`, runs `use`, and always closes the connection. */
export async function withQueueEngine<T>(job: string, flags: JobTarget, use: (engine: QueueEngine) => Promise<T>): Promise<T> {
  const { checkJobId, parseLocations, QueueEngine } = await import('@longattn/engine/queue'); // bullmq loads only for these commands
  checkJobId(job);
  const engine = await QueueEngine.connect(requireRedis(flags.redis), { blobs: parseLocations(flags.blobs) });
  try {
    return await use(engine);
  } finally {
    await engine.close();
  }
}
