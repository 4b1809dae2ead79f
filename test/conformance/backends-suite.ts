import test from 'ava';
import { plan } from '@longattn/attention';
import { arraySource, computeQBlock, JobOutputMemory } from '@longattn/engine';
import { listBackends, type TileKernel } from '@longattn/kernels';
import { CASES } from '../support/cases.ts';
import { assertExact, prepare } from '../support/exactness.ts';

/**
 * Every registered backend, in every mode CI must cover, against the float64 reference on the
 * odd shapes (tfjs-style: one suite for all backends). A backend that cannot run here fails.
 */
/**
 * Registers the suite for the backends `only` accepts. Dawn (webgpu) and the gl addon (gpujs
 * headlessgl) cannot share a process (Dawn's EGL finds no adapter once the addon holds a GLX
 * context), so webgpu runs in its own test file: test/conformance/webgpu.test.ts.
 */
export function conformanceSuite(only: (backend: string) => boolean): void {
  const targets = listBackends()
    .filter((backend) => only(backend.name))
    .flatMap((backend) => (backend.testedModes ?? [undefined]).map((mode) => ({ backend, mode })));
  const kernels = new Map<string, Promise<TileKernel>>();

  for (const { backend, mode } of targets) {
    const label = mode ? `${backend.name}:${mode}` : backend.name;
    const options = mode ? { mode } : {};
    const kernel = () => {
      let k = kernels.get(label);
      if (!k) {
        k = backend.probe(options).then((reason) => {
          if (reason) throw new Error(`${label} cannot run here: ${reason}`);
          return backend.create(options);
        });
        kernels.set(label, k);
      }
      return k;
    };

    for (const c of CASES) {
      test.serial(`${label}: ${c.name}`, async (t) => {
        const p = prepare(c);
        const blocks = { blockQ: c.blockQ ?? backend.defaultBlocks.blockQ, blockK: c.blockK ?? backend.defaultBlocks.blockK };
        const thePlan = plan(p.spec, blocks);
        const source = arraySource(p.spec, p.q, p.k, p.v);
        const output = new JobOutputMemory(p.spec);
        const k = await kernel();
        for (const block of thePlan.blocks()) output.write(block, await computeQBlock(k, p.spec, block, source));
        assertExact(t, p, output.out, output.lse);
      });
    }

    test.serial(`${label}: bitwise deterministic across runs`, async (t) => {
      const p = prepare(CASES[1]!);
      const thePlan = plan(p.spec, { blockQ: 64, blockK: 64 });
      const source = arraySource(p.spec, p.q, p.k, p.v);
      const k = await kernel();
      const once = async () => {
        const output = new JobOutputMemory(p.spec);
        for (const block of thePlan.blocks()) output.write(block, await computeQBlock(k, p.spec, block, source));
        return output;
      };
      const a = await once();
      const b = await once();
      t.true(Buffer.from(a.out.buffer).equals(Buffer.from(b.out.buffer)));
      t.true(Buffer.from(a.lse.buffer).equals(Buffer.from(b.lse.buffer)));
    });
  }

  test.after.always(async () => {
    for (const k of kernels.values()) await (await k.catch(() => undefined))?.dispose?.();
  });
}
