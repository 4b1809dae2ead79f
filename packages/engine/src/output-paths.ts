import fs from 'node:fs';
import path from 'node:path';
import { InputError, outputFormat, parseRef } from '@longattn/tensor';

/** An output path and the flag that gave it (`--out`, `--lse`). */
export interface OutputPath {
  readonly argument: string;
  readonly path: string;
}

/** An input ref (`q.npy`, `w.safetensors#q`) and its flag. */
export interface InputRef {
  readonly argument: string;
  readonly ref: string;
}

/**
 * Where a path really points: an existing file's realpath (links resolved) and its device and
 * inode (hard links); a file not there yet, its directory's realpath + its name.
 */
function identity(p: string): { real: string; inode?: string } {
  try {
    const real = fs.realpathSync(p);
    const stat = fs.statSync(real);
    return { real, inode: `${stat.dev}:${stat.ino}` };
  } catch {
    try {
      return { real: path.join(fs.realpathSync(path.dirname(path.resolve(p))), path.basename(p)) };
    } catch {
      return { real: path.resolve(p) }; // no such directory: the writer says so
    }
  }
}

/**
 * Refuses, before anything is read or written, outputs that would destroy what the job reads or
 * writes: an output that names an input file (`--out q.npy`; `--out w.safetensors` with
 * `--q w.safetensors#q`, which would replace every tensor in it) or the other output
 * (`--out o.npy --lse o.npy`), compared by real path, symbolic and hard links included. Also
 * checks each output's extension and that its directory exists, so that a detached job's `--out`
 * is checked at submission. Throws InputError naming the output's flag (exit 2); touches nothing.
 */
export function checkOutputPaths(outputs: readonly OutputPath[], inputs: readonly InputRef[] = []): void {
  const taken: { argument: string; what: string; id: { real: string; inode?: string } }[] = inputs.map((input) => {
    const file = parseRef(input.ref, input.argument).path;
    return { argument: input.argument, what: `the input ${input.argument} ${JSON.stringify(input.ref)}`, id: identity(file) };
  });
  for (const out of outputs) {
    outputFormat(out.path, out.argument);
    const dir = path.dirname(path.resolve(out.path));
    if (!fs.existsSync(dir)) throw new InputError(out.argument, `directory ${JSON.stringify(dir)} does not exist`);
    if (fs.existsSync(out.path) && fs.statSync(out.path).isDirectory()) {
      throw new InputError(out.argument, `${JSON.stringify(out.path)} is a directory`);
    }
    const id = identity(out.path);
    const clash = taken.find((t) => t.id.real === id.real || (id.inode !== undefined && t.id.inode === id.inode));
    if (clash) {
      throw new InputError(
        out.argument,
        `${JSON.stringify(out.path)} is the same file as ${clash.what}; writing it would destroy it — choose another path`,
      );
    }
    taken.push({ argument: out.argument, what: `${out.argument} ${JSON.stringify(out.path)}`, id });
  }
}
