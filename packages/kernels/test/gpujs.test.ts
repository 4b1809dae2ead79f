import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exactnessBound, maxAbsDiff, naiveFloat32Attention, referenceAttention, type SpecOptions } from '@longattn/attention';
import { detectGpu, getBackend, type TileKernel } from '@longattn/kernels';
import { attend, makeCase, wholeJob, type Case } from './support.ts';
import { gpuDeviceNodes } from '../src/gpujs/detect.ts';
import { GpujsTileKernel } from '../src/gpujs/gpujs-kernel.ts';
import { loadGpuJs } from '../src/gpujs/lib.ts';

/**
 * The gpujs backend against the float64 reference, in headlessgl mode (real GLSL; on this
 * machine Mesa llvmpipe under Xvfb: the test run happens under `xvfb-run -a`) and webasm mode.
 * Without an X display the headlessgl tests FAIL with the probe's reason: they never skip.
 * Shapes stay small: software GL is slow and compiles five shaders per tile shape.
 */
const MODES = ['headlessgl', 'webasm'] as const;

async function runWhole(k: TileKernel, c: Case): Promise<{ out: Float32Array; lse: Float32Array }> {
  const p = await k.run(wholeJob(c));
  return { out: p.o, lse: p.lse };
}

const kernels = new Map<string, Promise<TileKernel>>();
/** One kernel per mode for the file; fails (never skips) with the probe's reason when the mode cannot run. */
function kernel(mode: string): Promise<TileKernel> {
  let k = kernels.get(mode);
  if (!k) {
    k = (async () => {
      const backend = getBackend('gpujs');
      const reason = await backend.probe({ mode });
      if (reason) throw new Error(`gpujs:${mode} cannot run here: ${reason}`);
      return backend.create({ mode });
    })();
    kernels.set(mode, k);
  }
  return k;
}

test.after.always(async () => {
  for (const k of kernels.values()) await (await k.catch(() => undefined))?.dispose?.();
});

function assertExact(t: ExecutionContext, c: Case, ours: { out: Float32Array; lse: Float32Array }): void {
  const ref = referenceAttention(c.spec, c.q, c.k, c.v);
  const naive = naiveFloat32Attention(c.spec, c.q, c.k, c.v);
  // FlashAttention's rule: at most twice the naive float32 error, plus 1e-5 of slack.
  const err = maxAbsDiff(ours.out, ref.out);
  t.true(err <= exactnessBound(naive.out, ref.out), `max |out − ref| ${err} > bound ${exactnessBound(naive.out, ref.out)}`);
  t.true(maxAbsDiff(ours.lse, ref.lse) <= 1e-4, `max |lse − ref| ${maxAbsDiff(ours.lse, ref.lse)}`);
  t.false(ours.out.some(Number.isNaN) || ours.lse.some(Number.isNaN), 'no NaN');
}

test.serial('headlessgl needs an X display: the test run provides one (xvfb-run -a)', async (t) => {
  t.truthy(process.env.DISPLAY, 'DISPLAY is not set: run the tests under `xvfb-run -a` (scripts/test.sh does)');
  t.is(await getBackend('gpujs').probe({ mode: 'headlessgl' }), null);
});

test.serial('headlessgl really runs GL kernels (not the cpu fallback) and names the renderer', async (t) => {
  const k = await kernel('headlessgl');
  t.is(k.backend, 'gpujs:headlessgl');
  await k.run(wholeJob(makeCase(9, 17, 5, { causal: true })));
  t.true(k instanceof GpujsTileKernel);
  t.deepEqual((k as GpujsTileKernel).runsOn(), Array(5).fill('HeadlessGLKernel'));
  const info = await detectGpu();
  t.truthy(info, 'detectGpu found no GL context');
  t.regex(info!.renderer, /\S/);
  // The device string tells software rasterisers apart: never a GPU the backend is not using.
  t.is(k.device.endsWith(info!.software ? '(GL, software)' : '(GL)'), true, k.device);
  if (/llvmpipe/i.test(info!.renderer)) t.is(k.device, 'Mesa llvmpipe (GL, software)');
  // Auto-selection only takes gpujs on real hardware.
  const hardware = await getBackend('gpujs').probeHardware!();
  t.is(hardware === null, info!.software);
});

