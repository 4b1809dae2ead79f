import type { Command } from 'commander';
import { jobTargetOptions, withQueueEngine } from '../job-command.ts';
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
  jobTargetOptions(
    program
      .command('result')
      .description('download a finished job’s O (Q’s shape and layout) and LSE, then remove the job')
      .argument('<job>', 'job id'),
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
      await withQueueEngine(job, flags, async (engine) => {
        const status = await engine.status(job);
        if (status.state !== 'done')
          throw new Error(`job ${job} is ${status.state}${status.error ? `: ${status.error}` : ''}; no result to collect`);
        if (flags.lse && status.manifest.spec.linear)
          throw new InputError('--lse', `job ${job} is linear attention (an approximation): it has no LSE`);
        await engine.download(job, new JobOutput(status.manifest.spec, status.manifest.qShape, flags.out, flags.lse, flags.outDtype));
        if (!flags.keep) await engine.remove(job);
        if (!flags.quiet) console.log(`${job}: O → ${flags.out}${flags.lse ? `, LSE → ${flags.lse}` : ''}`);
      });
    });
}
