import { Option, type Command } from 'commander';
import { parseInteger } from '../parse.ts';

interface WorkerFlags {
  redis: string;
  blobs?: string;
  concurrency: number;
  backend: string;
  throttleMs?: number;
  graceMs?: number;
  allowSoftware?: boolean;
  merge?: boolean;
}

const log = (line: string) => process.stderr.write(`longattn ${line}\n`);

/** `longattn worker --redis URL [--concurrency N] [--backend …]`: computes tile jobs until SIGTERM. */
export function register(program: Command): void {
  program
    .command('worker')
    .description('compute tile jobs from the Redis queue until SIGTERM (run any number, on any machine)')
    .addOption(new Option('--redis <url>', 'Redis URL of the queue').env('LONGATTN_REDIS').makeOptionMandatory())
    .addOption(
      new Option('--blobs <where>', 'blob stores jobs may use besides the queue’s Redis: fs:DIR or redis://… (comma-separated)').env(
        'LONGATTN_BLOBS',
      ),
    )
    .addOption(
      new Option('--concurrency <n>', 'kernel threads (tiles at once)')
        .argParser(parseInteger('--concurrency', 1, 1024))
        .env('LONGATTN_CONCURRENCY')
        .default(1),
    )
    .addOption(
      new Option(
        '--backend <name>',
        'jobs to compute: auto (any backend that runs here) | js | wasm | ort | gpujs[:MODE] | webgpu[:MODE] (jobs on it only)',
      )
        .env('LONGATTN_BACKEND')
        .default('auto'),
    )
    .addOption(new Option('--allow-software', 'let gpujs/webgpu run on a software renderer (llvmpipe, lavapipe) or the CPU'))
    .addOption(
      new Option('--grace-ms <ms>', 'on SIGTERM, let in-flight tiles finish this long, then hand them back').argParser(
        parseInteger('--grace-ms', 0),
      ),
    )
    .addOption(
      new Option('--throttle-ms <ms>', "sleep before each tile, and once after writing a job's rows (fault tests, demos)")
        .argParser(parseInteger('--throttle-ms', 0))
        .hideHelp(),
    )
    .addOption(new Option('--no-merge', 'leave q-blocks split across tile jobs to the reducer (fault tests of its merges)').hideHelp())
    .action(async (flags: WorkerFlags) => {
      const { closeOnSignals, parseLocations, startWorker } = await import('@longattn/engine/queue'); // bullmq loads only for this command
      const service = await startWorker({
        redis: flags.redis,
        blobs: parseLocations(flags.blobs),
        concurrency: flags.concurrency,
        backend: flags.backend,
        ...(flags.graceMs !== undefined ? { graceMs: flags.graceMs } : {}),
        ...(flags.allowSoftware ? { allowSoftware: true } : {}),
        ...(flags.throttleMs !== undefined ? { throttleMs: flags.throttleMs } : {}),
        ...(flags.merge === false ? { mergeSplit: false } : {}),
        log,
      });
      await closeOnSignals(service, log);
    });
}