test.serial('probing GL leaves the gl addon free for the thread that will run the kernels', async (t) => {
  // The addon binds to the first thread of a process that loads it; probe, describe and
  // detectGpu ask a child process, so a worker thread started afterwards can still open GL.
  const script = `
    import { Worker } from 'node:worker_threads';
    import { gpujsBackend, detectGpu } from ${JSON.stringify(new URL('../src/gpujs/index.ts', import.meta.url).href)};
    const probe = await gpujsBackend.probe({ mode: 'headlessgl' });
    await gpujsBackend.describe({ mode: 'headlessgl' });
    await detectGpu();
    const code = "const gl = require(process.env.GL_PATH)(1, 1); require('node:worker_threads').parentPort.postMessage(gl ? 'opened' : 'no context');";
    const worker = new Worker(code, { eval: true, execArgv: [] });
    const answer = await new Promise((resolve) => { worker.on('message', resolve); worker.on('error', (e) => resolve(String(e.message))); });
    await worker.terminate();
    console.log(JSON.stringify({ probe, answer }));`;
  const glPath = createRequire(import.meta.url).resolve('gl');
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, GL_PATH: glPath },
    timeout: 60_000,
  });
  t.is(child.status, 0, child.stderr);
  t.deepEqual(JSON.parse(child.stdout.trim().split('\n').pop()!), { probe: null, answer: 'opened' });
});

test.serial('the default mode is headlessgl when GL works', async (t) => {
  const backend = getBackend('gpujs');
  t.is(await backend.describe!({}), await backend.describe!({ mode: 'headlessgl' }));
});

test.serial('webasm runs WebAssembly kernels and says it is the cpu', async (t) => {
  const k = await kernel('webasm');
  t.is(k.backend, 'gpujs:webasm');
  t.is(k.device, 'cpu (gpu.js webasm)');
  await k.run(wholeJob(makeCase(9, 17, 5)));
  t.deepEqual((k as GpujsTileKernel).runsOn(), Array(5).fill('WebAssemblyKernel'));
});

test.serial('a kernel that ends up on another gpu.js class is refused, not reported', async (t) => {
  const gpujs = await loadGpuJs();
  const k = new GpujsTileKernel({
    gpu: new gpujs.GPU({ mode: 'cpu' }),
    backend: 'gpujs:test',
    device: 'pretend GPU',
    expected: gpujs.HeadlessGLKernel,
    maxSide: Infinity,
    threads: 1,
  });
  await t.throwsAsync(k.run(wholeJob(makeCase(4, 6, 3))), { message: /runs on gpu\.js CPUKernel, not HeadlessGLKernel.*refusing/ });
  k.dispose();
});

test.serial('bad modes and unavailable modes give one-line reasons', async (t) => {
  const backend = getBackend('gpujs');
  await t.throwsAsync(backend.create({ mode: 'cuda' }), {
    name: 'InputError',
    message: /^--backend: gpujs mode must be one of headlessgl, webgpu, webasm, cpu; got "cuda"$/,
  });
  const webgpu = await backend.probe({ mode: 'webgpu' });
  // Here Dawn (webgpu 0.2.9) does not load; where it does and a Vulkan GPU answers, null is right.
  if (webgpu !== null) t.regex(webgpu, /^(the )?webgpu|^WebGPU/i);
  t.true(webgpu === null || !webgpu.includes('\n'));
});

const shapes: [string, number, number, number, SpecOptions, number?, number?][] = [
  ['dense 113×203 D 59, one tile', 113, 203, 59, {}],
  ['dense 113×203 D 111, one tile', 113, 203, 111, {}],
  ['causal Sq<Sk 113×203 D 59, one tile', 113, 203, 59, { causal: true }],
  ['causal Sq>Sk 203×113 D 111 (fully masked rows), one tile', 203, 113, 111, { causal: true }],
  ['window (0,0) 113×203 D 59, one tile', 113, 203, 59, { window: { left: 0, right: 0 } }],
  ['window (7,3) scale 0.3 113×203 D 59, one tile', 113, 203, 59, { window: { left: 7, right: 3 }, scale: 0.3 }],
  ['causal Sq>Sk 203×113 D 59, tiles 32×48 merged (ragged edges, full and empty tiles)', 203, 113, 59, { causal: true }, 32, 48],
];

