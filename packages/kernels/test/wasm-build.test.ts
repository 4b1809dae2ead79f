import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';

const kernels = fileURLToPath(new URL('..', import.meta.url));

test('the wasm loader builds a missing .wasm on first use and notices a stale one', async (t) => {
  // A copy of the package's wasm parts in a temp dir, sharing node_modules (assemblyscript).
  const dir = mkdtempSync(join(tmpdir(), 'longattn-wasm-build-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const part of ['assembly', 'scripts/build-wasm.mjs', 'src/wasm/load.ts', 'src/wasm/api.ts']) {
    cpSync(join(kernels, part), join(dir, part), { recursive: true });
  }
  symlinkSync(join(kernels, 'node_modules'), join(dir, 'node_modules'));
  const wasm = join(dir, 'src/wasm/build/tile.wasm');

  const load = (await import(pathToFileURL(join(dir, 'src/wasm/load.ts')).href)) as typeof import('../src/wasm/load.ts');
  t.true(await load.stale(), 'no .wasm yet');
  const module = await load.loadTileModule();
  t.true(existsSync(wasm));
  t.false(await load.stale());
  t.truthy(module);

  const past = new Date(Date.now() - 3_600_000);
  utimesSync(wasm, past, past);
  t.true(await load.stale(), 'a .wasm older than its source is stale');
});
