import type { Command } from 'commander';
import { jobTargetOptions, withQueueEngine } from '../job-command.ts';

/** `longattn cancel JOB --redis URL`: stops a job and deletes its data (a finished job's result too). */
export function register(program: Command): void {
  jobTargetOptions(
    program
      .command('cancel')
      .description('cancel a queued job and delete its data (on a finished job: discard its result)')
      .argument('<job>', 'job id'),
  )
    .option('--quiet', 'print nothing')
    .action(async (job: string, flags: { redis?: string; api?: string; blobs?: string; quiet?: boolean }) => {
      if (flags.api) return (await import('../api-run.ts')).cancelViaApi(job, { ...flags, api: flags.api });
      await withQueueEngine(job, flags, async (engine) => {
        const was = await engine.cancel(job);
        if (!flags.quiet) console.log(`${job}: cancelled (was ${was})`);
      });
    });
}
