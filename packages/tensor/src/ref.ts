import { InputError } from './errors.ts';

/** A tensor reference split into file and format: `q.npy`, `w.safetensors`, `w.safetensors#name`. */
export interface TensorRef {
  readonly path: string;
  readonly format: 'npy' | 'safetensors';
  /** Tensor name after `#` (safetensors only); undefined when not given. */
  readonly name: string | undefined;
}

const ST = '.safetensors';

/** Splits `ref`; an unknown extension → InputError naming `argument`. */
export function parseRef(ref: string, argument: string): TensorRef {
  const lower = ref.toLowerCase();
  if (lower.endsWith('.npy')) return { path: ref, format: 'npy', name: undefined };
  if (lower.endsWith(ST)) return { path: ref, format: 'safetensors', name: undefined };
  const hash = lower.indexOf(`${ST}#`);
  if (hash >= 0) {
    const name = ref.slice(hash + ST.length + 1);
    return { path: ref.slice(0, hash + ST.length), format: 'safetensors', name: name === '' ? undefined : name };
  }
  throw new InputError(argument, `expected a .npy file or file.safetensors[#name], got ${JSON.stringify(ref)}`);
}

/** Output format by extension; anything else → InputError naming `argument`. */
export function outputFormat(path: string, argument: string): 'npy' | 'safetensors' {
  const lower = path.toLowerCase();
  if (lower.endsWith('.npy')) return 'npy';
  if (lower.endsWith(ST)) return 'safetensors';
  throw new InputError(argument, `expected an output path ending in .npy or .safetensors, got ${JSON.stringify(path)}`);
}
