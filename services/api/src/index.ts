/**
 * @longattn/api: the HTTP API service, a thin entry over `longattn api` (the engine's startApi
 * behind the CLI's option parsing: one parser, not two).
 *   node --import tsx services/api/src/index.ts --redis redis://host:6379 --port 8080 [--blobs …] [--keys-file F]
 * Keys from LONGATTN_API_KEYS="tenant=key,…" or --keys-file; LONGATTN_ADMIN_KEY opens /admin/queues.
 * Exit codes: 0 after SIGTERM/SIGINT, 2 bad options or Redis unreachable, 1 other errors.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';

const BIN = fileURLToPath(new URL('../../../packages/cli/bin/longattn.mjs', import.meta.url));

/** Runs `longattn api ARGV` in this process (the bin parses process.argv). */
export async function main(argv: string[]): Promise<void> {
  process.argv = [process.argv[0]!, BIN, 'api', ...argv];
  await import(pathToFileURL(BIN).href);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main(process.argv.slice(2));
