import { InputError, validateSpec, type AttentionSpec } from '@longattn/attention';
import { openTensor, type TensorReader } from '@longattn/tensor';
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
 * and the flat index of the first NaN/Inf. Throws InputError; nothing is left open on failure.
 */
export function openInputs(request: Pick<JobRequest, 'q' | 'k' | 'v' | 'options' | 'allowNonfinite'>): JobInputs {
  const opened: TensorReader[] = [];
  try {
    const q = openTensor(request.q, '--q');
    opened.push(q);
    const k = openTensor(request.k, '--k');
    opened.push(k);
    const v = openTensor(request.v, '--v');
    opened.push(v);
    const spec = validateSpec({ q: q.shape, k: k.shape, v: v.shape }, request.options);
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
