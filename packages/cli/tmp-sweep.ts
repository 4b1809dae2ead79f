import { runOrtMha } from './src/bench/peers/ort-mha.ts';
import { runOrtTiles } from './src/bench/peers/ort-tiles.ts';
import { runNumpy } from './src/bench/peers/numpy-peer.ts';
import { median } from './src/bench/peers/peer-common.ts';
const n = Number(process.argv[2]);
const rounds = Number(process.argv[3] ?? 3);
const which = (process.argv[4] ?? 'tiles,mha').split(',');
const causal = process.argv[5] === 'causal';
const base = { Sq: n, Sk: n, H: 1, D: 64, threads: 2, reps: 3, causal };
type Cfg = [string, () => Promise<{ ms: number[]; peakRssMB: number } | { skipped: string }>];
const cfgs: Cfg[] = [];
if (which.includes('mha')) cfgs.push(['mha fused', () => runOrtMha(base)]);
if (which.includes('numpy')) cfgs.push(['numpy', () => runNumpy(base)]);
for (const [bq, bk] of (process.argv[6] ?? '256x1024,256x2048,256x4096,512x2048,512x4096').split(',').map((s) => s.split('x').map(Number))) {
  if (which.includes('tiles')) cfgs.push([`tiles ${bq}x${bk} 2w×1t`, () => runOrtTiles({ ...base, workers: 2, blockQ: bq!, blockK: bk! })]);
  if (which.includes('tiles1')) cfgs.push([`tiles ${bq}x${bk} 1w×2t`, () => runOrtTiles({ ...base, workers: 1, blockQ: bq!, blockK: bk! })]);
}
const ms = new Map<string, number[]>(); const rss = new Map<string, number>();
for (let r = 0; r < rounds; r++) for (const [name, f] of cfgs) {
  const res = await f();
  if ('skipped' in res) { console.log(name, res.skipped); continue; }
  ms.set(name, [...(ms.get(name) ?? []), ...res.ms]); rss.set(name, Math.max(rss.get(name) ?? 0, res.peakRssMB));
}
const flops = 4 * n * n * 64;
for (const [name, t] of ms) console.log(`n=${n}${causal ? ' causal' : ''} ${name.padEnd(22)} median ${(flops / median(t) / 1e6).toFixed(0)} GF/s  best ${(flops / Math.min(...t) / 1e6).toFixed(0)}  (${t.length} runs, median ${median(t).toFixed(0)} ms, peak RSS ${rss.get(name)!.toFixed(0)} MB)`);
