import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isSoftwareRenderer } from '../device.ts';
import type { GlContext } from './gl-addon.ts';
import { probeGl } from './gl-probe.ts';

/** What the `gl` addon's context really renders with. */
export interface GpuInfo {
  /** The native GL renderer under ANGLE, e.g. `Mesa/X.org llvmpipe (LLVM 15.0.6, 256 bits) OpenGL 4.5 core`. */
  renderer: string;
  /** e.g. `Mesa`, `NVIDIA`, `AMD`, `Intel` (parsed from the renderer string). */
  vendor: string;
  /** True for a rasteriser on the CPU (llvmpipe, softpipe, swrast, lavapipe): no GPU is used. */
  software: boolean;
}

const VENDORS: [RegExp, string][] = [
  [/nvidia/i, 'NVIDIA'],
  [/\bamd\b|radeon|\bati\b/i, 'AMD'],
  [/intel/i, 'Intel'],
  [/mesa|x\.org/i, 'Mesa'],
];
const UNMASKED_RENDERER_WEBGL = 0x9246;

/**
 * The native renderer string. The addon's JS layer answers RENDERER with a fixed `ANGLE` and
 * offers no WEBGL_debug_renderer_info, so ask its native base class (ANGLE's own answer:
 * `ANGLE (<vendor> <renderer> <GL version>)`).
 */
function rendererString(context: GlContext): string {
  const base = Object.getPrototypeOf(Object.getPrototypeOf(context)) as { getParameter?: (pname: number) => unknown } | null;
  const native = base?.getParameter?.call(context, context.RENDERER);
  if (typeof native === 'string' && native !== 'ANGLE') return native.replace(/^ANGLE \((.*)\)$/, '$1');
  const debug = context.getExtension('WEBGL_debug_renderer_info') !== null;
  return String(context.getParameter(debug ? UNMASKED_RENDERER_WEBGL : context.RENDERER) ?? '');
}

/** Vendor and software flag of a native renderer string. */
export function rendererInfo(renderer: string): GpuInfo {
  const vendor = VENDORS.find(([re]) => re.test(renderer))?.[1] ?? renderer.split(/\s/)[0] ?? '';
  return { renderer, vendor, software: isSoftwareRenderer(renderer) };
}

/** Renderer, vendor and software flag of a context open in this thread. */
export function glInfo(context: GlContext): GpuInfo {
  return rendererInfo(rendererString(context));
}

/**
 * The GPU the gpujs backend's `headlessgl` mode would run on, or null when no GL context opens
 * (no gl addon, no X display). Auto-selection picks gpujs only when this is non-null and not
 * `software`: Mesa's llvmpipe is a correctness path, not an accelerator. Asks a child process
 * (gl-probe.ts), so the calling thread never binds the addon.
 */
export async function detectGpu(): Promise<GpuInfo | null> {
  const probe = probeGl();
  return 'error' in probe ? null : rendererInfo(probe.renderer);
}

/** A short device name: `Mesa llvmpipe (GL, software)`, `NVIDIA H200 (GL)`. */
export function glDeviceName(info: GpuInfo): string {
  const name = info.renderer
    .replace(/\s+OpenGL\b.*$/, '') // the GL version ANGLE appends
    .replace(/^(Mesa\/X\.org|Mesa|X\.Org|NVIDIA Corporation|AMD|ATI Technologies Inc\.|Intel Open Source Technology Center|Intel)\s+/i, '')
    .replace(/\((R|TM)\)/gi, '')
    .replace(/\s*\([^()]*\)\s*$/, '') // llvmpipe (LLVM 15.0.6, 256 bits)
    .replace(/^Mesa\s+(?=\S)(?!.*pipe)/i, '') // Intel's `Mesa Intel UHD Graphics 620`
    .replace(/\/.*$/, '') // NVIDIA H200/PCIe/SSE2
    .trim();
  const full = name.toLowerCase().startsWith(info.vendor.toLowerCase()) ? name : `${info.vendor} ${name}`.trim();
  return `${full || 'unknown GL renderer'} (GL${info.software ? ', software' : ''})`;
}

/**
 * The GPU device nodes a Linux kernel driver exposes (NVIDIA's /dev/nvidia0…, DRM render nodes
 * /dev/dri/renderD128… of AMD, Intel and others, WSL2's /dev/dxg). None means no GPU a GL context
 * could use, so auto-selection can skip the GL probe (a child process, ~0.4 s) on CPU-only hosts.
 */
export function gpuDeviceNodes(dev = '/dev'): string[] {
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  return [
    ...list(dev)
      .filter((n) => /^nvidia\d+$/.test(n) || n === 'dxg')
      .map((n) => join(dev, n)),
    ...list(join(dev, 'dri'))
      .filter((n) => n.startsWith('renderD'))
      .map((n) => join(dev, 'dri', n)),
  ];
}
