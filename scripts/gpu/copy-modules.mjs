// Copies npm packages with their production dependencies (resolved the way Node resolves them,
// through pnpm's links) into DEST/node_modules/, leaving out sources, build intermediates and other
// platforms' binaries. Used by scripts/gpu/pack.sh for the native pieces the GPU check needs.
//   node scripts/gpu/copy-modules.mjs DEST FROM_DIR NAME…
import { cpSync, existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';

const [dest, from, ...names] = process.argv.slice(2);
/** Paths inside a package never needed at run time. */
const SKIP = [
  /^angle(\/|$)/,
  /^deps(\/|$)/,
  /^src\/(?!javascript)/,
  /^build\/(?!Release(\/webgl\.node)?$)/,
  /^dist\/(?!linux-x64)/,
  /^test(\/|$)/,
  /^docs?(\/|$)/,
  /\.(md|map|ts|cc|h|gyp)$/,
];
/** Dependencies that only build or fetch a binary (gl's node-gyp, prebuild-install, nan, node-abi). */
const BUILD_ONLY = new Set(['node-gyp', 'prebuild-install', 'nan', 'node-abi', '@webgpu/types']);
const done = new Set();

function packageDir(name, base) {
  const entry = createRequire(join(base, 'noop.js')).resolve(`${name}/package.json`);
  return realpathSync(dirname(entry));
}

function copy(name, base) {
  if (done.has(name) || BUILD_ONLY.has(name)) return;
  done.add(name);
  const dir = packageDir(name, base);
  cpSync(dir, join(dest, 'node_modules', name), {
    recursive: true,
    filter: (src) => {
      const rel = relative(dir, src).split(sep).join('/');
      return rel === '' || !SKIP.some((re) => re.test(rel));
    },
  });
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const dep of Object.keys(pkg.dependencies ?? {})) copy(dep, dir);
}

for (const name of names) copy(name, resolve(from));
if (!existsSync(join(dest, 'node_modules'))) process.exit(1);
