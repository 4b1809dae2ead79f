/**
 * User paths of the queue engine, all real: a redis-server on a free port, `longattn worker` and
 * `longattn reducer` processes, the CLI as a process; outputs checked against the brute-force
 * reference with the exactness rule.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { connectRedis } from '@longattn/engine/queue';
import { readTensor } from '@longattn/tensor';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { bf16FromDefinition } from '../support/bf16.ts';
import { longattn, tempDir } from '../support/cli.ts';
import { runNumpy } from '../support/numpy.ts';
import { bruteWithBound, exactness, type BruteSpec } from '../support/reference64.ts';
import { startService, type Service } from '../queue/support.ts';
import { assertOneLine, onDisk, submitDetached, untilStatus } from './support.ts';

/** bshd, GQA, causal + a window unbounded on the left, a given scale: every flag on the output. */
const SPEC: BruteSpec = { layout: 'bshd', B: 2, H: 6, Hk: 2, Sq: 71, Sk: 53, D: 59, causal: true, window: [9, -1], scale: 0.21 };
const BLOCKS = ['--block-q', '24', '--block-k', '20'];

async function withQueue(body: (redis: string, services: Service[]) => Promise<void>): Promise<void> {
  const redis = await startRedis();
  const services: Service[] = [];
  try {
    await body(redis.url, services);
  } finally {
    await Promise.all(services.map((s) => s.kill()));
    await redis.close();
  }
}

test.serial('auto everywhere (run and worker defaults); --out-dtype f16 through the queue; demo --engine queue', async (t) => {
  const c = onDisk(SPEC);
  try {
    await withQueue(async (redis, services) => {
      // No --backend anywhere: the job is submitted as auto and the worker resolves auto itself.
      services.push(await startService('worker', redis, [], 'cli'), await startService('reducer', redis, [], 'cli'));
      t.regex(services[0]!.log(), /backend (ort|wasm|js|gpujs:\w+) on /, 'the worker resolved auto to a backend');
      const r = await longattn([
        'run',
        ...c.inputFlags,
        ...BLOCKS,
        '--out',
        c.path('o.npy'),
        '--lse',
        c.path('lse.npy'),
        '--engine',
        'queue',
        '--redis',
        redis,
        '--quiet',
      ]);
      t.is(r.code, 0, r.stderr);
      c.assertExact(t, c.path('o.npy'), c.path('lse.npy'));

      const f16 = await longattn([
        'run',
        ...c.inputFlags,
        ...BLOCKS,
        '--out',
        c.path('o16.npy'),
        '--out-dtype',
        'f16',
        '--engine',
        'queue',
        '--redis',
        redis,
        '--quiet',
      ]);
      t.is(f16.code, 0, f16.stderr);
      const script = `
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert b.dtype == np.float16 and b.tobytes() == a.astype(np.float16).tobytes()
print('ok')`;
      t.is(runNumpy(script, [c.path('o.npy'), c.path('o16.npy')]).trim(), 'ok', 'numpy’s float16 of the same job’s float32 output');

      const demoDir = c.path('demo');
      const demo = await longattn([
        'demo',
        '--n',
        '150',
        '--heads',
        '2',
        '--d',
        '16',
        '--engine',
        'queue',
        '--redis',
        redis,
        '--dir',
        demoDir,
        '--json',
      ]);
      t.is(demo.code, 0, demo.stderr);
      t.true((JSON.parse(demo.stdout) as { verified: { exact: boolean } }).verified.exact, 'the demo’s own spot check');
      const [q, k, v] = ['q', 'k', 'v'].map((n) => readTensor(join(demoDir, `${n}.npy`)).data);
      const spec: BruteSpec = { layout: 'bhsd', B: 1, H: 2, Hk: 2, Sq: 150, Sk: 150, D: 16, causal: true };
      const e = exactness(
        { out: readTensor(join(demoDir, 'out.npy')).data, lse: readTensor(join(demoDir, 'lse.npy')).data },
        bruteWithBound(spec, q!, k!, v!),
      );
      t.true(e.exact, `demo: every row against the brute force: max |O − ref| = ${e.err}, LSE ${e.lseErr}`);
    });
  } finally {
    c.cleanup();
  }
});

