import { createRequire } from 'node:module';

/** The few WebGL calls longattn makes itself on a `gl` addon context (gpu.js makes the rest). */
export interface GlContext {
  readonly RENDERER: number;
  readonly VENDOR: number;
  readonly MAX_TEXTURE_SIZE: number;
  readonly MAX_RENDERBUFFER_SIZE: number;
  getParameter(name: number): unknown;
  getExtension(name: string): unknown;
}

type CreateContext = (width: number, height: number, options?: object) => GlContext | null;

let loaded: { create: CreateContext } | { error: string } | undefined;

/**
 * Loads the optional `gl` addon (headless WebGL 1 over ANGLE → the system's OpenGL).
 * Returns its context factory, or a one-line reason (not installed, failed to build, …).
 * The addon is not context-aware: only the first thread of a process that loads it can use it
 * (a second worker thread gets "Module did not self-register"), so one thread per process runs
 * headlessgl kernels.
 */
export function loadGl(): { create: CreateContext } | { error: string } {
  if (loaded) return loaded;
  try {
    const create = createRequire(import.meta.url)('gl') as unknown;
    loaded = typeof create === 'function' ? { create: create as CreateContext } : { error: 'the gl addon exports no context factory' };
  } catch (e) {
    const message = (e as Error).message.split('\n')[0] ?? '';
    loaded = {
      error: /did not self-register/.test(message)
        ? 'the gl addon loads in one thread per process only (it is not context-aware) and another thread has it: run gpujs:headlessgl in a single thread'
        : `the optional gl addon did not load (${message}); install its build deps (scripts/setup-system.sh) and reinstall`,
    };
  }
  return loaded;
}

/** Frees a context made by the addon (STACKGL_destroy_context); contexts are not garbage collected. */
export function destroyGl(context: GlContext): void {
  const ext = context.getExtension('STACKGL_destroy_context') as { destroy(): void } | null;
  ext?.destroy();
}

/**
 * Opens a 1×1 context, or explains why none opens. The addon returns null without a reason when
 * there is no X display (Xvfb or a real one) or no usable GLX.
 */
export function openGl(): { context: GlContext } | { error: string } {
  const gl = loadGl();
  if ('error' in gl) return gl;
  let context: GlContext | null = null;
  try {
    context = gl.create(1, 1, { preserveDrawingBuffer: true });
  } catch (e) {
    return { error: `gl could not create a context: ${(e as Error).message.split('\n')[0]}` };
  }
  if (!context) return { error: noDisplayReason() };
  return { context };
}

/** Why the addon returned no context: no X display, or none with usable GLX. */
export function noDisplayReason(): string {
  const display = process.env.DISPLAY;
  return display
    ? `gl could not open a GL context on DISPLAY=${display} (no usable GLX there)`
    : 'gl needs an X display and DISPLAY is not set: run under `xvfb-run -a` (or start Xvfb and export DISPLAY)';
}
