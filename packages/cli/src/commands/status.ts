import type { Command } from 'commander';
import { jobTargetOptions, withQueueEngine } from '../job-command.ts';
import type { QueueJobStatus } from '@longattn/engine/queue';

/** One human line (or two, with an error) about a queued job. */
export function describeStatus(s: QueueJobStatus): string {
  const { doneTiles, totalTiles, doneFlops, totalFlops } = s.progress;
  const pct = totalFlops > 0 ? (100 * doneFlops) / totalFlops : 100;
  const { B, H, Sq, Sk, D } = s.manifest.spec;
  const lines = [
    `${s.jobId}  ${s.state}  ${doneTiles}/${totalTiles} tiles (${pct.toFixed(1)}%)  B=${B} H=${H} Sq=${Sq} Sk=${Sk} D=${D}` +
      `  backend ${s.manifest.backend}` +
      (s.workers > 0 ? `  on ${s.workers} worker${s.workers === 1 ? '' : 's'} (${s.backends.join(', ')} on ${s.devices.join('; ')})` : ''),
  ];
  if (s.error) lines.push(`  error: ${s.error}`);
  if (s.waiting) lines.push(`  waiting: ${s.waiting}`);
  return lines.join('\n');
}

/** `longattn status JOB --redis URL [--json]`. */
export function register(program: Command): void {
  jobTargetOptions(
    program.command('status').description('state and progress of a queued job').argument('<job>', 'job id (printed by run --detach)'),
  )
    .option('--json', 'print one JSON object')
    .action(async (job: string, flags: { redis?: string; api?: string; blobs?: string; json?: boolean }) => {
      if (flags.api) return (await import('../api-run.ts')).statusViaApi(job, { ...flags, api: flags.api });
      await withQueueEngine(job, flags, async (engine) => {
        const status = await engine.status(job);
        if (flags.json) {
          const { manifest, ...rest } = status;
          console.log(
            JSON.stringify({
              ...rest,
              tiles: manifest.tileCount,
              blockQ: manifest.blockQ,
              blockK: manifest.blockK,
              backend: manifest.backend,
            }),
          );
        } else {
          console.log(describeStatus(status));
        }
      });
    });
}
