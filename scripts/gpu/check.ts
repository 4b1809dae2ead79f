// The GPU check's program (scripts/gpu-check.sh runs it; scripts/gpu/pack.sh bundles it for a
// machine without Node.js). For each GPU path in turn: which device it reached, the conformance
// cases against float64, and the benchmark (n×n, H heads, D, dense and causal; sampled rows
// checked against float64). One JSON line per result on stdout, a summary object last.
//
//   node --import tsx scripts/gpu/check.ts [--paths webgpu:vulkan,webgpu:opengl,gpujs:headlessgl]
//        [--n 16384] [--h 8] [--d 64] [--block-q N] [--block-k N] [--require-hardware] [--skip-bench]
// --require-hardware: a path that cannot run, or runs on a software renderer, fails (the packaged
//   check sets it when nvidia-smi sees a GPU). Without it, such a path is reported and skipped.
// Exit status: 0 all checks passed; 1 a check failed; 2 bad arguments.
import { exactnessBound, maxAbsDiff, plan, referenceRows, validateSpec, type AttentionSpec } from '@longattn/attention';
import { arraySource, computeQBlock, JobOutputMemory } from '@longattn/engine';
import { getBackend, onSoftware, type TileKernel } from '@longattn/kernels';
import { uniformF32 } from '@longattn/tensor';
import { CASES } from '../../test/support/cases.ts';
import { prepare } from '../../test/support/exactness.ts';

const args = new Map<string, string>();
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--require-hardware' || a === '--skip-bench') args.set(a, '1');
  else if (/^--(paths|n|h|d|block-q|block-k)$/.test(a) && argv[i + 1] !== undefined) args.set(a, argv[++i]!);
  else {
    console.error(`gpu check: ${a}: unknown argument (see the header of scripts/gpu/check.ts)`);
    process.exit(2);
  }
}
const int = (name: string, dflt: number) => {
  const v = Number(args.get(name) ?? dflt);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`gpu check: ${name}: expected a positive integer, got "${args.get(name)}"`);
    process.exit(2);
  }
  return v;
};
const PATHS = (args.get('--paths') ?? 'webgpu:vulkan,webgpu:opengl,gpujs:headlessgl').split(',');
const N = int('--n', 16384);
const H = int('--h', 8);
const D = int('--d', 64);
const requireHardware = args.has('--require-hardware');
const emit = (o: object) => console.log(JSON.stringify(o));
const failures: string[] = [];
const summary: object[] = [];

/** Every q-block of a plan through the kernel; o/lse of the whole job. */
async function runAll(
  kernel: TileKernel,
  spec: AttentionSpec,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  blocks: { blockQ: number; blockK: number },
) {
  const thePlan = plan(spec, blocks);
  const source = arraySource(spec, q, k, v);
  const output = new JobOutputMemory(spec);
  for (const block of thePlan.blocks()) output.write(block, await computeQBlock(kernel, spec, block, source));
  return { output, thePlan };
}

for (const path of PATHS) {
  const [name, mode] = path.split(':') as [string, string | undefined];
  const backend = getBackend(name);
  const options = mode ? { mode } : {};
  const reason = await backend.probe(options);
  if (reason) {
    emit({ path, runs: false, reason });
    if (requireHardware) failures.push(`${path}: cannot run: ${reason}`);
    continue;
  }
  const kernel = await backend.create(options);
  const software = onSoftware({ backend, device: kernel.device });
  emit({ path, device: kernel.device, software });
  if (software && requireHardware) failures.push(`${path}: reached ${kernel.device}, a software renderer, not the GPU`);
  const blocks = {
    blockQ: int('--block-q', backend.defaultBlocks.blockQ),
    blockK: int('--block-k', backend.defaultBlocks.blockK),
  };
  const result: Record<string, unknown> = { path, device: kernel.device, software, blocks };
  try {
    let passed = 0;
    for (const c of CASES) {
      const p = prepare(c);
      const caseBlocks = { blockQ: c.blockQ ?? backend.defaultBlocks.blockQ, blockK: c.blockK ?? backend.defaultBlocks.blockK };
      const { output } = await runAll(kernel, p.spec, p.q, p.k, p.v, caseBlocks);
      const err = maxAbsDiff(output.out, p.ref.out);
      let lseErr = 0;
      for (let i = 0; i < p.ref.lse.length; i++) {
        const a = output.lse[i]!;
        const b = p.ref.lse[i]!;
        lseErr = Math.max(lseErr, a === b ? 0 : Math.abs(a - b)); // -Infinity must match -Infinity
      }
      const ok = err <= p.bound && lseErr <= 1e-4;
      if (ok) passed++;
      else failures.push(`${path}: conformance "${c.name}": max|o−ref| ${err} (bound ${p.bound}), lse ${lseErr}`);
      emit({ path, case: c.name, ok, err, bound: p.bound, lseErr });
    }
    result.conformance = `${passed}/${CASES.length}`;
    if (!args.has('--skip-bench')) {
      const q = uniformF32(H * N * D, 1, -1, 1);
      const k = uniformF32(H * N * D, 2, -1, 1);
      const v = uniformF32(H * N * D, 3, -1, 1);
      for (const causal of [false, true]) {
        const spec = validateSpec({ q: [H, N, D], k: [H, N, D], v: [H, N, D] }, { causal });
        const warm = validateSpec({ q: [1, Math.min(N, blocks.blockQ), D], k: [1, N, D], v: [1, N, D] }, { causal });
        await runAll(kernel, warm, q, k, v, blocks); // shader builds and first-use costs
        const t0 = performance.now();
        const { output, thePlan } = await runAll(kernel, spec, q, k, v, blocks);
        const seconds = (performance.now() - t0) / 1000;
        // Sampled rows of the first and last head against float64 (FlashAttention's rule per sample).
        const rows = [0, 1, Math.floor(N / 3), Math.floor(N / 2), N - 2, N - 1];
        let err = 0;
        let bound = 0;
        let lseErr = 0;
        for (const h of [0, H - 1]) {
          const { ref, naive } = referenceRows(spec, q, k, v, 0, h, rows);
          const got = new Float32Array(rows.length * D);
          rows.forEach((r, n) => {
            got.set(output.out.subarray((h * N + r) * D, (h * N + r + 1) * D), n * D);
            lseErr = Math.max(lseErr, Math.abs(output.lse[h * N + r]! - ref.lse[n]!));
          });
          err = Math.max(err, maxAbsDiff(got, ref.out));
          bound = Math.max(bound, exactnessBound(naive.out, ref.out));
        }
        const ok = err <= bound && lseErr <= 1e-4;
        const tflops = thePlan.flops / seconds / 1e12;
        const key = causal ? 'causal' : 'dense';
        result[key] = { seconds, tflops, ok, err, bound, lseErr, flops: thePlan.flops };
        emit({ path, bench: key, n: N, H, D, ...blocks, seconds, tflops, ok, err, bound, lseErr });
        if (!ok) failures.push(`${path}: benchmark ${key}: sampled rows off (max|o−ref| ${err}, bound ${bound}, lse ${lseErr})`);
      }
    }
  } catch (e) {
    failures.push(`${path}: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    await kernel.dispose?.();
  }
  summary.push(result);
}
emit({ summary, failures, ok: failures.length === 0 });
process.exit(failures.length === 0 ? 0 : 1);
