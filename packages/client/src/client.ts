import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { InspectReport, JobOptions, JobView, ProgressEvent } from '@longattn/engine/api';
import { ensureOk } from './errors.ts';
import { parseEvents } from './sse.ts';

/** A tensor to upload: a file path (.npy / .safetensors, streamed from disk) or bytes/Blob already in memory. */
export type TensorInput = string | Blob | Uint8Array;

/** The events of a job: `progress` events in order, then one `done` or `failed` (cancelled jobs too) with the job. */
export type JobEvent = { event: 'progress'; data: ProgressEvent } | { event: 'done' | 'failed'; data: JobView };

export interface ClientOptions {
  /** Base URL of the API, e.g. http://localhost:8080. */
  url: string;
  /** The tenant's API key (sent as `Authorization: Bearer KEY`). */
  key: string;
}

/**
 * A multipart/form-data body (RFC 7578) as it is sent: the options field, then each tensor part.
 * Built by hand rather than with FormData: fetch's FormData encoder cost about as much CPU per
 * byte as the api's whole receive path (scripts/bench-api.ts upload); file chunks of 1 MiB here.
 */
async function* multipartBody(
  boundary: string,
  options: string,
  tensors: Readonly<Record<string, TensorInput | undefined>>,
): AsyncGenerator<Uint8Array> {
  const quoted = (name: string) => name.replace(/[\r\n"]/g, (c) => encodeURIComponent(c));
  yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n${options}\r\n`);
  for (const [part, input] of Object.entries(tensors)) {
    if (input === undefined) continue;
    const filename = typeof input === 'string' ? basename(input) : `${part}.${part === 'weights' ? 'safetensors' : 'npy'}`;
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${part}"; filename="${quoted(filename)}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    if (typeof input === 'string') yield* createReadStream(input, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
    else if (input instanceof Blob) yield* input.stream() as unknown as AsyncIterable<Uint8Array>;
    else yield input;
    yield Buffer.from('\r\n');
  }
  yield Buffer.from(`--${boundary}--\r\n`);
}

/**
 * Typed client of the longattn HTTP API (docs/contracts.md), on Node's own fetch. Every method
 * throws ApiError for a non-2xx answer (status, one-line message, field).
 */
export class LongattnClient {
  private readonly base: string;

  constructor(private readonly options: ClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  private fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = { ...(init.headers as Record<string, string>), authorization: `Bearer ${this.options.key}` };
    return fetch(`${this.base}${path}`, { ...init, headers }).then(ensureOk);
  }

  private async json<T>(path: string, init?: RequestInit): Promise<T> {
    return (await (await this.fetch(path, init)).json()) as T;
  }

  /**
   * Submits an attention job: uploads its options, then Q, K, V (files are streamed from disk,
   * never read whole) in one multipart body, options first so the api writes the tensors
   * straight into the job's blobs. Pattern options (`sinks`, `global`, `stride`) go in the
   * options; a block mask as the `mask` tensor (.npy `[nQb, nKb]` or `[H, nQb, nKb]`) with
   * `maskBlock` (every kind takes one).
   */
  async submit(
    tensors: { q: TensorInput; k: TensorInput; v: TensorInput; mask?: TensorInput },
    options: Partial<JobOptions> = {},
  ): Promise<{ id: string; state: string }> {
    return this.post(JSON.stringify({ kind: 'attention', ...options }), tensors);
  }

  /** POST /v1/jobs with the options part first, then the tensor parts, streamed. */
  private post(options: string, tensors: Readonly<Record<string, TensorInput | undefined>>): Promise<{ id: string; state: string }> {
    const boundary = `longattn-${randomUUID()}`;
    return this.json('/v1/jobs', {
      method: 'POST',
      body: multipartBody(boundary, options, tensors) as unknown as ReadableStream,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      duplex: 'half',
    } as RequestInit);
  }

  /**
   * Submits an inspect job (exact attention patterns, docs/contracts.md): uploads Q and K with
   * inspect's options (`rows: [A, B]`, `topK`, `sinksStat`, `localStat`, `received`, `map`, …).
   */
  async submitInspect(
    tensors: { q: TensorInput; k: TensorInput; mask?: TensorInput },
    options: Partial<Omit<JobOptions, 'kind'>> = {},
  ): Promise<{ id: string; state: string }> {
    return this.post(JSON.stringify({ ...options, kind: 'inspect' }), tensors);
  }

  /**
   * Submits a layer job (one attention layer over a document, docs/contracts.md "Document
   * layers"): X, the layer's .safetensors weights (Hugging Face names under `prefix`) and, for
   * cross-attention, X_kv, with `layer`'s options (`heads` required; `kvHeads`, `prefix`,
   * `ropeTheta` or `noRope`, `causal`, `window`, `sinks`, …; a block mask as `mask` with
   * `maskBlock`). Its result/out is Y, result/lse the LSE, result/attn the attention output O.
   */
  async submitLayer(
    parts: { x: TensorInput; weights: TensorInput; xKv?: TensorInput; mask?: TensorInput },
    options: Partial<Omit<JobOptions, 'kind'>> & { heads: number },
  ): Promise<{ id: string; state: string }> {
    return this.post(JSON.stringify({ ...options, kind: 'layer' }), {
      x: parts.x,
      weights: parts.weights,
      'x-kv': parts.xKv,
      mask: parts.mask,
    });
  }

  /** A done inspect job's report (per-head statistics, top-k lists); ApiError 409 until done. */
  inspectReport(id: string): Promise<InspectReport> {
    return this.json(`/v1/jobs/${encodeURIComponent(id)}/result/report`);
  }

  /**
   * A done inspect job's output bytes: `map` (PNG), `received` or `weights` (.npy float32); ApiError
   * 409 until done, 404 when the job was not submitted with that output.
   */
  async inspectOutput(id: string, what: 'map' | 'received' | 'weights'): Promise<Uint8Array> {
    const response = await this.fetch(`/v1/jobs/${encodeURIComponent(id)}/result/${what}`);
    return new Uint8Array(await response.arrayBuffer());
  }

  get(id: string): Promise<JobView> {
    return this.json(`/v1/jobs/${encodeURIComponent(id)}`);
  }

  /** This tenant's jobs, newest first; `next` is the offset of the next page when there is one. */
  list(page: { limit?: number; offset?: number } = {}): Promise<{ jobs: JobView[]; total: number; next?: number }> {
    const query = new URLSearchParams(Object.entries(page).map(([k, v]) => [k, String(v)] as [string, string]));
    return this.json(`/v1/jobs${query.size ? `?${query}` : ''}`);
  }

  /** The job's events as they happen; a late caller gets the current state first. Ends after done/failed. */
  async *events(id: string, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    const response = await this.fetch(`/v1/jobs/${encodeURIComponent(id)}/events`, signal ? { signal } : {});
    for await (const e of parseEvents(response.body!)) yield e as JobEvent;
  }

  /** Follows the job until it ends: its final view (state done, failed or cancelled). */
  async wait(id: string, onProgress?: (p: ProgressEvent) => void): Promise<JobView> {
    for await (const e of this.events(id)) {
      if (e.event === 'progress') onProgress?.(e.data);
      else return e.data;
    }
    return this.get(id);
  }

  /** Cancels a job: tiles stop, its data is deleted (a done job's result too). */
  cancel(id: string): Promise<{ id: string; state: string; was: string }> {
    return this.json(`/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** A done job's O (a layer's Y), LSE or a layer's attention output `attn` as a stream of .npy bytes (ApiError 409 until done). */
  async resultStream(id: string, which: 'out' | 'lse' | 'attn'): Promise<Readable> {
    const response = await this.fetch(`/v1/jobs/${encodeURIComponent(id)}/result/${which}`);
    return Readable.fromWeb(response.body! as WebReadableStream<Uint8Array>);
  }

  /** Writes a done job's O or LSE (.npy) to `path`, through a temporary name so a failure leaves nothing there. */
  async result(id: string, which: 'out' | 'lse' | 'attn', path: string): Promise<void> {
    const partial = `${path}.${process.pid}.part`;
    try {
      await pipeline(await this.resultStream(id, which), createWriteStream(partial));
      await rename(partial, path);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  }
}
