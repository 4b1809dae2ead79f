// Bundles the `longattn` command and the worker-thread entries it starts into packages/cli/dist/
// (git-ignored) with esbuild, so a process starts from plain JavaScript instead of compiling
// TypeScript through tsx's loader hooks in every thread. Run by `pnpm install` (this package's
// `prepare`, with --if-available) and by bin/longattn.mjs when the bundle is missing or stale.
//
// The bundle behaves as the sources do:
// - @longattn/* packages are bundled in; every other package stays an import that Node resolves
//   from packages/cli/dist, i.e. from packages/cli: so packages/cli declares each one with the
//   version the importing package declares (checked here; a mismatch fails the build).
// - `import.meta.url` in a bundled module is its source file's URL (written relative to the
//   bundle, so the checkout may move): the .wasm, scripts and peers it locates, and
//   createRequire(import.meta.url), resolve as they do from the sources. `import.meta.resolve`
//   is allowed for bare specifiers only (resolved from packages/cli, checked like imports).
// - Thread entries: local-engine.ts and queue/worker.ts hand piscina the wrappers next to them
//   (tile-worker.mjs, tile-thread.mjs), which import dist/<name>.mjs when the bin says the
//   process runs the bundle (worker_threads environment data), else the .ts through tsx.
// - Files are written through temporary names and renames, the stamp (bundle-stamp.mjs) last:
//   concurrent builds and running processes never see a torn bundle.
//
//   node packages/cli/scripts/build-bundle.mjs [--if-available]
//     --if-available  exit 0 with a warning when esbuild is not installed (the bin then runs tsx)
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DIST } from './bundle-stamp.mjs';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'packages', 'cli');

/** Output name → source. Thread entries are named after the wrappers that load them. */
const ENTRIES = {
  main: 'packages/cli/src/main.ts',
  'tile-worker': 'packages/engine/src/local/tile-worker.ts',
  'tile-thread': 'packages/engine/src/queue/tile-thread.ts',
  'chunk-thread': 'packages/engine/src/queue/chunk-thread.ts',
  'inspect-worker': 'packages/engine/src/inspect/inspect-worker.ts',
};

/** Files outside the module graph that change what a build produces. */
const BUILD_INPUTS = ['tsconfig.json', 'packages/cli/scripts/build-bundle.mjs', 'packages/cli/scripts/bundle-stamp.mjs'];

/** Leftovers of earlier builds (chunks a running process may still import) live this long. */
const KEEP_OLD_MS = 3600_000;

/** The package a bare specifier names: `bullmq`, `@scope/pkg`, `tsx` for `tsx/esm/api`. */
function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The directory of the package.json nearest above a file. */
function packageDir(file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (statSync(join(dir, 'package.json'), { throwIfNoEntry: false })) return dir;
  }
  throw new Error(`no package.json above ${file}`);
}

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
const declared = (pkg, name) =>
  pkg.dependencies?.[name] ?? pkg.optionalDependencies?.[name] ?? pkg.devDependencies?.[name] ?? pkg.peerDependencies?.[name];

/** A path relative to dist/ as a URL path (segments escaped), for `new URL(rel, bundleUrl)`. */
function urlFromDist(file) {
  return relative(DIST, file).split(sep).map(encodeURIComponent).join('/');
}

/**
 * Workspace modules get `import.meta.url` = their source URL; every bare specifier outside the
 * workspace stays external and is recorded (with the importing file) for the declaration check.
 */
