/// <reference types="@webgpu/types" />
import type { TilePartial } from '@longattn/attention';
import { jsTile } from '../js/js-kernel.ts';
import { hasNonFinite } from '../nonfinite.ts';
import { rowKeyRange, type TileJob, type TileKernel } from '../tile.ts';
import type { DawnAdapter } from './dawn.ts';
import { attendShader, combineShader, PARAM_BYTES, UNBOUNDED_LEFT, UNBOUNDED_RIGHT, type ShaderSizes } from './shader.ts';

/** Rows per workgroup (one thread each). */
const WG = 64;
/** Keys staged per block, at most (fewer when 2·BK·D floats outgrow the workgroup memory). */
const MAX_BK = 32;
/** Workgroups a tile aims for (rowGroups × splits): enough to fill a large GPU (132 SMs on an H200). */
const TARGET_WORKGROUPS = 2048;
/** A split covers at least this many key blocks, so its staging and rescales pay off. */
const MIN_BLOCKS_PER_SPLIT = 4;
/** Head dims above this would spill q and o out of registers; refused (other backends take any D). */
export const MAX_D = 256;

interface Pipelines {
  sizes: ShaderSizes;
  attend: GPUComputePipeline;
  combine: GPUComputePipeline;
}

/**
 * The `webgpu` tile kernel: the WGSL of shader.ts on a Dawn device. One tile = two dispatches and
 * one readback; runs are serialised (one queue). Same bits for the same tile on the same device.
 */
