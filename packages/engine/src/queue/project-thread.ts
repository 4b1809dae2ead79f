import { setTimeout as sleep } from 'node:timers/promises';
import type { AttentionSpec } from '@longattn/attention';
import { bytesToF32, f32Bytes, type BlobStore } from '../blobs/blob-store.ts';
import { joinHeads, projectWith, splitHeads } from '../layer/projection.ts';
import { blobNames } from './blob-layout.ts';
import type { LayerBlock } from './layer-flow.ts';
import type { LayerManifest, LayerTensor } from './layer-manifest.ts';

/**
 * What a worker sends a kernel thread for a projection job of a layer (docs/flow.md, "Layers on
 * the queue"): the blocks left to do. The thread reads X (or O) rows and the weights from the
 * job's blobs and writes the projected rows into the blobs the next stage reads, so no tensor
 * crosses the thread boundary.
 */
export interface ProjectTask {
  kind: 'project';
  job: string;
  spec: AttentionSpec;
  layer: LayerManifest;
  /** Blob store location and the queue's Redis URL (see openBlobStore). */
  store: string;
  redis: string;
  blocks: { index: number; block: LayerBlock }[];
  /** Sleep this long before each block (fault tests: a cancel lands between blocks). */
  throttleMs: number;
}

/** This thread's weights of recent jobs (a few MB each), by store, job and tensor. */
const weights = new Map<string, Promise<Float32Array>>();

function weight(store: BlobStore, job: string, name: LayerTensor): Promise<Float32Array> {
  const key = `${store.location}|${job}|${name}`;
  let w = weights.get(key);
  if (!w) {
    if (weights.size >= 16) weights.clear(); // another job's weights
    w = store.getMany([blobNames.weight(job, name)]).then(([bytes]) => {
      if (!bytes) throw new Error(`job ${job}: weight ${name} is missing`);
      return Float32Array.from(bytesToF32(bytes));
    });
    w.catch(() => weights.delete(key));
    weights.set(key, w);
  }
  return w;
}

/** `count` float32 at element `at` of a blob, in memory of their own (GEMM sessions take no views of shared pools). */
async function readF32(store: BlobStore, name: string, at: number, count: number): Promise<Float32Array> {
  const out = new Float32Array(count);
  await store.readInto(name, at * 4, f32Bytes(out));
  return out;
}

/**
 * Runs a projection task's blocks with the local engine's projectWith, one GEMM call per
 * projection per block (the calls runLayer makes, so the bits are its bits):
 *   kv: Xkv rows → K (RoPE at positions r0 …) and V, written per kv head into in/k, in/v (bhsd);
 *   q:  X rows of one q-block → Q for all H heads (RoPE), written per head into in/q;
 *   o:  O rows gathered from out/o (one read per head) → Y = O·Woᵀ + bo (O itself without
 *       o_proj), written into out/y.
 */
export async function runProjectTask(task: ProjectTask, store: BlobStore): Promise<void> {
  const { job, spec, layer } = task;
  const { B, H, Hk, Sq: S, Sk: Skv, D } = spec;
  const has = (name: LayerTensor) => layer.optional.includes(name);
  const optional = (name: LayerTensor) => (has(name) ? weight(store, job, name) : Promise.resolve(undefined));
  const rope = (heads: number) => (layer.ropeTheta > 0 ? { heads, D, theta: layer.ropeTheta } : undefined);
  const writes: Promise<void>[] = [];
  const track = (write: Promise<void>) => {
    write.catch(() => {}); // surfaces at the end (Promise.all below)
    writes.push(write);
  };
  for (const { block } of task.blocks) {
    if (task.throttleMs > 0) await sleep(task.throttleMs);
    const { stage, b, r0, rows } = block;
    if (b >= B) throw new RangeError(`projection block of batch ${b}, the job has ${B}`);
    if (stage === 'kv') {
      const source = layer.cross ? blobNames.layerInput(job, 'xkv') : blobNames.layerInput(job, 'x');
      const x = await readF32(store, source, (b * Skv + r0) * layer.dKv, rows * layer.dKv);
      const k = await projectWith(
        layer.linear,
        x,
        rows,
        await weight(store, job, 'k_proj.weight'),
        await optional('k_proj.bias'),
        rope(Hk),
        r0,
      );
      const v = await projectWith(
        layer.linear,
        x,
        rows,
        await weight(store, job, 'v_proj.weight'),
        await optional('v_proj.bias'),
        undefined,
        r0,
      );
      for (const [which, y] of [
        ['k', k],
        ['v', v],
      ] as const)
        splitHeads(y, Hk, D, rows, (h, head) =>
          track(store.write(blobNames.input(job, which), ((b * Hk + h) * Skv + r0) * D * 4, f32Bytes(head))),
        );
    } else if (stage === 'q') {
      const x = await readF32(store, blobNames.layerInput(job, 'x'), (b * S + r0) * layer.dModel, rows * layer.dModel);
      const q = await projectWith(
        layer.linear,
        x,
        rows,
        await weight(store, job, 'q_proj.weight'),
        await optional('q_proj.bias'),
        rope(H),
        r0,
      );
      splitHeads(q, H, D, rows, (h, head) => track(store.write(blobNames.input(job, 'q'), ((b * H + h) * S + r0) * D * 4, f32Bytes(head))));
    } else {
      const heads = await Promise.all(
        Array.from({ length: H }, (_, h) => readF32(store, blobNames.out(job), ((b * H + h) * S + r0) * D, rows * D)),
      );
      const o = joinHeads(H, D, rows, (h) => heads[h]!);
      const y = has('o_proj.weight')
        ? await projectWith(layer.linear, o, rows, await weight(store, job, 'o_proj.weight'), await optional('o_proj.bias'), undefined, r0)
        : o;
      track(store.write(blobNames.layerOut(job), (b * S + r0) * layer.outDim * 4, f32Bytes(y)));
    }
  }
  await Promise.all(writes);
}