// gpujs:headlessgl needs an X display: the suite runs under xvfb-run (scripts/test.sh); without one it fails, never skips.
for (const backend of ['ort', 'wasm', 'gpujs:webasm', 'gpujs:headlessgl']) {
  test.serial(`queue workers on ${backend}: output exact`, async (t) => {
    const c = onDisk(SPEC);
    try {
      await withQueue(async (redis, services) => {
        services.push(
          // gpujs here runs on software (llvmpipe, webasm): a worker refuses that without --allow-software.
          await startService(
            'worker',
            redis,
            ['--backend', backend, '--concurrency', '2', ...(backend.startsWith('gpujs') ? ['--allow-software'] : [])],
            'cli',
          ),
          await startService('reducer', redis, [], 'cli'),
        );
        t.regex(services[0]!.log(), new RegExp(`backend ${backend} on `));
        const r = await longattn([
          'run',
          ...c.inputFlags,
          '--backend',
          backend,
          '--out',
          c.path('o.npy'),
          '--lse',
          c.path('lse.npy'),
          '--engine',
          'queue',
          '--redis',
          redis,
          '--json',
        ]);
        t.is(r.code, 0, r.stderr);
        c.assertExact(t, c.path('o.npy'), c.path('lse.npy'));
      });
    } finally {
      c.cleanup();
    }
  });
}

test.serial('cancel while workers are mid-tile: cancelled, no result, nothing written; the workers carry on', async (t) => {
  const c = onDisk({ layout: 'bhsd', B: 1, H: 2, Hk: 2, Sq: 160, Sk: 160, D: 16, causal: false });
  try {
    await withQueue(async (redis, services) => {
      // 400 ms before each tile: a 2×10×10-tile job takes far longer than the test waits.
      services.push(
        await startService('worker', redis, ['--backend', 'js', '--throttle-ms', '400'], 'cli'),
        await startService('reducer', redis, [], 'cli'),
      );
      const out = c.path('o.npy');
      const id = await submitDetached([...c.inputFlags, '--backend', 'js', '--block-q', '16', '--block-k', '16', '--out', out], redis);
      await untilStatus(redis, id, (s) => s.state === 'running' && s.progress.doneTiles > 0);
      const cancelled = await longattn(['cancel', id, '--redis', redis]);
      t.is(cancelled.code, 0, cancelled.stderr);
      t.is(cancelled.stdout, `${id}: cancelled (was running)\n`);
      const status = await longattn(['status', id, '--redis', redis]);
      t.regex(status.stdout, new RegExp(`^${id}  cancelled  `));
      const result = await longattn(['result', id, '--redis', redis, '--out', out]);
      assertOneLine(t, result, 1, /is cancelled; no result to collect/);
      t.false(existsSync(out));

      // The same worker, still running, takes the next job and gets it right.
      t.is(services[0]!.child.exitCode, null, 'the worker is alive');
      const small = onDisk({ layout: 'bhsd', B: 1, H: 1, Hk: 1, Sq: 20, Sk: 30, D: 8, causal: true });
      try {
        const next = await longattn([
          'run',
          ...small.inputFlags,
          '--backend',
          'js',
          '--out',
          small.path('o.npy'),
          '--engine',
          'queue',
          '--redis',
          redis,
          '--quiet',
        ]);
        t.is(next.code, 0, next.stderr);
        small.assertExact(t, small.path('o.npy'));
      } finally {
        small.cleanup();
      }
    });
  } finally {
    c.cleanup();
  }
});

test.serial('result on a running job, status and result of a failed job, cancel of a finished job', async (t) => {
  const c = onDisk({ layout: 'bhsd', B: 1, H: 1, Hk: 1, Sq: 64, Sk: 64, D: 8, causal: true });
  try {
    await withQueue(async (redis, services) => {
      // This worker's plan limits refuse 16×16 tiles (256 rows×keys) but not 8×8: a job of the former
      // fails for good, with the reason recorded (docs/limits.md, "Planning and tiles").
      process.env.LONGATTN_MAX_TILE_AREA = '100';
      try {
        services.push(
          await startService('worker', redis, ['--backend', 'js', '--throttle-ms', '300'], 'cli'),
          await startService('reducer', redis, [], 'cli'),
        );
      } finally {
        delete process.env.LONGATTN_MAX_TILE_AREA;
      }
      const out = c.path('o.npy');
      const flags = [...c.inputFlags, '--out', out];

      // A failed job.
      const failed = await submitDetached([...flags, '--block-q', '16', '--block-k', '16', '--backend', 'js'], redis);
      await untilStatus(redis, failed, (s) => s.state === 'failed');
      const status = await longattn(['status', failed, '--redis', redis]);
      t.is(status.code, 0, status.stderr);
      t.regex(status.stdout, new RegExp(`^${failed}  failed  .*\\n  error: [^\\n]*its manifest is refused[^\\n]*\\n$`));
      const noResult = await longattn(['result', failed, '--redis', redis, '--out', out]);
      assertOneLine(t, noResult, 1, new RegExp(`^longattn: job ${failed} is failed: .*its manifest is refused.*; no result to collect`));
      t.false(existsSync(out));

      // A job on a backend no worker here runs waits, and status says why.
      const waiting = await submitDetached([...flags, '--block-q', '8', '--block-k', '8', '--backend', 'gpujs:webgpu'], redis);
      await untilStatus(redis, waiting, (s) => (s.waiting ?? '').includes('needs backend gpujs:webgpu'));
      t.is((await longattn(['cancel', waiting, '--redis', redis])).code, 0);

      // A running job: result refuses and writes nothing.
      const running = await submitDetached([...flags, '--block-q', '8', '--block-k', '8', '--backend', 'js'], redis);
      await untilStatus(redis, running, (s) => s.state === 'running');
      const early = await longattn(['result', running, '--redis', redis, '--out', out]);
      assertOneLine(t, early, 1, new RegExp(`^longattn: job ${running} is running; no result to collect`));
      t.false(existsSync(out));

      // Finished, then cancelled: its result is discarded.
      await untilStatus(redis, running, (s) => s.state === 'done');
      const cancelled = await longattn(['cancel', running, '--redis', redis]);
      t.is(cancelled.code, 0, cancelled.stderr);
      t.is(cancelled.stdout, `${running}: cancelled (was done)\n`);
      const late = await longattn(['result', running, '--redis', redis, '--out', out]);
      assertOneLine(t, late, 1, new RegExp(`^longattn: job ${running}: its result was already collected or removed$`, 'm'));
      t.false(existsSync(out));
    });
  } finally {
    c.cleanup();
  }
});

