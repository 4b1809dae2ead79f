// Compiles assembly/tile.ts (AssemblyScript, WASM SIMD) into src/wasm/build/tile.wasm.
// Run by `pnpm install` (the package's `prepare`) and, when the .wasm is missing or older than
// its sources, by the wasm backend's loader on first use. Writes through a temporary file and a
// rename, so concurrent builds (several workers starting at once) never leave a torn file.
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'assembly', 'tile.ts');
const output = join(root, 'src', 'wasm', 'build', 'tile.wasm');
const flags = ['--enable', 'simd', '-O3', '--runtime', 'stub', '--noAssert', '--use', 'abort='];

mkdirSync(dirname(output), { recursive: true });
const temporary = `${output}.${process.pid}.${Date.now()}.tmp`;
const { error, stderr } = await asc.main([source, '--outFile', temporary, ...flags]);
if (error) {
  rmSync(temporary, { force: true });
  process.stderr.write(`build-wasm: ${error.message}\n${stderr.toString()}`);
  process.exit(1);
}
renameSync(temporary, output);
