import { Option, type Command } from 'commander';

/** `longattn cancel JOB --redis URL`: stops a job and deletes its data (a finished job's result too). */
export function register(program: Command): void {
  program
    .command('cancel')
    .description('cancel a queued job and delete its data (on a finished job: discard its result)')
    .argument('<job>', 'job id')
    .addOption(new Option('--redis <url>', 'Redis URL of the queue (or --api)').env('LONGATTN_REDIS'))
    .option('--api <url>', 'the HTTP API instead of Redis (key from LONGATTN_API_KEY)')
    .option('--quiet', 'print nothing')
    .action(async (job: string, flags: { redis: string; api?: string; quiet?: boolean }) => {
      if (flags.api) return (await import('../api-run.ts')).cancelViaApi(job, { ...flags, api: flags.api });
      const { QueueEngine } = await import('@longattn/engine/queue'); // bullmq loads only for this command
      const engine = await QueueEngine.connect(flags.redis);
      try {
        const was = await engine.cancel(job);
        if (!flags.quiet) console.log(`${job}: cancelled (was ${was})`);
      } finally {
        await engine.close();
      }
    });
}
