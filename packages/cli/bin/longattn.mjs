#!/usr/bin/env node
// The `longattn` command. Starts from the bundle in ../dist (scripts/build-bundle.mjs, built at
// install) when it was built from the sources as they are now (bundle-stamp.mjs: ~1 ms); when a
// source changed, rebuilds it first (~0.5 s, once); when it cannot be built, or with
// LONGATTN_FROM_SOURCE=1, runs the TypeScript sources through tsx as before (~1 s more per
// process, ~0.25 s more per thread).
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setEnvironmentData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { bundleFresh, DIST } from '../scripts/bundle-stamp.mjs';

/** Rebuilds the bundle unless another process is at it (then this one runs the sources). */
async function rebuilt() {
  const lock = join(DIST, '.building');
  try {
    mkdirSync(DIST, { recursive: true });
    const since = statSync(lock, { throwIfNoEntry: false })?.mtimeMs;
    if (since !== undefined && Date.now() - since > 60_000) rmSync(lock, { recursive: true, force: true }); // left by a killed build
    mkdirSync(lock);
  } catch {
    return false;
  }
  try {
    const { buildBundle } = await import('../scripts/build-bundle.mjs');
    return (await buildBundle()).stamped;
  } catch (error) {
    if (process.env.LONGATTN_DEBUG)
      process.stderr.write(`longattn: could not bundle, running the sources: ${error instanceof Error ? error.message : error}\n`);
    return false;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

const fromSource = !['', '0', undefined].includes(process.env.LONGATTN_FROM_SOURCE);
if (!fromSource && (bundleFresh() || (await rebuilt()))) {
  setEnvironmentData('longattn:bundle', pathToFileURL(DIST).href); // thread entries load their bundles too
  process.setSourceMapsEnabled(true); // stack traces name the .ts sources, as under tsx
  await import(pathToFileURL(join(DIST, 'main.mjs')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
