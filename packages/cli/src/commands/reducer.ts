import { Option, type Command } from 'commander';
import { parseInteger } from '../parse.ts';

interface ReducerFlags {
  redis: string;
  concurrency: number;
  throttleMs?: number;
}

const log = (line: string) => process.stderr.write(`longattn ${line}\n`);

/** `longattn reducer --redis URL`: merges q-blocks and finalises jobs until SIGTERM. */
export function register(program: Command): void {
  program
    .command('reducer')
    .description('merge tiles’ partials in key order, write output rows, finalise jobs, until SIGTERM')
    .addOption(new Option('--redis <url>', 'Redis URL of the queue').env('LONGATTN_REDIS').makeOptionMandatory())
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
    .action(async (flags: ReducerFlags) => {
      const { closeOnSignals, startReducer } = await import('@longattn/engine/queue'); // bullmq loads only for this command
      const service = await startReducer({
        redis: flags.redis,
        concurrency: flags.concurrency,
        ...(flags.throttleMs !== undefined ? { throttleMs: flags.throttleMs } : {}),
        log,
      });
      await closeOnSignals(service, log);
    });
}
