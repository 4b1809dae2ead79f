import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import { MAX_BLOCK_MASK_BYTES, MAX_MASK_CELLS, parseBlockMaskNpy } from '@longattn/attention';
import { InputError } from '@longattn/tensor';
import { INSPECT_PARTS } from './inspect-options.ts';
import { LAYER_PARTS } from './layer-options.ts';
import type { InputUpload, QueueEngine, UploadedInput } from '../queue/queue-engine.ts';
import { blobNames } from '../queue/names.ts';
import { parseJobOptions, type JobOptions } from './options.ts';
import { receiveLayerPart, receiveTensorPart } from './tensor-part.ts';

/** The tensor parts of an attention job. */
export const TENSOR_PARTS = ['q', 'k', 'v'] as const;
export type TensorPart = (typeof TENSOR_PARTS)[number];

/** An upload past the cap: 413. */
export class UploadTooLargeError extends Error {
  readonly statusCode = 413;
  constructor(capBytes: number) {
    super(`upload exceeds the ${capBytes}-byte cap`);
  }
}

/** A received upload: the job's inputs in its blob store (or, for parts to convert, in files of a temp dir named by us). */
export interface Upload {
  job: InputUpload;
  options: JobOptions;
  inputs: Record<TensorPart, UploadedInput>;
  /** The `mask` part (any kind): a block mask, parsed (options.maskBlock is its block size). */
  mask?: { shape: number[]; cells: Uint8Array };
  /** A layer job's parts (kind "layer"), received to files: `x`, `weights`, `x-kv` → their refs. */
  layer?: { x: string; weights: string; xKv?: string };
  bytes: number;
  /** Removes the temp dir, if one was made (the job's blobs are the engine's). */
  removeFiles(): Promise<void>;
}

/**
 * Streams a POST /v1/jobs multipart body into the job's blob store as it arrives (tensor-part.ts):
 * float32 parts in bhsd layout land in their input blobs in their final form, each byte written
 * once; other parts go to a temp file for the engine to convert. Memory stays bounded whatever
 * the tensors' size; the total is counted against `capBytes` (413). The `options` part should
 * come first (the SDK and the README's curl send it first); a tensor part before it takes the
 * temp-file path. On any failure the job's blobs, record and temp files are removed before the
 * error is thrown.
 */
