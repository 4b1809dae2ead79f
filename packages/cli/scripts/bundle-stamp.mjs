// The CLI bundle's stamp (dist/bundle.json): every file the bundle was built from, with the mtime
// and size it had then, and the files the build wrote. Shared by the build (build-bundle.mjs) and
// the bin, which checks it on every start, so this module imports nothing heavy.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the bundle goes: packages/cli/dist/. */
export const DIST = fileURLToPath(new URL('../dist/', import.meta.url));

/**
 * @typedef {object} Stamp
 * @property {[string, number, number][]} inputs  [path relative to dist/ (the checkout may move), mtimeMs, size]
 * @property {string[]} outputs  file names in dist/
 */

/**
 * True when the bundle exists and every input still has the mtime and size recorded at build time
 * (an edit, a checkout, a deleted file: stale). ~150 stats, about a millisecond.
 */
export function bundleFresh(dist = DIST) {
  let stamp;
  try {
    stamp = /** @type {Stamp} */ (JSON.parse(readFileSync(resolve(dist, 'bundle.json'), 'utf8')));
  } catch {
    return false;
  }
  for (const [path, mtimeMs, size] of stamp.inputs) {
    const now = statSync(resolve(dist, path), { throwIfNoEntry: false });
    if (!now || now.mtimeMs !== mtimeMs || now.size !== size) return false;
  }
  return stamp.outputs.every((name) => statSync(resolve(dist, name), { throwIfNoEntry: false }) !== undefined);
}
