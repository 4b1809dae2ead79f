import { Option, type Command } from 'commander';
import { InputError } from '@longattn/tensor';
import { parseInteger } from '../parse.ts';

interface ApiFlags {
  redis: string;
  port: number;
  host: string;
  blobs?: string;
  keysFile?: string;
  uploadCap?: number;
  logLevel: string;
}

const log = (line: string) => process.stderr.write(`longattn ${line}\n`);

/** `longattn api --redis URL --port P [--blobs …] [--keys-file F]`: the HTTP API (services/api) until SIGTERM. */
export function register(program: Command): void {
  program
    .command('api')
    .description('serve the HTTP API (jobs, SSE progress, results, dashboard, /metrics) over the Redis queue, until SIGTERM')
    .addOption(new Option('--redis <url>', 'Redis URL of the queue').env('LONGATTN_REDIS').makeOptionMandatory())
    .addOption(
      new Option('--port <n>', 'TCP port')
        .argParser(parseInteger('--port', 0, 65535))
        .env('LONGATTN_API_PORT')
        .default(8080),
    )
    .addOption(new Option('--host <addr>', 'address to listen on').env('LONGATTN_API_HOST').default('0.0.0.0'))
    .addOption(
      new Option(
        '--blobs <where>',
        'where uploaded jobs’ bytes live: redis (the queue’s) | fs:DIR (seen by every worker at the same path)',
      ).env('LONGATTN_BLOBS'),
    )
    .addOption(
      new Option('--keys-file <path>', 'API keys, tenant=key per line (else LONGATTN_API_KEYS="tenant=key,…")').env(
        'LONGATTN_API_KEYS_FILE',
      ),
    )
    .addHelpText('after', '\nEnvironment: LONGATTN_API_KEYS="tenant=key,…" (Bearer keys), LONGATTN_ADMIN_KEY (bull-board at /admin/queues)')
    .addOption(
      new Option('--upload-cap <bytes>', 'largest upload, all parts together (413 past it)').argParser(parseInteger('--upload-cap', 1)),
    )
    .addOption(
      new Option('--log-level <level>', 'request log level on stderr: info | warn | error | silent')
        .env('LONGATTN_LOG_LEVEL')
        .default('info'),
    )
    .action(async (flags: ApiFlags) => {
      const { ApiKeys, startApi } = await import('@longattn/engine/api'); // fastify loads only for this command
      const { closeOnSignals, openBlobStore } = await import('@longattn/engine/queue');
      const keys = flags.keysFile
        ? ApiKeys.fromFile(flags.keysFile)
        : ApiKeys.parse(process.env.LONGATTN_API_KEYS ?? '', 'LONGATTN_API_KEYS');
      if (keys.size === 0) throw new InputError('--keys-file', 'no API keys: set LONGATTN_API_KEYS="tenant=key,…" or pass --keys-file');
      if (flags.blobs) await openBlobStore(flags.blobs, flags.redis).close(); // a bad --blobs fails here, exit 2
      const adminKey = process.env.LONGATTN_ADMIN_KEY;
      const service = await startApi({
        redis: flags.redis,
        port: flags.port,
        host: flags.host,
        keys,
        ...(adminKey ? { adminKey } : {}),
        ...(flags.blobs ? { blobs: flags.blobs } : {}),
        ...(flags.uploadCap ? { uploadCapBytes: flags.uploadCap } : {}),
        logLevel: flags.logLevel,
      });
      log(`${service.id}: ${service.description}`);
      await closeOnSignals(service, log);
    });
}
