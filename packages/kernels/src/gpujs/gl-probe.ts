import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { noDisplayReason } from './gl-addon.ts';

/** What a throwaway process saw when it opened a `gl` context. */
export type GlProbe = { renderer: string; maxTexture: number; floatTextures: boolean } | { error: string };

/**
 * Opens a context in a child process and reports the native renderer (see detect.ts), the
 * largest texture side and OES_texture_float. Run elsewhere because the addon binds to the first
 * thread of a process that loads it: probing (and auto-selection's detectGpu) in the main thread
 * must not take GL away from the worker thread that will run the kernels.
 */
const CHILD = `
const create = require(process.argv[1]);
const ctx = create(1, 1, { preserveDrawingBuffer: true });
if (!ctx) { process.stdout.write(JSON.stringify({ noContext: true })); process.exit(0); }
const base = Object.getPrototypeOf(Object.getPrototypeOf(ctx));
const renderer = String(base.getParameter.call(ctx, ctx.RENDERER) || ctx.getParameter(ctx.RENDERER));
const maxTexture = Math.min(ctx.getParameter(ctx.MAX_TEXTURE_SIZE), ctx.getParameter(ctx.MAX_RENDERBUFFER_SIZE));
const floatTextures = ctx.getSupportedExtensions().includes('OES_texture_float');
const destroy = ctx.getExtension('STACKGL_destroy_context');
if (destroy) destroy.destroy();
process.stdout.write(JSON.stringify({ renderer, maxTexture, floatTextures }));
`;

const cache = new Map<string, GlProbe>();

/** The child's answer, cached per DISPLAY and GLX vendor (what decides which GL it reaches). */
export function probeGl(): GlProbe {
  const key = `${process.env.DISPLAY ?? ''}|${process.env.__GLX_VENDOR_LIBRARY_NAME ?? ''}`;
  let probe = cache.get(key);
  if (!probe) {
    probe = runChild();
    cache.set(key, probe);
  }
  return probe;
}

function runChild(): GlProbe {
  let path: string;
  try {
    path = createRequire(import.meta.url).resolve('gl');
  } catch {
    return {
      error:
        'the optional gl addon is not installed (it failed to build or was skipped): install its build deps with scripts/setup-system.sh and reinstall',
    };
  }
  const child = spawnSync(process.execPath, ['-e', CHILD, path], { encoding: 'utf8', timeout: 60_000 });
  const firstLine = (s: string | null) =>
    (s ?? '')
      .trim()
      .split('\n')
      .find((l) => l.trim()) ?? '';
  if (child.error) return { error: `could not run the GL probe process: ${child.error.message}` };
  if (child.status !== 0) {
    const detail = firstLine(child.stderr.split('\n').find((l) => /Error/.test(l)) ?? child.stderr);
    return {
      error: `the optional gl addon did not load or crashed (${detail || `exit ${child.status ?? child.signal}`}); install its build deps (scripts/setup-system.sh) and reinstall`,
    };
  }
  try {
    const answer = JSON.parse(child.stdout) as { noContext?: boolean; renderer?: string; maxTexture?: number; floatTextures?: boolean };
    if (answer.noContext) return { error: noDisplayReason() };
    return {
      renderer: (answer.renderer ?? '').replace(/^ANGLE \((.*)\)$/, '$1'),
      maxTexture: answer.maxTexture ?? 0,
      floatTextures: answer.floatTextures === true,
    };
  } catch {
    return { error: `the GL probe process answered "${firstLine(child.stdout)}"` };
  }
}
