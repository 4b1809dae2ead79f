import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './cli.ts';

/** What a package needs to build and run: no node_modules, dist, tests or scratch folders. */
const PACKAGE_PARTS = ['package.json', 'src', 'bin', 'scripts', 'assembly'];

/**
 * A copy of the workspace's packages and services in a temp dir, timestamps kept (so the compiled
 * .wasm stays fresh), with node_modules that link @longattn/* to the copy's packages and every
 * other package to this checkout's installed one: the copy builds and runs like the checkout, and
 * edits there leave this tree alone. `omit` leaves packages out of every node_modules (e.g. tsx).
 */
export function copyWorkspace(options: { omit?: string[] } = {}): string {
  const root = tempDir('longattn-workspace-');
  const omit = new Set(options.omit ?? []);
  cpSync(join(ROOT, 'package.json'), join(root, 'package.json'), { preserveTimestamps: true });
  cpSync(join(ROOT, 'tsconfig.json'), join(root, 'tsconfig.json'), { preserveTimestamps: true });
  const dirs = ['packages', 'services'].flatMap((group) => readdirSync(join(ROOT, group)).map((name) => join(group, name)));
  const ours = new Map<string, string>();
  for (const dir of dirs) {
    ours.set((JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as { name: string }).name, join(root, dir));
    for (const part of PACKAGE_PARTS) {
      try {
        cpSync(join(ROOT, dir, part), join(root, dir, part), { recursive: true, preserveTimestamps: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }
  for (const dir of ['', ...dirs]) {
    const from = join(ROOT, dir, 'node_modules');
    if (!existsSync(from)) continue; // a package without dependencies
    const names = readdirSync(from)
      .filter((n) => !n.startsWith('.'))
      .flatMap((n) => (n.startsWith('@') ? readdirSync(join(from, n)).map((m) => `${n}/${m}`) : [n]));
    for (const name of names.filter((n) => !omit.has(n))) {
      const link = join(root, dir, 'node_modules', name);
      mkdirSync(join(link, '..'), { recursive: true });
      symlinkSync(ours.get(name) ?? realpathSync(join(from, name)), link);
    }
  }
  return root;
}
