/**
 * Client CPU per S3 request and per MiB read, through S3BlobStore, against s3rver in its own
 * process (docs/scaling.md, "The S3 client's own CPU"). `--engine DIR,DIR…` compares checkouts
 * (their packages/engine), interleaved round by round, with raw `node:http` requests as the floor.
 *
 *   node --import tsx scripts/bench-s3-client.ts --engine /work/main,. --rounds 7
 *
 * Prints one JSON line per engine: median and min ms of client CPU per 64 KiB PUT (a part write)
 * and per 64 KiB ranged GET (a read of a sealed blob), ms per MiB of 8 MiB ranged GETs, and
 * s3rver's CPU per request.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { engine: { type: 'string', default: '.' }, rounds: { type: 'string', default: '7' } } });
const N = 200;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const support = new URL('../test/s3/support.ts', import.meta.url).href;
const code = `import { startS3 } from ${JSON.stringify(support)};
const s3 = await startS3(['bench']);
process.stdout.write(JSON.stringify(s3.env) + '\\n');
process.on('SIGTERM', async () => { await s3.close(); process.exit(0); });`;
const server = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
server.stdout!.on('data', (d: Buffer) => (out += d));
while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 50));
const env = JSON.parse(out) as Record<string, string>;
Object.assign(process.env, env);
const serverMs = () => {
  const f = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) / 100) * 1000;
};

interface Store {
  write(name: string, offset: number, data: Uint8Array): Promise<void>;
  seal(name: string, header: { size: number }): Promise<void>;
  readInto(name: string, offset: number, into: Uint8Array): Promise<void>;
  close(): Promise<void>;
}
type Ops = { put(i: number): Promise<void>; get(i: number): Promise<void>; big(): Promise<void>; close(): Promise<void> };

const part = new Uint8Array(64 << 10).map((_, i) => i * 7);
const into = new Uint8Array(8 << 20);

async function storeOps(dir: string, id: number): Promise<Ops> {
  const { S3BlobStore, parseS3Location } = (await import(pathToFileURL(resolve(dir, 'packages/engine/src/queue/index.ts')).href)) as {
    S3BlobStore: new (location: string, where: unknown) => Store;
    parseS3Location: (location: string, argument: string) => unknown;
  };
  const location = `s3://bench/e${id}`;
  const store = new S3BlobStore(location, parseS3Location(location, '--blobs'));
  for (let at = 0; at < 8 << 20; at += 1 << 20) await store.write('big', at, new Uint8Array(1 << 20));
  await store.seal('big', { size: 8 << 20 });
  return {
    put: (i) => store.write('out', i * part.byteLength, part),
    get: (i) => store.readInto('big', (i % 100) * part.byteLength, into.subarray(0, part.byteLength)),
    big: () => store.readInto('big', 0, into),
    close: () => store.close(),
  };
}

function rawOps(): Ops {
  const agent = new Agent({ keepAlive: true });
  const url = new URL(env.AWS_ENDPOINT_URL!);
  const send = (method: string, path: string, headers: Record<string, string>, body?: Uint8Array) =>
    new Promise<void>((done, fail) => {
      const r = request({ agent, host: url.hostname, port: url.port, method, path, headers }, (res) => {
        let at = 0;
        res.on('data', (chunk: Buffer) => {
          into.set(chunk, at);
          at += chunk.byteLength;
        });
        res.on('end', done);
      });
      r.on('error', fail);
      r.end(body);
    });
  // s3rver serves unsigned requests: the HTTP floor under any client.
  return {
    put: (i) => send('PUT', `/bench/raw/${i}`, { 'content-length': String(part.byteLength) }, part),
    get: (i) =>
      send('GET', '/bench/e0/big!w/0000000000000000', {
        range: `bytes=${(i % 100) * part.byteLength}-${((i % 100) + 1) * part.byteLength - 1}`,
      }),
    big: () => send('GET', '/bench/e0/big!w/0000000000000000', { range: `bytes=0-${(1 << 20) - 1}` }),
    close: async () => agent.destroy(),
  };
}

const engines = values.engine!.split(',');
const runs: [string, Ops][] = [];
for (const [i, dir] of engines.entries()) runs.push([dir, await storeOps(dir, i)]);
runs.push(['raw node:http', rawOps()]);
const samples = new Map<string, Record<'put' | 'get' | 'perMiB' | 'serverPerRequest', number[]>>();
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [name, ops] of runs) {
    const s = samples.get(name) ?? { put: [], get: [], perMiB: [], serverPerRequest: [] };
    samples.set(name, s);
    const s0 = serverMs();
    let t = cpuMs();
    for (let i = 0; i < N; i++) await ops.put(i);
    s.put.push((cpuMs() - t) / N);
    t = cpuMs();
    for (let i = 0; i < N; i++) await ops.get(i);
    s.get.push((cpuMs() - t) / N);
    s.serverPerRequest.push((serverMs() - s0) / (2 * N));
    t = cpuMs();
    for (let i = 0; i < 4; i++) await ops.big();
    s.perMiB.push((cpuMs() - t) / (name === 'raw node:http' ? 4 : 32));
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
for (const [name, s] of samples) {
  const row = Object.fromEntries(
    Object.entries(s).map(([k, a]) => [k, { median: +median(a).toFixed(2), min: +Math.min(...a).toFixed(2) }]),
  );
  console.log(JSON.stringify({ engine: name, ...row, rounds: Number(values.rounds) }));
}
for (const [, ops] of runs) await ops.close();
server.kill('SIGTERM');
