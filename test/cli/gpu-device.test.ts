import { rmSync } from 'node:fs';
import test from 'ava';
import { startRedis } from '../../scripts/redis-test-server.ts';
import { oddInputs, startService, until, type Service } from '../queue/support.ts';
import { longattn } from '../support/cli.ts';

/**
 * Proof of device (docs/limits.md): what a run, a worker and `status` report is the renderer that
 * really ran, and software renderers are never taken for a GPU. Needs an X display with Mesa
 * (xvfb-run) for gpujs:headlessgl; webgpu:opengl reaches llvmpipe through EGL either way.
 */
const SOFT_WEBGPU = /llvmpipe\S* \(WebGPU opengl, software\)/;

function files(r: { q: string; k: string; v: string; out: string }): string[] {
  return ['--q', r.q, '--k', r.k, '--v', r.v, '--out', r.out, '--causal'];
}

test.serial('run: --json and the summary name the renderer; auto does not take llvmpipe for a GPU', async (t) => {
  t.truthy(process.env.DISPLAY, 'run this file under xvfb-run (gpujs:headlessgl needs an X display)');
  const inputs = oddInputs({ H: 2, Hk: 1, Sq: 100, Sk: 130, D: 16 });
  t.teardown(() => inputs.cleanup());
  const json = await longattn(['run', ...files(inputs.request('a')), '--backend', 'webgpu:opengl', '--json']);
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout.trim().split('\n').at(-1)!) as { backend: string; device: string };
  t.is(report.backend, 'webgpu:opengl');
  t.regex(report.device, SOFT_WEBGPU);
  const gl = await longattn(['run', ...files(inputs.request('b')), '--backend', 'gpujs:headlessgl']);
  t.is(gl.code, 0, gl.stderr);
  t.regex(gl.stdout + gl.stderr, /backend gpujs:headlessgl on Mesa llvmpipe \(GL, software\)/, 'the summary line');
  const auto = await longattn(['run', ...files(inputs.request('c')), '--backend', 'auto', '--json']);
  t.is(auto.code, 0, auto.stderr);
  const chosen = JSON.parse(auto.stdout.trim().split('\n').at(-1)!) as { backend: string; device: string };
  t.notRegex(chosen.backend, /gpujs|webgpu/, `auto chose ${chosen.backend} on ${chosen.device}`);
  t.regex(chosen.device, /^cpu/);
});

test.serial(
  'worker: gpujs/webgpu on a software renderer refuse to start without --allow-software; with it, log and status name the device',
  async (t) => {
    t.truthy(process.env.DISPLAY, 'run this file under xvfb-run');
    const redis = await startRedis();
    const inputs = oddInputs({ H: 2, Hk: 1, Sq: 90, Sk: 120, D: 8 });
    const services: Service[] = [];
    t.teardown(async () => {
      await Promise.all(services.map((s) => s.kill()));
      await redis.close();
      inputs.cleanup();
    });
    for (const backend of ['gpujs:headlessgl', 'gpujs', 'webgpu:opengl', 'webgpu']) {
      const refused = await longattn(['worker', '--redis', redis.url, '--backend', backend], { timeoutMs: 60_000 });
      t.is(refused.code, 2, `${backend}: ${refused.stderr}`);
      // Dawn's native discovery warnings ("Warning: …") may come first; ours is the one longattn line, and the last.
      const ours = refused.stderr.trim().split('\n').at(-1)!;
      t.regex(ours, /^longattn: --backend: \S+ reaches only .+ here, no GPU; pass --allow-software to run on it anyway$/, backend);
      t.is(refused.stderr.match(/^longattn:/gm)?.length, 1, backend);
    }
    services.push(
      await startService('worker', redis.url, ['--backend', 'webgpu:opengl', '--allow-software'], 'cli'),
      await startService('reducer', redis.url, [], 'cli'),
    );
    t.regex(services[0]!.log(), new RegExp(`backend webgpu:opengl on ${SOFT_WEBGPU.source}`), 'the worker log');
    const request = inputs.request('queued');
    const submitted = await longattn([
      'run',
      ...files(request),
      // A job's backend is fixed at submit (auto = the submitter's pick); this worker runs webgpu jobs only.
      '--backend',
      'webgpu:opengl',
      '--engine',
      'queue',
      '--redis',
      redis.url,
      '--detach',
    ]);
    t.is(submitted.code, 0, submitted.stderr);
    const id = submitted.stdout.trim();
    await until('the job to finish', async () => {
      const r = await longattn(['status', id, '--redis', redis.url, '--json']);
      return (JSON.parse(r.stdout) as { state: string }).state === 'done' ? true : undefined;
    });
    const human = await longattn(['status', id, '--redis', redis.url]);
    t.regex(human.stdout, new RegExp(`on 1 worker \\(webgpu:opengl on ${SOFT_WEBGPU.source}\\)`));
    const json = JSON.parse((await longattn(['status', id, '--redis', redis.url, '--json'])).stdout) as { devices: string[] };
    t.is(json.devices.length, 1);
    t.regex(json.devices[0]!, SOFT_WEBGPU);
    rmSync(request.out, { force: true });
  },
);

test.serial('the GPU check fails, never skips, when a GPU is required and a path reaches only software or nothing', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/gpu/check.ts', '--paths', 'webgpu:vulkan,webgpu:opengl', '--require-hardware', '--skip-bench'],
    { encoding: 'utf8', timeout: 240_000 },
  );
  t.is(run.status, 1, run.stderr);
  const last = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { ok: boolean; failures: string[]; summary: { conformance: string }[] };
  t.false(last.ok);
  t.regex(last.failures.join('\n'), /^webgpu:vulkan: cannot run: /m, 'no Vulkan driver here: a failure, not a skip');
  t.regex(last.failures.join('\n'), /^webgpu:opengl: reached llvmpipe\S* \(WebGPU opengl, software\), a software renderer, not the GPU$/m);
  t.is(last.summary[0]!.conformance, '13/13', 'the cases still ran, and passed, on the software renderer');
});
