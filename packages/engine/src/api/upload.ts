import { createWriteStream } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { InputError } from '@longattn/tensor';
import { INSPECT_PARTS } from './inspect-options.ts';
import { parseJobOptions, type JobOptions } from './options.ts';
import { headerSniffer } from './sniff.ts';

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

/** A received upload: each tensor part in a file of the per-upload temp dir (named by us, never by the client). */
export interface Upload {
  dir: string;
  options: JobOptions;
  /** Input refs for the engine: `DIR/q.npy` or `DIR/q.safetensors#name` (inspect jobs: q and k only). */
  refs: Record<TensorPart, string>;
  bytes: number;
  remove(): Promise<void>;
}

/**
 * Streams a POST /v1/jobs multipart body to disk: memory stays bounded by the stream buffers
 * whatever the tensors' size. Each tensor part's header is checked as it arrives (sniff.ts), the
 * total is counted against `capBytes` (413). The `options` part must come before the tensor parts
 * that are .safetensors with several tensors (it names them); otherwise in any order. On any
 * failure the temp dir is removed before the error is thrown.
 */
export async function receiveUpload(request: FastifyRequest, tmp: string, capBytes: number, onBytes: (n: number) => void): Promise<Upload> {
  const dir = await mkdtemp(join(tmp, 'longattn-upload-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  const refs: Partial<Record<TensorPart, string>> = {};
  let optionsText: string | undefined;
  let options: JobOptions | undefined;
  let bytes = 0;
  try {
    if (!request.isMultipart()) throw new InputError('body', 'expected multipart/form-data with parts options, q, k, v');
    for await (const part of request.parts()) {
      const field = part.fieldname;
      if (part.type === 'field') {
        if (field !== 'options') throw new InputError(field, 'unexpected field; expected options, q, k, v');
        optionsText = String(part.value);
        options = parseJobOptions(optionsText);
        continue;
      }
      if (!(TENSOR_PARTS as readonly string[]).includes(field)) throw new InputError(field, 'unexpected part; expected options, q, k, v');
      const which = field as TensorPart;
      if (refs[which]) throw new InputError(which, 'given twice');
      const tensor = options?.tensors?.[which];
      const sniffer = headerSniffer(which, tensor);
      const path = join(dir, `${which}.part`);
      const count = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          onBytes(chunk.length);
          if (bytes > capBytes) return callback(new UploadTooLargeError(capBytes));
          try {
            sniffer.feed(chunk);
          } catch (error) {
            return callback(error as Error);
          }
          callback(null, chunk);
        },
      });
      await pipeline(part.file, count, createWriteStream(path));
      if ((part.file as { truncated?: boolean }).truncated) throw new UploadTooLargeError(capBytes);
      if (!sniffer.format) throw new InputError(which, 'empty or truncated part; expected an .npy or .safetensors tensor');
      const final = join(dir, `${which}.${sniffer.format}`);
      await rename(path, final);
      refs[which] = sniffer.format === 'safetensors' && tensor ? `${final}#${tensor}` : final;
    }
    options ??= parseJobOptions(optionsText);
    const wanted = options.kind === 'inspect' ? INSPECT_PARTS : TENSOR_PARTS;
    for (const which of TENSOR_PARTS) {
      if (!refs[which] && wanted.includes(which)) throw new InputError(which, 'missing part (an .npy or .safetensors tensor)');
      if (refs[which] && !wanted.includes(which)) throw new InputError(which, `not used by ${options.kind} jobs (they take q and k)`);
    }
    return { dir, options, refs: refs as Record<TensorPart, string>, bytes, remove };
  } catch (error) {
    await remove();
    const tooLarge = error instanceof UploadTooLargeError || (error as { statusCode?: number }).statusCode === 413;
    // The answer goes out now (a wrong dtype fails fast); the rest of the body is read and dropped meanwhile.
    if (!tooLarge) void drain(request.raw, capBytes - bytes);
    throw error;
  }
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
