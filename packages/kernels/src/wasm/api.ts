/**
 * The slice of the WebAssembly JS API this backend uses. Node has it at runtime, but the
 * workspace's lib (ES2023 + @types/node 20) declares no WebAssembly types, so they are stated here.
 */
export interface WasmModule {
  readonly __wasmModule: unique symbol;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
}

/** WebAssembly, or undefined in a runtime without it. */
export const webAssembly = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
