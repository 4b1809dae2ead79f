import { Option, type Command } from 'commander';

/** `longattn cancel JOB --redis URL`: stops a job and deletes its data (a finished job's result too). */
export function register(program: Command): void {
  program
    .command('cancel')
    .description('cancel a queued job and delete its data (on a finished job: discard its result)')
    .argument('<job>', 'job id')
    .addOption(new Option('--redis <url>', 'Redis URL of the queue').env('LONGATTN_REDIS').makeOptionMandatory())
    .option('--quiet', 'print nothing')
    .action(async (job: string, flags: { redis: string; quiet?: boolean }) => {
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
