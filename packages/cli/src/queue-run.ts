import { InputError } from '@longattn/tensor';
import type { JobRequest, JobResult, Progress } from '@longattn/engine';

/** `--engine queue`: wired to the QueueEngine once it lands (issue 5). */
export async function runOnQueue(_request: JobRequest, _flags: { redis?: string }, _onProgress: (p: Progress) => void): Promise<JobResult> {
  throw new InputError('--engine', 'the queue engine is not part of this build yet; use --engine local');
}
