import { Option, type Command } from 'commander';
import { requireRedis } from '../parse.ts';

/** `longattn cancel JOB --redis URL`: stops a job and deletes its data (a finished job's result too). */
export function register(program: Command): void {
  program
    .command('cancel')
    .description('cancel a queued job and delete its data (on a finished job: discard its result)')
    .argument('<job>', 'job id')
    .addOption(new Option('--redis <url>', 'Redis URL of the queue (or --api)').env('LONGATTN_REDIS'))
    .option('--api <url>', 'the HTTP API instead of Redis (key from LONGATTN_API_KEY)')
    .addOption(
      new Option(
        '--blobs <where>',
        'blob stores this command may open besides the queue’s Redis: fs:DIR or redis://… (comma-separated)',
      ).env('LONGATTN_BLOBS'),
    )
    .option('--quiet', 'print nothing')
    .action(async (job: string, flags: { redis?: string; api?: string; blobs?: string; quiet?: boolean }) => {
      if (flags.api) return (await import('../api-run.ts')).cancelViaApi(job, { ...flags, api: flags.api });
      const { checkJobId, parseLocations, QueueEngine } = await import('@longattn/engine/queue'); // bullmq loads only for this command
      checkJobId(job);
      const engine = await QueueEngine.connect(requireRedis(flags.redis), { blobs: parseLocations(flags.blobs) });
      try {
        const was = await engine.cancel(job);
        if (!flags.quiet) console.log(`${job}: cancelled (was ${was})`);
      } finally {
        await engine.close();
      }
    });
}
