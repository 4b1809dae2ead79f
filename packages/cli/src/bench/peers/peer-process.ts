import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PeerOptions, PeerResult, PeerSkipped } from './peer-common.ts';

/** Peers runnable in a child process (peer-main.ts), so the peak RSS they report is their own. */
export type PeerName = 'ort-mha';

/** Runs peer `name` in a fresh Node process and returns the JSON it prints on its last line. */
export function runPeer<O extends PeerOptions>(name: PeerName, opts: O): Promise<PeerResult | PeerSkipped> {
  const main = fileURLToPath(new URL('./peer-main.ts', import.meta.url));
  const args = ['--import', import.meta.resolve('tsx'), main, name, JSON.stringify(opts)];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`peer ${name} failed: ${stderr.trim().split('\n').slice(-3).join(' | ') || err.message}`));
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as PeerResult | PeerSkipped);
      } catch {
        reject(new Error(`peer ${name} printed no JSON: ${last.slice(0, 200)}`));
      }
    });
  });
}
