/**
 * Child-process entry of the peers: `node --import tsx peer-main.ts NAME 'JSON options'`.
 * Prints one JSON line: a PeerResult (with this process's peak RSS) or {skipped}.
 */
import { measureOrtMha } from './ort-mha.ts';
import type { PeerOptions } from './peer-common.ts';

const [name, json] = process.argv.slice(2);
const opts = JSON.parse(json ?? '{}') as PeerOptions;
const peers = { 'ort-mha': measureOrtMha } as const;
const peer = peers[name as keyof typeof peers];
if (!peer) throw new Error(`unknown peer "${name}"; known: ${Object.keys(peers).join(', ')}`);
console.log(JSON.stringify(await peer(opts)));
process.exit(0); // ORT's thread pool would otherwise keep the process alive
