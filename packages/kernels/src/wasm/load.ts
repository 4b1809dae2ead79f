import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { webAssembly, type WasmModule } from './api.ts';

/** The compiled tile (git-ignored) and what it is built from. */
const wasmPath = fileURLToPath(new URL('./build/tile.wasm', import.meta.url));
const sources = ['../../assembly/tile.ts', '../../scripts/build-wasm.mjs'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
const buildScript = sources[1]!;

/** A tiny module using i8x16.popcnt: validates only where WebAssembly SIMD is supported. */
const simdProbe = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function simdSupported(): boolean {
  return webAssembly?.validate(simdProbe) ?? false;
}

let loading: Promise<WasmModule> | undefined;

/**
 * The compiled tile module, once per thread. Builds it first (node scripts/build-wasm.mjs) when
 * the .wasm is missing or older than its sources, e.g. on a clone whose install skipped `prepare`.
 */
export function loadTileModule(): Promise<WasmModule> {
  loading ??= (async () => {
    if (await stale()) {
      await promisify(execFile)(process.execPath, [buildScript]).catch((error: Error & { stderr?: string }) => {
        const detail = error.stderr?.trim() || error.message;
        throw new Error(`building it failed: ${detail.split('\n')[0]}`);
      });
    }
    if (!webAssembly) throw new Error('this runtime has no WebAssembly');
    return webAssembly.compile(await readFile(wasmPath));
  })();
  loading.catch(() => (loading = undefined)); // a failed build may be retried
  return loading;
}

/** True when the .wasm is missing or older than assembly/tile.ts or the build script. */
export async function stale(): Promise<boolean> {
  const built = await stat(wasmPath).catch(() => undefined);
  if (!built) return true;
  for (const source of sources) {
    if ((await stat(source)).mtimeMs > built.mtimeMs) return true;
  }
  return false;
}