export async function receiveUpload(
  request: FastifyRequest,
  engine: QueueEngine,
  where: { blobs: string; tmp: string },
  capBytes: number,
  onBytes: (n: number) => void,
): Promise<Upload> {
  if (!request.isMultipart()) throw new InputError('body', 'expected multipart/form-data with parts options, q, k, v (and mask)');
  const job = await engine.openUpload(where.blobs);
  let dir: string | undefined;
  const removeFiles = async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  const inputs: Partial<Record<TensorPart, UploadedInput>> = {};
  const layerRefs: Record<string, string> = {};
  let optionsText: string | undefined;
  let options: JobOptions | undefined;
  let bytes = 0;
  let mask: Upload['mask'];
  const count = (n: number) => {
    bytes += n;
    onBytes(n);
    if (bytes > capBytes) throw new UploadTooLargeError(capBytes);
  };
  const tempDir = async () => (dir ??= await mkdtemp(join(where.tmp, 'longattn-upload-')));
  try {
    for await (const part of request.parts()) {
      const field = part.fieldname;
      if (part.type === 'field') {
        if (field !== 'options') throw new InputError(field, 'unexpected field; expected options, q, k, v, mask');
        optionsText = String(part.value);
        options = parseJobOptions(optionsText);
        continue;
      }
      if (LAYER_PARTS.includes(field) && options?.kind === 'layer') {
        // A layer's parts go to files (the engine validates them together): the weights' file as it is.
        if (layerRefs[field]) throw new InputError(field, 'given twice');
        layerRefs[field] = await receiveLayerPart(part.file, field, options.tensors?.[field as 'x' | 'x-kv'], {
          dir: tempDir,
          count,
          overCap: () => new UploadTooLargeError(capBytes),
          allowNonfinite: options.allowNonfinite,
        });
        continue;
      }
      if (field === 'mask') {
        if (mask) throw new InputError('mask', 'given twice');
        mask = parseBlockMaskNpy(await receiveSmallPart(part.file, 'mask', MAX_BLOCK_MASK_BYTES, count), 'mask', 'the mask part');
        continue;
      }
      if (LAYER_PARTS.includes(field) && !options) throw new InputError(field, 'a layer part before the options part: send options first');
      if (!(TENSOR_PARTS as readonly string[]).includes(field))
        throw new InputError(
          field,
          `unexpected part; expected options, ${options?.kind === 'layer' ? 'x, weights, x-kv' : 'q, k, v'}, mask`,
        );
      const which = field as TensorPart;
      if (inputs[which]) throw new InputError(which, 'given twice');
      const blob = blobNames.input(job.id, which);
      inputs[which] = await receiveTensorPart(part.file, {
        field: which,
        tensor: options?.tensors?.[which],
        direct: options?.layout === 'bhsd' && options.kind !== 'inspect', // inspect jobs are submitted from files (submitInspect)
        allowNonfinite: options?.allowNonfinite ?? false,
        write: (offset, data) => job.store.write(blob, offset, data),
        dir: tempDir,
        count,
        overCap: () => new UploadTooLargeError(capBytes),
      });
    }
    options ??= parseJobOptions(optionsText);
    if (mask && options.maskBlock === undefined)
      throw new InputError('options.maskBlock', 'required with the mask part (the block size B of its cells)');
    if (!mask && options.maskBlock !== undefined)
      throw new InputError('mask', 'missing part (the block mask .npy options.maskBlock is for)');
    if (options.kind === 'layer') {
      for (const which of ['x', 'weights'])
        if (!layerRefs[which])
          throw new InputError(which, `missing part (${which === 'x' ? 'hidden states X' : 'the layer’s .safetensors'})`);
      const given = TENSOR_PARTS.find((which) => inputs[which]);
      if (given) throw new InputError(given, 'not used by layer jobs (they take x, weights and x-kv)');
      const layer = { x: layerRefs.x!, weights: layerRefs.weights!, ...(layerRefs['x-kv'] ? { xKv: layerRefs['x-kv'] } : {}) };
      return { job, options, inputs: inputs as Record<TensorPart, UploadedInput>, ...(mask ? { mask } : {}), layer, bytes, removeFiles };
    }
    const wanted: readonly string[] = options.kind === 'inspect' ? INSPECT_PARTS : TENSOR_PARTS;
    for (const which of TENSOR_PARTS) {
      if (!inputs[which] && wanted.includes(which)) throw new InputError(which, 'missing part (an .npy or .safetensors tensor)');
      if (inputs[which] && !wanted.includes(which)) throw new InputError(which, `not used by ${options.kind} jobs (they take q and k)`);
    }
    return { job, options, inputs: inputs as Record<TensorPart, UploadedInput>, ...(mask ? { mask } : {}), bytes, removeFiles };
  } catch (error) {
    await Promise.all([removeFiles(), engine.abandonUpload(job)]);
    const tooLarge = error instanceof UploadTooLargeError || (error as { statusCode?: number }).statusCode === 413;
    // The answer goes out now (a wrong dtype fails fast); the rest of the body is read and dropped meanwhile.
    if (!tooLarge) void drain(request.raw, capBytes - bytes);
    throw error;
  }
}
/** Reads a small part (the block mask) into memory: at most `limit` bytes, InputError naming it past that. */
async function receiveSmallPart(file: AsyncIterable<Buffer>, field: string, limit: number, count: (n: number) => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of file) {
    count(chunk.length);
    size += chunk.length;
    if (size > limit) throw new InputError(field, `more than ${limit} bytes (a block mask has at most ${MAX_MASK_CELLS} cells)`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Longest wait for the rest of a refused upload's body. */
const DRAIN_MS = 30_000;

/**
 * Reads and discards the rest of a refused request's body (at most `limit` bytes, for at most
 * DRAIN_MS), so a client still sending gets the 400 instead of a reset connection, and the
 * connection stays usable. Past either limit the rest is left unread.
 */
function drain(raw: FastifyRequest['raw'], limit: number): Promise<void> {
  if (raw.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    let left = limit;
    const done = () => {
      clearTimeout(timer);
      raw.off('data', count);
      resolve();
    };
    const count = (chunk: Buffer) => {
      left -= chunk.length;
      if (left < 0) done();
    };
    const timer = setTimeout(done, DRAIN_MS);
    raw.unpipe();
    raw.on('data', count);
    raw.once('end', done);
    raw.once('close', done);
    raw.resume();
  });
}
