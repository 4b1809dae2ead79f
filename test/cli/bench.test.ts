import test from 'ava';
import { longattn } from '../support/cli.ts';

interface Row {
  who: string;
  n: number;
  causal: boolean;
  ms?: number;
  processMs?: number;
  gflops?: number;
  peakRssMB?: number;
  skipped?: string;
}

// Speed is never asserted here; what is checked is that every row the README quotes is measured:
// longattn's compute phase and whole process, and each peer's warm run and cold whole process.
test('bench --json: longattn rows with compute and process times, and each peer warm and as a cold process', async (t) => {
  const { code, stdout, stderr } = await longattn(
    [
      'bench',
      '--backends',
      'js',
      '--sizes',
      '96',
      '--heads',
      '2',
      '--d',
      '16',
      '--mask',
      'both',
      '--reps',
      '1',
      '--threads',
      '1',
      '--json',
    ],
    { timeoutMs: 180_000 },
  );
  t.is(code, 0, stderr);
  const rows = JSON.parse(stdout.trim().split('\n').at(-1)!) as Row[];
  const measured = (r: Row | undefined) => r !== undefined && r.ms! > 0 && r.processMs! > r.ms! && r.gflops! > 0 && r.peakRssMB! > 0;
  for (const causal of [false, true]) {
    const at = rows.filter((r) => r.causal === causal && r.n === 96);
    t.true(measured(at.find((r) => r.who === 'longattn js')), `longattn js, causal=${causal}`);
    t.true(measured(at.find((r) => r.who === 'onnxruntime MultiHeadAttention')), `onnxruntime, causal=${causal}`);
    // numpy must run (scripts/setup-system.sh installs python3-numpy): a skipped peer fails here.
    const numpy = at.find((r) => r.who === 'numpy naive');
    t.true(measured(numpy), `numpy, causal=${causal}: ${numpy?.skipped ?? 'measured'}`);
  }
});
