/**
 * Helpers for API tests: a real redis-server, worker and reducer processes and a real
 * `longattn api` process on free ports, with fs blobs in the cluster's own temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRedis, type RedisTestServer } from '../../scripts/redis-test-server.ts';
import { BIN, ROOT } from '../support/cli.ts';
import { startService, type Service } from '../queue/support.ts';

export const KEYS = { acme: 'acme-key-0123456789', other: 'other-key-9876543210' };
export const KEYS_ENV = `acme=${KEYS.acme},other=${KEYS.other}`;
export const ADMIN_KEY = 'admin-key-abcdefghij';

export interface ApiProcess {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  log(): string;
  kill(): Promise<void>;
  stop(): Promise<number | null>;
}

/** Starts `longattn api` and waits for its "api on URL" line. */
export async function startApi(redis: string, blobs: string, args: string[] = [], port?: number): Promise<ApiProcess> {
  const thePort = port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [BIN, 'api', '--redis', redis, '--port', String(thePort), '--host', '127.0.0.1', '--blobs', `fs:${blobs}`, ...args],
    {
      cwd: ROOT,
      env: { ...process.env, LONGATTN_API_KEYS: KEYS_ENV, LONGATTN_ADMIN_KEY: ADMIN_KEY },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const started = Date.now();
  await new Promise<void>((ready, fail) => {
    const timer = setInterval(() => {
      if (/: api on http/.test(stderr)) {
        clearInterval(timer);
        ready();
      } else if (Date.now() - started > 60_000) {
        clearInterval(timer);
        child.kill('SIGKILL');
        fail(new Error(`api not ready after 60 s: ${stderr}`));
      }
    }, 20);
    void exited.then((code) => {
      clearInterval(timer);
      fail(new Error(`api exited with ${code} before it was ready: ${stderr}`));
    });
  });
  return {
    url: `http://127.0.0.1:${thePort}`,
    port: thePort,
    child,
    log: () => stderr,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A whole cluster: redis, `workers` workers, a reducer, an api, fs blobs under `dir`. */
export interface Cluster {
  redis: RedisTestServer;
  api: ApiProcess;
  workers: Service[];
  reducer: Service;
  dir: string;
  blobs: string;
  /** Every blob file left under the blob dir (relative paths). */
  blobFiles(): string[];
  close(): Promise<void>;
}

export async function startCluster(
  options: { workers?: number; workerArgs?: string[]; reducerArgs?: string[]; apiArgs?: string[] } = {},
): Promise<Cluster> {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'longattn-api-'));
  const blobs = join(dir, 'blobs');
  const started: { stop(): Promise<unknown> }[] = [];
  try {
    const workers = await Promise.all(
      Array.from({ length: options.workers ?? 1 }, () =>
        startService('worker', redis.url, ['--backend', 'js', '--blobs', `fs:${blobs}`, ...(options.workerArgs ?? [])]),
      ),
    );
    started.push(...workers);
    // Services open only the stores they are given (docs/limits.md): the api's fs blobs.
    const reducer = await startService('reducer', redis.url, ['--blobs', `fs:${blobs}`, ...(options.reducerArgs ?? [])]);
    started.push(reducer);
    const api = await startApi(redis.url, blobs, ['--log-level', 'warn', ...(options.apiArgs ?? [])]);
    const cluster: Cluster = {
      redis,
      api,
      workers,
      reducer,
      dir,
      blobs,
      blobFiles: () => {
        try {
          return readdirSync(blobs, { recursive: true, withFileTypes: true })
            .filter((e) => e.isFile())
            .map((e) => join(e.parentPath, e.name).slice(blobs.length + 1));
        } catch {
          return [];
        }
      },
      async close() {
        await Promise.all([cluster.api.stop(), ...workers.map((w) => w.stop()), reducer.stop()]);
        await redis.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return cluster;
  } catch (error) {
    await Promise.all(started.map((s) => s.stop()));
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** fetch with the tenant's key. */
export function authed(key: string, init: RequestInit = {}): RequestInit {
  return { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${key}` } };
}

/** A multipart body of an attention job from files (or raw parts). */
export async function jobForm(parts: Record<string, string | Blob>): Promise<FormData> {
  const { openAsBlob } = await import('node:fs');
  const form = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (name === 'options') form.append(name, value as string);
    else form.append(name, typeof value === 'string' ? await openAsBlob(value) : value, `${name}.npy`);
  }
  return form;
}

/** The options of the queue tests' odd request (js backend, 64×128 tiles, causal): the queue's bits equal runLocal's. */
export const ODD_OPTIONS = { kind: 'attention' as const, causal: true, backend: 'js', blockQ: 64, blockK: 128 };