export class WebGpuTileKernel implements TileKernel {
  readonly backend: string;
  readonly device: string;
  private readonly pipelines = new Map<number, Pipelines>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly gpu: GPUDevice,
    adapter: DawnAdapter,
  ) {
    this.backend = `webgpu:${adapter.mode}`;
    this.device = adapter.device;
  }

  static async open(adapter: DawnAdapter): Promise<WebGpuTileKernel> {
    const lim = adapter.adapter.limits;
    const device = await adapter.adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
        maxBufferSize: lim.maxBufferSize,
        maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: lim.maxComputeWorkgroupsPerDimension,
      },
    });
    return new WebGpuTileKernel(device, adapter);
  }

  run(job: TileJob): Promise<TilePartial> {
    // The shader derives each row's keys from the tile's rule, so a sparse pattern's partial tile
    // (an explicit mask) runs on jsTile, as do NaN/±∞ inputs (--allow-nonfinite): shaders promise
    // nothing about NaN, and a masked key's 0·±∞ must not reach a row (docs/nonfinite.md).
    const onJs = job.visible !== undefined || hasNonFinite(job.q) || hasNonFinite(job.k) || hasNonFinite(job.v);
    const result = this.queue.then(() => (onJs ? jsTile(job) : this.runTile(job)));
    this.queue = result.catch(() => undefined);
    return result;
  }

  dispose(): void {
    this.pipelines.clear();
    this.gpu.destroy();
  }

  private pipelinesFor(D: number): Pipelines {
    let p = this.pipelines.get(D);
    if (!p) {
      const BK = Math.max(1, Math.min(MAX_BK, Math.floor(this.gpu.limits.maxComputeWorkgroupStorageSize / (8 * D))));
      const sizes = { D, BK, WG };
      const make = (code: string, entryPoint: string) =>
        this.gpu.createComputePipeline({ layout: 'auto', compute: { module: this.gpu.createShaderModule({ code }), entryPoint } });
      p = { sizes, attend: make(attendShader(sizes), 'attend'), combine: make(combineShader(sizes), 'combine') };
      this.pipelines.set(D, p);
    }
    return p;
  }

  private async runTile(job: TileJob): Promise<TilePartial> {
    const { rows, keys } = job;
    if (job.D > MAX_D) throw new Error(`${this.backend}: head dim ${job.D} is above ${MAX_D}, the most this kernel keeps in registers`);
    const gpu = this.gpu;
    const D = Math.ceil(job.D / 4) * 4; // vec4 lanes; the padding columns are zeros in q, k, v and dropped from o
    gpu.pushErrorScope('validation');
    gpu.pushErrorScope('out-of-memory');
    const { sizes, attend, combine } = this.pipelinesFor(D);
    const rowGroups = Math.ceil(rows / WG);
    const maxPart = Math.floor(gpu.limits.maxStorageBufferBindingSize / (rows * (D + 2) * 4));
    const blocks = Math.ceil(keys / sizes.BK);
    const want = Math.ceil(TARGET_WORKGROUPS / rowGroups);
    const splits0 = Math.max(1, Math.min(want, Math.floor(blocks / MIN_BLOCKS_PER_SPLIT), maxPart));
    const splitKeys = Math.ceil(blocks / splits0) * sizes.BK;
    const splits = Math.ceil(keys / splitKeys);

    const params = new ArrayBuffer(PARAM_BYTES);
    const u = new Uint32Array(params);
    const i = new Int32Array(params);
    const f = new Float32Array(params);
    const { diag, left, right } = job.rule;
    const full = job.full;
    u[0] = rows;
    u[1] = keys;
    i[2] = job.qStart;
    i[3] = job.kStart;
    i[4] = diag;
    i[5] = full || left === Infinity ? 0 : left;
    i[6] = full || right === Infinity ? 0 : right;
    u[7] = (full || left === Infinity ? UNBOUNDED_LEFT : 0) | (full || right === Infinity ? UNBOUNDED_RIGHT : 0);
    f[8] = job.scale;
    u[9] = splitKeys;
    u[10] = splits;

    const S = GPUBufferUsage.STORAGE;
    const buffer = (size: number, usage: number) => gpu.createBuffer({ size: Math.max(16, size), usage });
    const bParams = buffer(PARAM_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const bQ = buffer(rows * D * 4, S | GPUBufferUsage.COPY_DST);
    const bKV = buffer(2 * keys * D * 4, S | GPUBufferUsage.COPY_DST);
    const bPart = buffer(splits * rows * (D + 2) * 4, S);
    const outBytes = (rows * D + rows) * 4;
    const bOut = buffer(outBytes, S | GPUBufferUsage.COPY_SRC);
    const bRead = buffer(outBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      gpu.queue.writeBuffer(bParams, 0, params);
      gpu.queue.writeBuffer(bQ, 0, padColumns(job.q, rows, job.D, D));
      gpu.queue.writeBuffer(bKV, 0, padColumns(job.k, keys, job.D, D));
      gpu.queue.writeBuffer(bKV, keys * D * 4, padColumns(job.v, keys, job.D, D));
      const enc = gpu.createCommandEncoder();
      const bind = (pipeline: GPUComputePipeline, buffers: GPUBuffer[]) =>
        gpu.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: buffers.map((b, binding) => ({ binding, resource: { buffer: b } })),
        });
      const pass1 = enc.beginComputePass();
      pass1.setPipeline(attend);
      pass1.setBindGroup(0, bind(attend, [bParams, bQ, bKV, bPart]));
      pass1.dispatchWorkgroups(rowGroups, splits);
      pass1.end();
      const pass2 = enc.beginComputePass();
      pass2.setPipeline(combine);
      pass2.setBindGroup(0, bind(combine, [bParams, bPart, bOut]));
      pass2.dispatchWorkgroups(rowGroups);
      pass2.end();
      enc.copyBufferToBuffer(bOut, 0, bRead, 0, outBytes);
      gpu.queue.submit([enc.finish()]);
      const oom = await gpu.popErrorScope();
      const invalid = await gpu.popErrorScope();
      const error = invalid ?? oom;
      if (error) throw new Error(`${this.backend} on ${this.device}: ${error.message.split('\n')[0]}`);
      await bRead.mapAsync(GPUMapMode.READ);
      const all = new Float32Array(bRead.getMappedRange().slice(0));
      bRead.unmap();
      const o = padColumns(all.subarray(0, rows * D), rows, D, job.D);
      const lse = all.slice(rows * D, rows * D + rows);
      for (let r = 0; r < rows; r++) {
        const [lo, hi] = rowKeyRange(job, r);
        if (hi < lo) lse[r] = -Infinity; // the row sees no key of this tile: o is already 0
      }
      return { rows, D: job.D, kStart: job.kStart, o, lse };
    } finally {
      for (const b of [bParams, bQ, bKV, bPart, bOut, bRead]) b.destroy();
    }
  }
}

/** [n, from] row-major → [n, to] (zeros added or columns dropped); the same array when from = to (at most n·to elements). */
function padColumns(x: Float32Array, n: number, from: number, to: number): Float32Array {
  if (from === to) return x.length === n * to ? x : x.subarray(0, n * to);
  const out = new Float32Array(n * to);
  const w = Math.min(from, to);
  for (let r = 0; r < n; r++) out.set(x.subarray(r * from, r * from + w), r * to);
  return out;
}
