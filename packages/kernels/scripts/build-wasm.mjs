// Compiles assembly/tile.ts (AssemblyScript, WASM SIMD) into src/wasm/build/tile.wasm.
// Run by `pnpm install` (the package's `prepare`, with --if-available) and, when the .wasm is
// missing or older than its sources, by the wasm backend's loader on first use. Writes through a
// temporary file and a rename, so concurrent builds (several workers starting at once) never
// leave a torn file.
//   --if-available  exit 0 with a warning when assemblyscript (a devDependency) is not installed,
//                   e.g. `pnpm install --prod`: the wasm backend then reports itself unavailable.
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'assembly', 'tile.ts');
const output = join(root, 'src', 'wasm', 'build', 'tile.wasm');
const flags = ['--enable', 'simd', '-O3', '--runtime', 'stub', '--noAssert', '--use', 'abort='];

const asc = await import('assemblyscript/asc').then(
  (m) => m.default,
  () => {
    const message = 'build-wasm: assemblyscript is not installed (a devDependency of @longattn/kernels); cannot build the wasm tile';
    if (process.argv.includes('--if-available')) {
      process.stderr.write(`${message}; skipped\n`);
      process.exit(0);
    }
    process.stderr.write(`${message}\n`);
    process.exit(1);
  },
);

mkdirSync(dirname(output), { recursive: true });
const temporary = `${output}.${process.pid}.${Date.now()}.tmp`;
const { error, stderr } = await asc.main([source, '--outFile', temporary, ...flags]);
if (error) {
  rmSync(temporary, { force: true });
  process.stderr.write(`build-wasm: ${error.message}\n${stderr.toString()}`);
  process.exit(1);
}
renameSync(temporary, output);
