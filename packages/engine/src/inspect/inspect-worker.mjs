// Piscina worker entry. In a process started from the CLI bundle (packages/cli/bin/longattn.mjs
// puts the bundle's URL in the threads' environment data), it runs the bundled
// inspect-worker.ts; otherwise it loads the TypeScript through tsx (no build step). Worker threads inherit
// --import=tsx when the parent has it; registering again is harmless.
import { getEnvironmentData } from 'node:worker_threads';

const bundle = getEnvironmentData('longattn:bundle');
const worker = typeof bundle === 'string' ? await fromBundle(bundle) : await fromSource();
export default worker.default;

function fromBundle(url) {
  process.setSourceMapsEnabled(true); // stack traces name the .ts sources, as under tsx
  return import(new URL('inspect-worker.mjs', url).href);
}

async function fromSource() {
  const { register } = await import('tsx/esm/api');
  register();
  return import('./inspect-worker.ts');
}
