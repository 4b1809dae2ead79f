/**
 * The part of gpu.js 2.24.1 longattn uses, typed from its sources: the package's index.d.ts
 * lacks `input`, WebGPUKernel, loopMaxIterations and the static kernel fields read here.
 */
import type { GlContext } from './gl-addon.ts';

/** A built gpu.js kernel (the class tells which backend really runs it). */
export interface GpuJsKernel {
  /** Why gpu.js degraded this kernel's work to its cpu backend, when it did. */
  fallbackReason?: string | null;
}

export type KernelClass = (abstract new (...args: never[]) => GpuJsKernel) & { readonly name: string };

export interface KernelSettings {
  /** [x, y]: x is the innermost index. */
  output: number[];
  pipeline: boolean;
  precision: 'single';
  tactic: 'precision';
  constants: Record<string, number>;
  loopMaxIterations: number;
  asyncMode?: boolean;
  poolSize?: number;
  /** Called instead of gpu.js's swap to its cpu kernel; `this` is the kernel that gave up. */
  onRequestFallback: (this: GpuJsKernel) => never;
}

/** What createKernel returns: call it with the kernel's arguments. */
export interface KernelShortcut {
  (...args: unknown[]): unknown;
  /** The kernel that runs now (replaced by gpu.js on a fallback or an argument-type switch). */
  readonly kernel: GpuJsKernel;
  destroy(): void;
}

export interface Gpu {
  createKernel(source: string, settings: KernelSettings): KernelShortcut;
  destroy(): void | Promise<void>;
}

export interface GpuJs {
  GPU: {
    new (settings: { mode: string }): Gpu;
    readonly isWebAssemblySupported: boolean;
    readonly isHeadlessGLSupported: boolean;
  };
  /** Wraps a flat array as a [size[0], size[1]] array: x (size[0]) is the innermost index. */
  input(value: Float32Array, size: number[]): unknown;
  HeadlessGLKernel: KernelClass & {
    readonly testContext: GlContext | null;
    readonly features: { isTextureFloat?: boolean; isFloatRead?: boolean } | null;
  };
  WebGPUKernel: KernelClass;
  WebAssemblyKernel: KernelClass;
  CPUKernel: KernelClass;
}

let lib: Promise<GpuJs> | undefined;

/** gpu.js, loaded on first use (it loads the native gl addon, which no other backend needs). */
export function loadGpuJs(): Promise<GpuJs> {
  lib ??= import('gpu.js').then((m) => m as unknown as GpuJs);
  return lib;
}
