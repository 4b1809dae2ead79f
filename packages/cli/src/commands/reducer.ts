import { Option, type Command } from 'commander';
import { parseInteger } from '../parse.ts';

interface ReducerFlags {
  redis: string;
  blobs?: string;
  concurrency: number;
  throttleMs?: number;
  sweepMs?: number;
}

const log = (line: string) => process.stderr.write(`longattn ${line}\n`);

/** `longattn reducer --redis URL`: merges q-blocks and finalises jobs until SIGTERM. */
export function register(program: Command): void {
  program
    .command('reducer')
    .description('merge tiles’ partials in key order, write output rows, finalise jobs, until SIGTERM')
    .addOption(new Option('--redis <url>', 'Redis URL of the queue').env('LONGATTN_REDIS').makeOptionMandatory())
    .addOption(
      new Option('--blobs <where>', 'blob stores jobs may use besides the queue’s Redis: fs:DIR or redis://… (comma-separated)').env(
        'LONGATTN_BLOBS',
      ),
    )
    .addOption(
      new Option('--concurrency <n>', 'reduce jobs at once')
        .argParser(parseInteger('--concurrency', 1, 1024))
        .env('LONGATTN_CONCURRENCY')
        .default(2),
    )
    .addOption(
      new Option('--throttle-ms <ms>', 'sleep before each q-block merge (fault tests, demos)')
        .argParser(parseInteger('--throttle-ms', 0))
        .hideHelp(),
    )
    .addOption(
      new Option('--sweep-ms <ms>', 'delete the blobs of expired, failed and cancelled jobs this often (default 10 min)')
        .argParser(parseInteger('--sweep-ms', 100))
        .hideHelp(),
    )
    .action(async (flags: ReducerFlags) => {
      const { closeOnSignals, parseLocations, startReducer } = await import('@longattn/engine/queue'); // bullmq loads only for this command
      const service = await startReducer({
        redis: flags.redis,
        blobs: parseLocations(flags.blobs),
        concurrency: flags.concurrency,
        ...(flags.throttleMs !== undefined ? { throttleMs: flags.throttleMs } : {}),
        ...(flags.sweepMs !== undefined ? { sweepIntervalMs: flags.sweepMs } : {}),
        log,
      });
      await closeOnSignals(service, log);
    });
}
