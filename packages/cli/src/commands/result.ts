import { Option, type Command } from 'commander';
import { requireRedis } from '../parse.ts';
import { checkOutputPaths, JobOutput } from '@longattn/engine';
import { checkOutDtype, InputError, type OutDType } from '@longattn/tensor';
import { OUT_DTYPE } from './run.ts';

type ResultFlags = {
  redis?: string;
  api?: string;
  blobs?: string;
  out: string;
  lse?: string;
  outDtype?: OutDType;
  keep?: boolean;
  quiet?: boolean;
};

/** `longattn result JOB --out O [--lse LSE] --redis URL [--keep]`: collects a finished job's output. */
export function register(program: Command): void {
  program
    .command('result')
    .description('download a finished job’s O (Q’s shape and layout) and LSE, then remove the job')
    .argument('<job>', 'job id')
    .addOption(new Option('--redis <url>', 'Redis URL of the queue (or --api)').env('LONGATTN_REDIS'))
    .option('--api <url>', 'the HTTP API instead of Redis (key from LONGATTN_API_KEY)')
    .addOption(
      new Option(
        '--blobs <where>',
        'blob stores this command may open besides the queue’s Redis: fs:DIR or redis://… (comma-separated)',
      ).env('LONGATTN_BLOBS'),
    )
    .requiredOption('--out <path>', 'output O (.npy or .safetensors)')
    .option('--lse <path>', 'output log-sum-exp [B,H,Sq]')
    .option('--out-dtype <dtype>', 'O’s element type: f32 | f16 | bf16 (bf16: .safetensors only); LSE stays f32', OUT_DTYPE)
    .option('--keep', 'keep the job’s result in Redis after downloading it')
    .option('--quiet', 'print nothing on success')
    .action(async (job: string, flags: ResultFlags) => {
      if (flags.outDtype) checkOutDtype(flags.out, flags.outDtype);
      checkOutputPaths([{ argument: '--out', path: flags.out }, ...(flags.lse ? [{ argument: '--lse', path: flags.lse }] : [])]);
      if (flags.api && (flags.outDtype ?? 'f32') !== 'f32')
        throw new InputError('--out-dtype', 'not available with --api: the API returns float32 .npy');
      if (flags.api) return (await import('../api-run.ts')).resultViaApi(job, { ...flags, api: flags.api });
      const { checkJobId, parseLocations, QueueEngine } = await import('@longattn/engine/queue'); // bullmq loads only for this command
      checkJobId(job);
      const engine = await QueueEngine.connect(requireRedis(flags.redis), { blobs: parseLocations(flags.blobs) });
      try {
        const status = await engine.status(job);
        if (status.state !== 'done')
          throw new Error(`job ${job} is ${status.state}${status.error ? `: ${status.error}` : ''}; no result to collect`);
        if (flags.lse && status.manifest.spec.linear)
          throw new InputError('--lse', `job ${job} is linear attention (an approximation): it has no LSE`);
        await engine.download(job, new JobOutput(status.manifest.spec, status.manifest.qShape, flags.out, flags.lse, flags.outDtype));
        if (!flags.keep) await engine.remove(job);
        if (!flags.quiet) console.log(`${job}: O → ${flags.out}${flags.lse ? `, LSE → ${flags.lse}` : ''}`);
      } finally {
        await engine.close();
      }
    });
}
