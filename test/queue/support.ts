/**
 * Helpers for queue tests: real worker/reducer processes, small odd-shaped inputs on disk,
 * and the local engine's output to compare against bit for bit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runLocal, type JobRequest } from '@longattn/engine';
import { jobKeys, type connectRedis } from '@longattn/engine/queue';
import { writeTensor } from '@longattn/tensor';
import { randomTensor } from '../support/random.ts';

const root = resolve(import.meta.dirname, '../..');

export interface Service {
  readonly child: ChildProcess;
  /** Everything it wrote to stderr so far. */
  log(): string;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit; resolves to the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts a worker or reducer as a real process and waits until it is consuming the queue: the
 * service entry (services/NAME/src/index.ts), or with via = 'cli' `longattn worker|reducer`.
 */
export async function startService(
  kind: 'worker' | 'reducer',
  redis: string,
  args: string[] = [],
  via: 'service' | 'cli' = 'service',
): Promise<Service> {
  const entry =
    via === 'cli' ? [join(root, 'packages/cli/bin/longattn.mjs'), kind] : ['--import', 'tsx', join(root, `services/${kind}/src/index.ts`)];
  const child = spawn(process.execPath, [...entry, '--redis', redis, ...args], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const started = Date.now();
  await new Promise<void>((ready, fail) => {
    const timer = setInterval(() => {
      if (/queues? bull:/.test(stderr)) {
        clearInterval(timer);
        ready();
      } else if (Date.now() - started > 60_000) {
        clearInterval(timer);
        child.kill('SIGKILL');
        fail(new Error(`${kind} not ready after 60 s: ${stderr}`));
      }
    }, 20);
    void exited.then((code) => {
      clearInterval(timer);
      fail(new Error(`${kind} exited with ${code} before it was ready: ${stderr}`));
    });
  });
  return {
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

export interface Inputs {
  dir: string;
  request(name: string, extra?: Partial<JobRequest>): JobRequest;
  read(path: string): Buffer;
  cleanup(): void;
}

/** The odd shape: H=4, Hk=2, Sq=300, Sk=517, D=24, causal, js backend, 64×128 tiles. */
export function oddInputs(
  shape: { H: number; Hk: number; Sq: number; Sk: number; D: number } = { H: 4, Hk: 2, Sq: 300, Sk: 517, D: 24 },
): Inputs {
  const dir = mkdtempSync(join(tmpdir(), 'longattn-queue-'));
  const { H, Hk, Sq, Sk, D } = shape;
  writeTensor(join(dir, 'q.npy'), [H, Sq, D], randomTensor(H * Sq * D, 21));
  writeTensor(join(dir, 'k.npy'), [Hk, Sk, D], randomTensor(Hk * Sk * D, 22));
  writeTensor(join(dir, 'v.npy'), [Hk, Sk, D], randomTensor(Hk * Sk * D, 23));
  return {
    dir,
    request: (name, extra = {}) => ({
      q: join(dir, 'q.npy'),
      k: join(dir, 'k.npy'),
      v: join(dir, 'v.npy'),
      out: join(dir, `${name}.npy`),
      lse: join(dir, `${name}-lse.npy`),
      options: { causal: true },
      backend: 'js',
      blockQ: 64,
      blockK: 128,
      ...extra,
    }),
    read: (path) => readFileSync(path),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs the local engine on the same request and returns its O and LSE file bytes. */
export async function localBytes(inputs: Inputs, extra: Partial<JobRequest> = {}): Promise<{ out: Buffer; lse: Buffer }> {
  const request = inputs.request(`local-${Math.random().toString(36).slice(2)}`, extra);
  await runLocal(request, { threads: 1 });
  return { out: inputs.read(request.out), lse: inputs.read(request.lse!) };
}

/** Polls until `check` returns a value (not undefined), or fails after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The only job's id in a Redis (tests run one job per server at a time). */
export async function onlyJobId(redis: ReturnType<typeof connectRedis>): Promise<string | undefined> {
  const keys = await redis.keys(jobKeys.hash('*'));
  const hashes = keys.filter((k) => !/:(reduced|records|chunks|projected)$/.test(k));
  return hashes.length === 1 ? hashes[0]!.slice(jobKeys.hash('').length) : undefined;
}
