import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { longattn } from '../support/cli.ts';
import { localBytes, oddInputs } from '../queue/support.ts';
import { KEYS, startCluster } from './support.ts';

test('longattn --api: run (bits equal runLocal), run --detach, status, result, cancel; errors exit 2 naming the argument', async (t) => {
  const cluster = await startCluster();
  const inputs = oddInputs();
  const env = { LONGATTN_API_KEY: KEYS.acme };
  const api = cluster.api.url;
  try {
    const request = inputs.request('cli');
    const job = [
      '--q',
      request.q,
      '--k',
      request.k,
      '--v',
      request.v,
      '--causal',
      '--backend',
      'js',
      '--block-q',
      '64',
      '--block-k',
      '128',
    ];
    const run = await longattn(['run', ...job, '--out', request.out, '--lse', request.lse!, '--engine', 'queue', '--api', api, '--json'], {
      env,
    });
    t.is(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as { engine: string; jobId: string; tiles: number };
    t.is(summary.engine, 'queue');
    t.true(summary.tiles > 0);
    const expected = await localBytes(inputs);
    t.true(readFileSync(request.out).equals(expected.out), 'O bit-identical to runLocal');
    t.true(readFileSync(request.lse!).equals(expected.lse), 'LSE bit-identical to runLocal');

    const detached = await longattn(
      ['run', ...job, '--out', join(inputs.dir, 'unused.npy'), '--engine', 'queue', '--api', api, '--detach'],
      { env },
    );
    t.is(detached.code, 0, detached.stderr);
    const id = detached.stdout.trim();
    t.regex(id, /^la-/);
    let status = await longattn(['status', id, '--api', api, '--json'], { env });
    t.is(status.code, 0, status.stderr);
    for (let i = 0; i < 400 && JSON.parse(status.stdout).state !== 'done'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await longattn(['status', id, '--api', api, '--json'], { env });
    }
    t.is(JSON.parse(status.stdout).state, 'done');
    const human = await longattn(['status', id, '--api', api], { env });
    t.regex(human.stdout, new RegExp(`^${id}  done  \\d+/\\d+ tiles  B=1 H=4 Sq=300 Sk=517 D=24`));
    const out = join(inputs.dir, 'detached.npy');
    const result = await longattn(['result', id, '--api', api, '--out', out], { env });
    t.is(result.code, 0, result.stderr);
    t.true(readFileSync(out).equals(expected.out));

    // Errors: one line, exit 2, naming what was wrong.
    const noKey = await longattn(['status', id, '--api', api], { env: { LONGATTN_API_KEY: '' } });
    t.is(noKey.code, 2);
    t.regex(noKey.stderr, /^longattn: LONGATTN_API_KEY: required with --api/);
    const wrongKey = await longattn(['status', id, '--api', api], { env: { LONGATTN_API_KEY: 'nope-nope-nope' } });
    t.is(wrongKey.code, 2);
    t.regex(wrongKey.stderr, /^longattn: LONGATTN_API_KEY: unknown API key\n$/);
    const otherTenant = await longattn(['status', id, '--api', api], { env: { LONGATTN_API_KEY: KEYS.other } });
    t.is(otherTenant.code, 2);
    t.regex(otherTenant.stderr, /^longattn: JOB: no such job\n$/);
    const badOut = await longattn(['result', id, '--api', api, '--out', join(inputs.dir, 'o.safetensors')], { env });
    t.is(badOut.code, 2);
    t.regex(badOut.stderr, /^longattn: --out: with --api, results are \.npy files/);
    const badWindow = await longattn(
      ['run', ...job, '--window', '5,-2', '--out', join(inputs.dir, 'w.npy'), '--engine', 'queue', '--api', api],
      { env },
    );
    t.is(badWindow.code, 2);
    t.regex(badWindow.stderr, /^longattn: --window: /);
    const local = await longattn(['run', ...job, '--out', join(inputs.dir, 'l.npy'), '--api', api], { env });
    t.is(local.code, 2);
    t.regex(local.stderr, /^longattn: --api: needs --engine queue/);

    const cancel = await longattn(['cancel', id, '--api', api], { env });
    t.is(cancel.code, 0, cancel.stderr);
    t.is(cancel.stdout, `${id}: cancelled (was done)\n`);
    const gone = await longattn(['result', id, '--api', api, '--out', out], { env });
    t.is(gone.code, 1);
    t.regex(gone.stderr, /cancelled; no result to collect/);
  } finally {
    await cluster.close();
    inputs.cleanup();
  }
});
