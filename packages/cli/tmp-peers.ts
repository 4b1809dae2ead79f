import { runOrtMha } from './src/bench/peers/ort-mha.ts';
import { runOrtTiles } from './src/bench/peers/ort-tiles.ts';
import { runNumpy } from './src/bench/peers/numpy-peer.ts';
const [which, json] = process.argv.slice(2);
const o = JSON.parse(json!);
const f = { mha: runOrtMha, tiles: runOrtTiles, numpy: runNumpy }[which as 'mha'];
const r = await f(o);
const med = 'ms' in r ? [...r.ms].sort((a,b)=>a-b)[r.ms.length>>1] : undefined;
console.log(which, json, JSON.stringify({ ...r, ms: 'ms' in r ? r.ms.map((x) => +x.toFixed(1)) : undefined, med }));
