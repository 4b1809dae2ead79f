import cliProgress from 'cli-progress';
import type { Progress } from '@longattn/engine';

/**
 * A progress bar on stderr for long jobs: only on a TTY, only when not --quiet/--json, and only
 * once the job has run for `delayMs` (short jobs stay silent). Returns the progress callback
 * and a stop function.
 */
export function progressBar(enabled: boolean, label: string, delayMs = 500): { update: (p: Progress) => void; stop: () => void } {
  if (!enabled || !process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const started = Date.now();
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(p) {
      if (!bar) {
        if (Date.now() - started < delayMs || p.totalFlops === 0) return;
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: `${label} [{bar}] {percentage}% | {doneTiles}/{totalTiles} tiles | {gflops} GFLOP/s | ETA {eta_formatted}`,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.totalFlops, 0, { doneTiles: 0, totalTiles: p.totalTiles, gflops: '0.0' });
      }
      const seconds = (Date.now() - started) / 1000;
      bar.update(p.doneFlops, { doneTiles: p.doneTiles, totalTiles: p.totalTiles, gflops: (p.doneFlops / 1e9 / seconds).toFixed(1) });
    },
    stop() {
      bar?.stop();
    },
  };
}
