// Piscina worker entry of the queue worker's chunk threads (inspect jobs). In a process started from the CLI
// bundle (packages/cli/bin/longattn.mjs puts the bundle's URL in the threads' environment data),
// it runs the bundled chunk-thread.ts; otherwise it loads the TypeScript through tsx (no build step).
import { getEnvironmentData } from 'node:worker_threads';

const bundle = getEnvironmentData('longattn:bundle');
const thread = typeof bundle === 'string' ? await fromBundle(bundle) : await fromSource();
export default thread.default;

function fromBundle(url) {
  process.setSourceMapsEnabled(true); // stack traces name the .ts sources, as under tsx
  return import(new URL('chunk-thread.mjs', url).href);
}

async function fromSource() {
  const { register } = await import('tsx/esm/api');
  register();
  return import('./chunk-thread.ts');
}