test.serial('--blobs redis://other and an absolute path: the job’s bytes live there, the result is exact, nothing is left', async (t) => {
  const c = onDisk(SPEC);
  const other = await startRedis();
  const otherClient = connectRedis(other.url);
  try {
    await withQueue(async (redis, services) => {
      const mainClient = connectRedis(redis);
      try {
        const flags = [...c.inputFlags, '--backend', 'js', ...BLOCKS];
        // Submitted before any worker runs, so the uploaded bytes can be looked at where they are.
        const viaRedis = await submitDetached([...flags, '--out', c.path('unused.npy'), '--blobs', other.url], redis);
        t.true((await otherClient.dbsize()) > 0, 'the inputs are in the other Redis');
        const mainKeys = await mainClient.keys('*');
        t.false(
          mainKeys.some((k) => k.includes(`${viaRedis}/in`)),
          `no input blob in the queue’s Redis: ${mainKeys.filter((k) => k.includes(viaRedis)).join(', ')}`,
        );
        const dir = tempDir('longattn-blobdir-');
        const viaPath = await submitDetached([...flags, '--out', c.path('unused.npy'), '--blobs', dir], redis);
        t.deepEqual(readdirSync(dir), [viaPath], 'the inputs are under the absolute path');

        // Services and `result` open only the stores they are given (docs/limits.md).
        const stores = ['--blobs', `${other.url},${dir}`];
        services.push(
          await startService('worker', redis, ['--backend', 'js', ...stores], 'cli'),
          await startService('reducer', redis, stores, 'cli'),
        );
        for (const [id, name] of [
          [viaRedis, 'redis'],
          [viaPath, 'path'],
        ] as const) {
          await untilStatus(redis, id, (s) => s.state === 'done');
          const out = c.path(`o-${name}.npy`);
          const lse = c.path(`lse-${name}.npy`);
          const r = await longattn(['result', id, '--redis', redis, ...stores, '--out', out, '--lse', lse, '--keep']);
          t.is(r.code, 0, r.stderr);
          c.assertExact(t, out, lse);
          // Collected again, as bfloat16: the float32 result rounded to nearest even.
          const bf16 = c.path(`o-${name}.safetensors`);
          const again = await longattn(['result', id, '--redis', redis, ...stores, '--out', bf16, '--out-dtype', 'bf16']);
          t.is(again.code, 0, again.stderr);
          const raw = readFileSync(bf16);
          const bits = raw.subarray(8 + Number(raw.readBigUInt64LE(0)));
          t.true(bits.equals(Buffer.from(Uint16Array.from(readTensor(out).data, bf16FromDefinition).buffer)), 'result --out-dtype bf16');
        }
        t.true(
          readFileSync(c.path('o-redis.npy')).equals(readFileSync(c.path('o-path.npy'))),
          'same job, same bits, wherever the bytes lived',
        );
        t.is(await otherClient.dbsize(), 0, 'the other Redis is empty once the result is collected');
        t.deepEqual(readdirSync(dir), [], 'the directory is empty once the result is collected');
      } finally {
        mainClient.disconnect();
      }
    });
  } finally {
    otherClient.disconnect();
    await other.close();
    c.cleanup();
  }
});