function workspacePlugin(externals) {
  return {
    name: 'longattn-workspace',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith('@longattn/') || isBuiltin(args.path)) return undefined;
        externals.push({ name: packageName(args.path), importer: args.importer });
        return { path: args.path, external: true };
      });
      build.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
        const loader = /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js';
        const text = await readFile(args.path, 'utf8');
        if (!text.includes('import.meta')) return { contents: text, loader };
        const where = relative(ROOT, args.path);
        if (/import\.meta\.(filename|dirname)\b/.test(text)) {
          throw new Error(`${where}: import.meta.filename/dirname are not rewritten in the bundle; use fileURLToPath(import.meta.url)`);
        }
        const resolves = [...text.matchAll(/import\.meta\.resolve\b(\(\s*(['"])([^'"]*)\2\s*\))?/g)];
        for (const [, call, , specifier] of resolves) {
          if (!call || /^[./]/.test(specifier)) {
            throw new Error(
              `${where}: import.meta.resolve takes a bare package name in the bundle (it resolves from packages/cli/dist); locate files with new URL(path, import.meta.url)`,
            );
          }
          externals.push({ name: packageName(specifier), importer: args.path });
        }
        // One line, so only line 1's columns shift in the source map. `define` maps every
        // import.meta.url of the module onto this constant; the banner gives the bundle's own URL.
        const prefix = `const __sourceUrl = new URL(${JSON.stringify(urlFromDist(args.path))}, __longattnBundleUrl).href; `;
        return { contents: prefix + text, loader };
      });
    },
  };
}

/** Fails when packages/cli does not declare an external with the importing package's version. */
function checkExternals(externals) {
  const cli = readJson(join(CLI, 'package.json'));
  const problems = new Set();
  for (const { name, importer } of externals) {
    const dir = packageDir(importer);
    const own = declared(readJson(join(dir, 'package.json')), name);
    const ours = cli.dependencies?.[name] ?? cli.optionalDependencies?.[name];
    const who = relative(ROOT, dir) || '.';
    if (own === undefined) problems.add(`${relative(ROOT, importer)} imports "${name}", which ${who}/package.json does not declare`);
    else if (ours !== own) {
      problems.add(
        `${who} imports "${name}" (${own}): the bundle resolves it from packages/cli, so add "${name}": "${own}" to packages/cli/package.json dependencies${ours ? ` (it has ${ours})` : ''}`,
      );
    }
  }
  if (problems.size) throw new Error([...problems].join('\n'));
}

/** Writes through a temporary name and a rename. */
function writeAtomic(path, contents) {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
}

/**
 * Builds the bundle and its stamp. Throws with a readable message on a failed build or a
 * dependency packages/cli does not declare.
 * @param {{ esbuild?: typeof import('esbuild') }} [options]
 */
export async function buildBundle({ esbuild } = {}) {
  esbuild ??= await import('esbuild');
  const started = Date.now();
  const externals = [];
  let result;
  try {
    result = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: Object.entries(ENTRIES).map(([out, source]) => ({ in: source, out })),
      bundle: true,
      splitting: true, // lazy import()s stay lazy (bullmq loads only for the queue commands)
      format: 'esm',
      platform: 'node',
      target: 'node20.19', // package.json engines
      keepNames: true, // as tsx does: function and class names survive
      sourcemap: 'linked',
      sourcesContent: false,
      outdir: DIST,
      entryNames: '[name]',
      chunkNames: 'chunk-[hash]',
      outExtension: { '.js': '.mjs' },
      banner: { js: 'const __longattnBundleUrl = import.meta.url;' },
      define: { 'import.meta.url': '__sourceUrl' },
      plugins: [workspacePlugin(externals)],
      metafile: true,
      write: false,
      logLevel: 'silent',
    });
  } finally {
    await esbuild.stop(); // its service process would otherwise live as long as this one
  }
  checkExternals(externals);

  // Record what the build read; a file that changed meanwhile leaves no stamp (stale: rebuilt next time).
  const sources = Object.keys(result.metafile.inputs).map((p) => resolve(ROOT, p));
  const packages = new Set(sources.map(packageDir));
  const inputs = [...sources, ...[...packages].map((d) => join(d, 'package.json')), ...BUILD_INPUTS.map((p) => join(ROOT, p))].map(
    (file) => {
      const { mtimeMs, size } = statSync(file);
      return [relative(DIST, file), mtimeMs, size];
    },
  );
  const changed = inputs.some(([, mtimeMs]) => mtimeMs >= started);

  mkdirSync(DIST, { recursive: true });
  const entries = new Set(Object.keys(ENTRIES).map((name) => `${name}.mjs`));
  const files = result.outputFiles.map((f) => ({ name: relative(DIST, f.path), contents: f.contents }));
  // Chunks before the entries that import them, the stamp last.
  files.sort((a, b) => Number(entries.has(a.name)) - Number(entries.has(b.name)));
  for (const { name, contents } of files) writeAtomic(join(DIST, name), contents);
  const stamp = join(DIST, 'bundle.json');
  if (changed) rmSync(stamp, { force: true });
  else writeAtomic(stamp, `${JSON.stringify({ inputs, outputs: files.map((f) => f.name) })}\n`);

  const keep = new Set([...files.map((f) => f.name), 'bundle.json']);
  for (const name of readdirSync(DIST)) {
    const path = join(DIST, name);
    if (!keep.has(name) && (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? Infinity) < started - KEEP_OLD_MS)
      rmSync(path, { force: true, recursive: true });
  }
  return { files: files.length, bytes: files.reduce((n, f) => n + f.contents.length, 0), ms: Date.now() - started, stamped: !changed };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const esbuild = await import('esbuild').catch(() => undefined);
  if (!esbuild) {
    const message = 'build-bundle: esbuild is not installed (a dependency of @longattn/cli); cannot bundle the CLI';
    process.stderr.write(
      process.argv.includes('--if-available') ? `${message}; skipped (longattn runs the sources through tsx)\n` : `${message}\n`,
    );
    process.exit(process.argv.includes('--if-available') ? 0 : 1);
  }
  try {
    await buildBundle({ esbuild });
  } catch (error) {
    const errors = /** @type {{ errors?: { text: string, location?: { file: string, line: number } }[] }} */ (error).errors;
    const lines = errors?.length
      ? errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}: ${e.text}` : e.text))
      : [/** @type {Error} */ (error).message];
    process.stderr.write(`build-bundle: ${lines.join('\nbuild-bundle: ')}\n`);
    process.exit(1);
  }
}
