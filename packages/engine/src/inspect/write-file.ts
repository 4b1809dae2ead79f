import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';

/** Writes bytes to a temporary sibling and renames it into place: a reader never sees a torn file. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const temp = `${path}.pending-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(temp, bytes);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
