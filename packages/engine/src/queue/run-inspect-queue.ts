import { lseShape } from '@longattn/attention';
import { writeTensor } from '@longattn/tensor';
import { bytesToF32 } from '../blobs/blob-store.ts';
import { JobCancelledError } from '../errors.ts';
import type { InspectReport, InspectRequest, InspectResult } from '../inspect/request.ts';
import { checkOutputs } from '../inspect/run-inspect.ts';
import { writeFileAtomic } from '../inspect/write-file.ts';
import type { Progress } from '../job.ts';
import type { InspectSubmitOptions } from './inspect-submit.ts';
import { QueueEngine } from './queue-engine.ts';

export interface InspectQueueOptions extends InspectSubmitOptions {
  /** Redis URL of the queue (`--redis`). */
  redis: string;
  /** Both passes in one count: tiles of the LSE pass, then chunks of the statistics pass. */
  onProgress?: (progress: Progress) => void;
  /** Aborting cancels the job (nothing of it is left, no file written). */
  signal?: AbortSignal;
}

/**
 * `longattn inspect --engine queue`: submits an inspect job (QueueEngine.submitInspect), waits
 * while workers compute the LSE pass and the chunks and a reducer folds them in chunk order,
 * then writes the report's files (`--received`, `--weights-out`, `--map`) from the job's blobs and
 * removes the job. With the same inputs, backend and blocks the report and files are bitwise the
 * local engine's (runInspect): the same LSE bits, the same inspectChunk, the same fold order.
 */
export async function runInspectQueue(request: InspectRequest, options: InspectQueueOptions): Promise<InspectResult> {
  const started = performance.now();
  checkOutputs(request);
  const engine = await QueueEngine.connect(options.redis);
  try {
    const { redis: _redis, onProgress, signal, ...submitOptions } = options;
    const manifest = await engine.submitInspect(request, submitOptions);
    const id = manifest.id;
    if (signal?.aborted) {
      await engine.cancel(id);
      throw new JobCancelledError(`job ${id} cancelled`);
    }
    const status = await engine.wait(id, { ...(onProgress ? { onProgress } : {}), ...(signal ? { signal } : {}) });
    const report = JSON.parse(Buffer.from((await engine.inspectOutput(id, 'report'))!).toString('utf8')) as InspectReport;
    const { spec } = manifest;
    const lead = lseShape(manifest.qShape.length, spec.B, spec.H, spec.Sq).slice(0, -1);
    const files: InspectResult['files'] = {};
    const received = request.received ? await engine.inspectOutput(id, 'received') : null;
    if (request.received && received) {
      writeTensor(request.received, [...lead, spec.Sk], bytesToF32(received));
      files.received = request.received;
    }
    const weights = request.weightsOut ? await engine.inspectOutput(id, 'weights') : null;
    if (request.weightsOut && weights) {
      const rows = manifest.inspect!.settings.rowsTo - manifest.inspect!.settings.rowsFrom;
      writeTensor(request.weightsOut, [...lead, rows, spec.Sk], bytesToF32(weights));
      files.weightsOut = request.weightsOut;
    }
    const map = request.map ? await engine.inspectOutput(id, 'map') : null;
    if (request.map && map) {
      writeFileAtomic(request.map, map);
      files.map = request.map;
    }
    await engine.remove(id);
    const submitted = status.submittedAt ?? Date.now();
    const pass = status.inspectStartedAt ?? submitted;
    return {
      report,
      files,
      lseFrom: manifest.inspect!.lseFrom,
      backend: manifest.inspect!.lseFrom === 'pass' ? manifest.backend : null,
      scores: status.scores ?? '',
      threads: status.workers,
      chunks: manifest.inspect!.chunks,
      lseMs: pass - submitted,
      inspectMs: (status.finishedAt ?? Date.now()) - pass,
      wallMs: performance.now() - started,
    };
  } finally {
    await engine.close();
  }
}
