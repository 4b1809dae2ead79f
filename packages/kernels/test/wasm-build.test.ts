import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test, { type ExecutionContext } from 'ava';

const kernels = fileURLToPath(new URL('..', import.meta.url));
type Load = typeof import('../src/wasm/load.ts');

/** A copy of the package's wasm parts in a temp dir; `withCompiler` links node_modules (assemblyscript). */
async function copy(t: ExecutionContext, withCompiler: boolean): Promise<{ dir: string; load: Load }> {
  const dir = mkdtempSync(join(tmpdir(), 'longattn-wasm-build-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const part of ['assembly', 'scripts/build-wasm.mjs', 'src/wasm/load.ts', 'src/wasm/api.ts']) {
    cpSync(join(kernels, part), join(dir, part), { recursive: true });
  }
  if (withCompiler) symlinkSync(join(kernels, 'node_modules'), join(dir, 'node_modules'));
  const load = (await import(pathToFileURL(join(dir, 'src/wasm/load.ts')).href)) as Load;
  return { dir, load };
}

test('the wasm loader builds a missing .wasm on first use and notices a stale one', async (t) => {
  const { dir, load } = await copy(t, true);
  const wasm = join(dir, 'src/wasm/build/tile.wasm');
  t.true(await load.stale(), 'no .wasm yet');
  t.truthy(await load.loadTileModule());
  t.true(existsSync(wasm));
  t.false(await load.stale());

  const past = new Date(Date.now() - 3_600_000);
  utimesSync(wasm, past, past);
  t.true(await load.stale(), 'a .wasm older than its source is stale');
});

test('without assemblyscript the loader says why, and `prepare` (--if-available) does not fail the install', async (t) => {
  const { dir, load } = await copy(t, false);
  const error = await t.throwsAsync(load.loadTileModule());
  t.regex(error?.message ?? '', /building it failed: build-wasm: assemblyscript is not installed/);
  const script = join(dir, 'scripts/build-wasm.mjs');
  t.notThrows(() => execFileSync(process.execPath, [script, '--if-available'], { stdio: 'pipe' }));
  t.false(existsSync(join(dir, 'src/wasm/build/tile.wasm')));
});
