import test from 'ava';
import { plan } from '@longattn/attention';
import { arraySource, computeQBlock, JobOutputMemory } from '@longattn/engine';
import { CASES } from '../support/cases.ts';
import { assertExact, prepare } from '../support/exactness.ts';
import { kernelTargets } from './kernel-targets.ts';
import { lseTests } from './lse-suite.ts';

/**
 * Every registered backend, in every mode CI must cover, against the float64 reference on the
 * odd shapes (tfjs-style: one suite for all backends). A backend that cannot run here fails.
 *
 * Registers the suite for the backends `only` accepts (kernel-targets.ts: why webgpu runs apart).
 */
export function conformanceSuite(only: (backend: string) => boolean): void {
  for (const target of kernelTargets(only)) {
    const { backend, label, kernel } = target;
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

    lseTests(target); // the V-free tiles of inspect's first pass
  }
}
