import { InputError, validateSpec, type AttentionSpec } from '@longattn/attention';
import { openTensors, type TensorReader } from '@longattn/tensor';
import type { JobRequest } from './job.ts';

/** Validated inputs of a job: open readers (headers only) and the spec they describe. */
export interface JobInputs {
  spec: AttentionSpec;
  q: TensorReader;
  k: TensorReader;
  v: TensorReader;
  close(): void;
}

/**
 * Opens and validates a job's inputs once, at the boundary (docs/flow.md, step 1): formats, shapes,
 * head counts, options, and (unless allowNonfinite) that every value is finite — naming the tensor
 * and the flat index of the first NaN/Inf. A file named by several refs has its header parsed once.
 * Throws InputError; nothing is left open on failure.
 */
export function openInputs(request: Pick<JobRequest, 'q' | 'k' | 'v' | 'options' | 'allowNonfinite'> & { lse?: string }): JobInputs {
  if (request.options.linear && request.lse) throw new InputError('--lse', 'not with --linear: linear attention has no log-sum-exp');
  const opened = openTensors([
    { ref: request.q, argument: '--q' },
    { ref: request.k, argument: '--k' },
    { ref: request.v, argument: '--v' },
  ]);
  try {
    const [q, k, v] = opened as [TensorReader, TensorReader, TensorReader];
    const spec: AttentionSpec = {
      ...validateSpec({ q: q.shape, k: k.shape, v: v.shape }, request.options),
      ...(request.allowNonfinite ? { allowNonfinite: true } : {}),
    };
    if (!request.allowNonfinite) {
      for (const t of [q, k, v]) {
        const at = t.findNonFinite();
        if (at >= 0) {
          throw new InputError(
            t.argument,
            `non-finite value at flat index ${at} of "${t.ref}" (pass --allow-nonfinite to let NaN/Inf through)`,
          );
        }
      }
    }
    return {
      spec,
      q,
      k,
      v,
      close: () => {
        for (const t of opened) t.close();
      },
    };
  } catch (error) {
    for (const t of opened) t.close();
    throw error;
  }
}
