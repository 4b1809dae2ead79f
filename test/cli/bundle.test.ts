import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { writeTensor } from '@longattn/tensor';
import { longattn, tempDir } from '../support/cli.ts';
import { randomTensor } from '../support/random.ts';
import { copyWorkspace } from '../support/workspace-copy.ts';

/**
 * The bin starts from the esbuild bundle (packages/cli/dist) when it was built from the sources as
 * they are, rebuilds it when a source changed, and runs the sources through tsx when it cannot;
 * the bundle computes the same bits as the sources. Everything runs in temp copies of the
 * workspace (test/support/workspace-copy.ts), so this tree's sources and dist stay as they are.
 */

const build = (root: string) => spawnSync(process.execPath, [join(root, 'packages/cli/scripts/build-bundle.mjs')], { encoding: 'utf8' });
const binOf = (root: string) => join(root, 'packages/cli/bin/longattn.mjs');
const stampTime = (root: string) => statSync(join(root, 'packages/cli/dist/bundle.json')).mtimeMs;

/** `longattn --help`'s first description line, which the test edits in the copy's main.ts. */
const DESCRIPTION = 'exact attention for very long documents, block by block';

test.serial(
  'bin: the bundle when fresh, rebuilt when a source changed, the sources when it cannot be built or with LONGATTN_FROM_SOURCE=1',
  async (t) => {
    const root = copyWorkspace();
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const built = build(root);
    t.is(built.status, 0, built.stderr);
    const help = async (env: NodeJS.ProcessEnv = {}) => {
      const r = await longattn(['--help'], { bin: binOf(root), cwd: root, env: { LONGATTN_FROM_SOURCE: '', ...env } });
      t.is(r.code, 0, r.stderr);
      return r.stdout;
    };

    // An edit the freshness check cannot see (same size, old mtime): the bundle runs, and shows the old text.
    const main = join(root, 'packages/cli/src/main.ts');
    const edit = (to: string, keepTime: boolean) => {
      const { atime, mtime } = statSync(main);
      const text = readFileSync(main, 'utf8');
      writeFileSync(main, text.replace(/exact attention for very long documents, block by block/i, to));
      if (keepTime) utimesSync(main, atime, mtime);
    };
    edit(DESCRIPTION.toUpperCase(), true);
    const stamped = stampTime(root);
    t.true((await help()).includes(DESCRIPTION), 'fresh bundle');
    t.true((await help({ LONGATTN_FROM_SOURCE: '1' })).includes(DESCRIPTION.toUpperCase()), 'LONGATTN_FROM_SOURCE=1 runs the sources');
    t.is(stampTime(root), stamped, 'no rebuild while fresh');

    // A real edit (new mtime): the bin rebuilds the bundle and runs the edited code.
    utimesSync(main, new Date(), new Date());
    t.true((await help()).includes(DESCRIPTION.toUpperCase()), 'rebuilt bundle runs the edit');
    t.true(stampTime(root) > stamped, 'rebuilt');

    // No esbuild: the bin cannot rebuild, and falls back to the sources silently.
    rmSync(join(root, 'packages/cli/node_modules/esbuild'));
    const rebuilt = stampTime(root);
    edit('Exact Attention For Very Long Documents, Block By Block', false);
    const out = await help();
    t.true(out.includes('Exact Attention For Very Long Documents, Block By Block'), 'stale bundle: the sources run');
    t.is(stampTime(root), rebuilt);
  },
);

test.serial('a bundled run, threads included and tsx not installed, writes the bits a source run writes', async (t) => {
  const root = copyWorkspace({ omit: ['tsx'] });
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const built = build(root);
  t.is(built.status, 0, built.stderr);
  const noTsx = await longattn(['--help'], { bin: binOf(root), cwd: root, env: { LONGATTN_FROM_SOURCE: '1' } });
  t.is(noTsx.code, 1, 'the copy cannot run its sources: whatever runs there is the bundle');
  t.regex(noTsx.stderr, /tsx/);

  // Odd sizes, two heads, causal, small blocks: many tiles over two pool threads.
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [H, S, D] = [2, 113, 40];
  for (const [i, name] of ['q', 'k', 'v'].entries()) writeTensor(join(dir, `${name}.npy`), [H, S, D], randomTensor(H * S * D, 11 + i));
  const run = async (backend: string, tag: string, bin: string | undefined, env: NodeJS.ProcessEnv) => {
    const out = join(dir, `${backend}-${tag}`);
    const args = [
      'run',
      '--q',
      join(dir, 'q.npy'),
      '--k',
      join(dir, 'k.npy'),
      '--v',
      join(dir, 'v.npy'),
      '--out',
      `${out}.o.npy`,
      '--lse',
      `${out}.lse.npy`,
    ];
    const r = await longattn(
      [...args, '--backend', backend, '--causal', '--block-q', '32', '--block-k', '48', '--threads', '2', '--quiet'],
      { ...(bin ? { bin } : {}), env },
    );
    t.is(r.code, 0, `${backend} ${tag}: ${r.stderr}`);
    return [readFileSync(`${out}.o.npy`), readFileSync(`${out}.lse.npy`)];
  };
  for (const backend of ['js', 'wasm', 'ort', 'gpujs:cpu']) {
    const [bundled, source] = await Promise.all([
      run(backend, 'bundle', binOf(root), { LONGATTN_FROM_SOURCE: '' }),
      run(backend, 'source', undefined, { LONGATTN_FROM_SOURCE: '1' }),
    ]);
    t.true(bundled[0]!.equals(source[0]!), `${backend}: O differs`);
    t.true(bundled[1]!.equals(source[1]!), `${backend}: LSE differs`);
  }
});

test('the build refuses a package the bundle would not find from packages/cli', (t) => {
  const root = copyWorkspace();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const manifest = join(root, 'packages/cli/package.json');
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies: Record<string, string> };
  delete pkg.dependencies.piscina;
  writeFileSync(manifest, JSON.stringify(pkg));
  const built = build(root);
  t.is(built.status, 1);
  t.regex(built.stderr, /packages\/engine imports "piscina" \(5\.3\.2\).*add "piscina": "5\.3\.2" to packages\/cli\/package\.json/);
  t.is(statSync(join(root, 'packages/cli/dist'), { throwIfNoEntry: false }), undefined, 'nothing written');
});
