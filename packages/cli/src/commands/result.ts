import { Option, type Command } from 'commander';
import { JobOutput } from '@longattn/engine';

/** `longattn result JOB --out O [--lse LSE] --redis URL [--keep]`: collects a finished job's output. */
export function register(program: Command): void {
  program
    .command('result')
    .description('download a finished job’s O (Q’s shape and layout) and LSE, then remove the job')
    .argument('<job>', 'job id')
    .addOption(new Option('--redis <url>', 'Redis URL of the queue (or --api)').env('LONGATTN_REDIS'))
    .option('--api <url>', 'the HTTP API instead of Redis (key from LONGATTN_API_KEY)')
    .requiredOption('--out <path>', 'output O (.npy or .safetensors)')
    .option('--lse <path>', 'output log-sum-exp [B,H,Sq]')
    .option('--keep', 'keep the job’s result in Redis after downloading it')
    .option('--quiet', 'print nothing on success')
    .action(async (job: string, flags: { redis: string; api?: string; out: string; lse?: string; keep?: boolean; quiet?: boolean }) => {
      if (flags.api) return (await import('../api-run.ts')).resultViaApi(job, { ...flags, api: flags.api });
      const { QueueEngine } = await import('@longattn/engine/queue'); // bullmq loads only for this command
      const engine = await QueueEngine.connect(flags.redis);
      try {
        const status = await engine.status(job);
        if (status.state !== 'done')
          throw new Error(`job ${job} is ${status.state}${status.error ? `: ${status.error}` : ''}; no result to collect`);
        await engine.download(job, new JobOutput(status.manifest.spec, status.manifest.qShape, flags.out, flags.lse));
        if (!flags.keep) await engine.remove(job);
        if (!flags.quiet) console.log(`${job}: O → ${flags.out}${flags.lse ? `, LSE → ${flags.lse}` : ''}`);
      } finally {
        await engine.close();
      }
    });
}
