import { InputError } from '@longattn/attention';
import { isSoftwareRenderer } from './device.ts';
import { getBackend, listBackends, parseBackendName } from './registry.ts';
import type { Backend, KernelOptions } from './tile.ts';

/** Auto-selection order after accelerated backends on real hardware (docs/flow.md, backends). */
export const CPU_PREFERENCE = ['ort', 'wasm', 'js'] as const;

/**
 * Accelerated backends in auto's order: compute shaders (webgpu) before gpu.js's fragment shaders
 * (one test's arithmetic ran ~30× slower in fragment than in compute shaders on the lent H200s).
 */
export const ACCELERATED_PREFERENCE = ['webgpu', 'gpujs'] as const;

export interface Selection {
  backend: Backend;
  /** The name as the CLI spells it, with its mode: `ort`, `gpujs:headlessgl`. */
  name: string;
  options: KernelOptions;
  /** What will run the tiles, e.g. `cpu (portable JS)`, `NVIDIA H200 (GL)`. */
  device: string;
  /** Why each preferred backend before it was passed over (auto only). */
  skipped: string[];
}

/**
 * Resolves `auto` or `name[:mode]` to a usable backend.
 * auto = an accelerated backend only when it reports real GPU hardware, else ort, wasm, js —
 * the first whose probe succeeds. An explicit name that cannot run here is an error, never a
 * silent substitute.
 */
export async function selectBackend(requested: string, options: KernelOptions = {}): Promise<Selection> {
  if (requested !== 'auto') {
    const { name, mode } = parseBackendName(requested);
    const backend = getBackend(name);
    const opts = mode ? { ...options, mode } : options;
    const reason = await backend.probe(opts);
    if (reason) throw new InputError('--backend', `${requested} cannot run here: ${reason}`);
    return { backend, name: requested, options: opts, device: await describe(backend, opts), skipped: [] };
  }
  const skipped: string[] = [];
  const rank = (name: string) => {
    const i = (ACCELERATED_PREFERENCE as readonly string[]).indexOf(name);
    return i < 0 ? ACCELERATED_PREFERENCE.length : i;
  };
  for (const backend of listBackends()
    .filter((b) => b.accelerated)
    .sort((a, b) => rank(a.name) - rank(b.name))) {
    const hardware = await backend.probeHardware?.();
    if (!hardware) {
      skipped.push(`${backend.name}: no GPU hardware`);
      continue;
    }
    const reason = await backend.probe(hardware.options);
    if (!reason) {
      const name = hardware.options.mode ? `${backend.name}:${hardware.options.mode}` : backend.name;
      return { backend, name, options: { ...options, ...hardware.options }, device: hardware.device, skipped };
    }
    skipped.push(`${backend.name}: ${reason}`);
  }
  for (const name of CPU_PREFERENCE) {
    const backend = listBackends().find((b) => b.name === name);
    if (!backend) continue;
    const reason = await backend.probe(options);
    if (!reason) return { backend, name, options, device: await describe(backend, options), skipped };
    skipped.push(`${name}: ${reason}`);
  }
  throw new Error(`no backend can run here: ${skipped.join('; ')}`);
}

async function describe(backend: Backend, options: KernelOptions): Promise<string> {
  return backend.describe ? backend.describe(options) : backend.summary;
}

/**
 * True when an accelerated backend (gpujs, webgpu) would run on a software renderer (llvmpipe,
 * lavapipe, SwiftShader) or on the CPU (gpujs:webasm / cpu): no GPU does the work.
 */
export function onSoftware(selection: Pick<Selection, 'backend' | 'device'>): boolean {
  return selection.backend.accelerated === true && (isSoftwareRenderer(selection.device) || /^cpu\b/.test(selection.device));
}

/** A GPU worker refuses a software device unless told `--allow-software` (InputError, exit 2). */
export function refuseSoftware(selection: Selection, allowSoftware: boolean): void {
  if (allowSoftware || !onSoftware(selection)) return;
  throw new InputError(
    '--backend',
    `${selection.name} reaches only ${selection.device} here, no GPU; pass --allow-software to run on it anyway`,
  );
}
