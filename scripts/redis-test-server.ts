/**
 * A real `redis-server` for tests: its own free port and temp dir, optional AOF, and the faults
 * tests need (stop, SIGKILL, restart on the same port and data).
 *
 *   const redis = await startRedis({ aof: true });
 *   … redis.url …
 *   await redis.restart();   // graceful stop (AOF flushed), start again on the same port and dir
 *   await redis.close();     // stop and delete the temp dir
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServerOptions {
  /** appendonly yes (fsync every write, so a SIGKILL loses nothing either). Default false. */
  aof?: boolean;
  /** Milliseconds to wait for the server to answer PING. Default 10000. */
  readyTimeoutMs?: number;
}

export interface RedisTestServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** SIGTERM and wait for exit (Redis flushes AOF on a graceful stop). */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Start again on the same port and dir (after stop/kill, or stops first). */
  restart(): Promise<void>;
  /** Stop and remove the temp dir. */
  close(): Promise<void>;
}

/** A port nothing listens on right now (the OS's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when something on the port answers PING with +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startRedis(options: RedisServerOptions = {}): Promise<RedisTestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'longattn-redis-'));
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  let port = 0;
  let child: ChildProcess | undefined;
  let log = '';

  const launch = async (): Promise<boolean> => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--daemonize',
      'no',
      '--maxmemory-policy',
      'noeviction',
      '--protected-mode',
      'no',
      '--loglevel',
      'warning',
      '--appendonly',
      options.aof ? 'yes' : 'no',
      '--appendfsync',
      'always',
    ];
    log = '';
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (c: Buffer) => (log += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (log += c.toString()));
    child = proc;
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) return false;
      if (await ping(port)) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    proc.kill('SIGKILL');
    await exited(proc);
    throw new Error(`redis-server on port ${port} did not answer PING within ${readyTimeoutMs} ms: ${log.trim()}`);
  };

  // The free port can be taken between the check and the bind: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    if (await launch()) break;
    if (attempt === 4) throw new Error(`redis-server failed to start: ${log.trim()}`);
  }

  const halt = async (signal: NodeJS.Signals) => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    await exited(proc);
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    async restart() {
      await halt('SIGTERM');
      if (!(await launch())) throw new Error(`redis-server failed to restart on port ${port}: ${log.trim()}`);
    },
    async close() {
      await halt('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