for (const mode of MODES) {
  for (const [title, Sq, Sk, D, options, blockQ, blockK] of shapes) {
    test.serial(`gpujs:${mode} matches the float64 reference: ${title}`, async (t) => {
      const c = makeCase(Sq, Sk, D, options);
      const k = await kernel(mode);
      const ours = blockQ ? await attend(k, c, blockQ, blockK ?? Sk) : await runWhole(k, c);
      assertExact(t, c, ours);
    });
  }

  test.serial(`gpujs:${mode}: rows that see no key come out o = 0, lse = -Infinity`, async (t) => {
    const c = makeCase(203, 113, 59, { causal: true }); // rows i < 90 see no key (j ≤ i − 90)
    const p = await (await kernel(mode)).run(wholeJob(c));
    t.true(p.lse.subarray(0, 90).every((x) => x === -Infinity));
    t.true(p.o.subarray(0, 90 * 59).every((x) => x === 0));
    t.true(Number.isFinite(p.lse[90]!));
  });

  test.serial(`gpujs:${mode}: a tile with 16500 keys (over GL's 16384 texture side) is split and merged`, async (t) => {
    // Causal with Sq < Sk: every row's visible range crosses the 16384 boundary of the split.
    const c = makeCase(6, 16500, 8, { causal: true }, 3);
    const k = (await kernel(mode)) as GpujsTileKernel;
    const before = k.chunks;
    assertExact(t, c, await runWhole(k, c));
    t.is(k.chunks - before, 2); // 16384 + 116 keys (every mode caps a chunk at 16384 keys)
  });

  test.serial(`gpujs:${mode} is bitwise deterministic across runs`, async (t) => {
    const c = makeCase(70, 90, 33, { causal: true }, 7);
    const k = await kernel(mode);
    const a = await k.run(wholeJob(c));
    const b = await k.run(wholeJob(c));
    t.true(Buffer.from(a.o.buffer).equals(Buffer.from(b.o.buffer)));
    t.true(Buffer.from(a.lse.buffer).equals(Buffer.from(b.lse.buffer)));
  });
}

test.serial('texture tiling: a small maxSide splits rows and keys and still matches the reference', async (t) => {
  const gpujs = await loadGpuJs();
  const k = new GpujsTileKernel({
    gpu: new gpujs.GPU({ mode: 'webasm' }),
    backend: 'gpujs:webasm',
    device: 'cpu (gpu.js webasm)',
    expected: gpujs.WebAssemblyKernel,
    maxSide: 64, // chunks of ≤ 64 rows and ≤ 64 keys: 2 × 4 chunks, the last ones ragged
    threads: 1,
  });
  const c = makeCase(113, 203, 59, { causal: true, window: { left: 70, right: 0 } }, 4);
  assertExact(t, c, await runWhole(k, c));
  // Row i sees keys [i+20, i+90]: rows 0..63 miss key chunk 192..202, rows 64..112 miss 0..63;
  // those two fully masked chunks do no kernel work.
  t.is(k.chunks, 8 - 2);
  k.dispose();
});

test('gpuDeviceNodes finds NVIDIA, DRM render and WSL nodes, and nothing on a CPU-only /dev', (t) => {
  const dev = mkdtempSync(join(tmpdir(), 'longattn-dev-'));
  try {
    for (const name of ['null', 'nvidiactl', 'nvidia-uvm', 'tty0']) writeFileSync(join(dev, name), '');
    t.deepEqual(gpuDeviceNodes(dev), [], 'control nodes are not GPUs');
    mkdirSync(join(dev, 'dri'));
    writeFileSync(join(dev, 'dri', 'card0'), '');
    t.deepEqual(gpuDeviceNodes(dev), [], 'a display-only card0 has no render node');
    writeFileSync(join(dev, 'dri', 'renderD128'), '');
    writeFileSync(join(dev, 'nvidia0'), '');
    writeFileSync(join(dev, 'dxg'), '');
    t.deepEqual(gpuDeviceNodes(dev).sort(), [join(dev, 'dri', 'renderD128'), join(dev, 'dxg'), join(dev, 'nvidia0')]);
  } finally {
    rmSync(dev, { recursive: true, force: true });
  }
});
