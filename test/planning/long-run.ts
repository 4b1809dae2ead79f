/**
 * A long local job as a real process, for the planning tests: `node --import=tsx long-run.ts
 * JSON` runs runLocal on the JSON JobRequest (+ `threads`), printing one line per progress
 * update at most every 200 ms — `progress doneTiles totalTiles doneFlops totalFlops rssMB` — and
 * `result {JSON}` at the end. SIGINT aborts the job (exit 130, outputs removed).
 */
import { runLocal, type JobRequest } from '@longattn/engine';

const { threads, ...request } = JSON.parse(process.argv[2]!) as JobRequest & { threads?: number };
const abort = new AbortController();
process.once('SIGINT', () => abort.abort(new Error('SIGINT')));
let last = 0;
try {
  const result = await runLocal(request, {
    ...(threads ? { threads } : {}),
    signal: abort.signal,
    onProgress: (p) => {
      const now = Date.now();
      if (now - last < 200 && p.doneTiles < p.totalTiles) return;
      last = now;
      const rssMB = Math.round(process.memoryUsage.rss() / 2 ** 20);
      process.stdout.write(`progress ${p.doneTiles} ${p.totalTiles} ${p.doneFlops} ${p.totalFlops} ${rssMB}\n`);
    },
  });
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exitCode = abort.signal.aborted ? 130 : 1;
}
