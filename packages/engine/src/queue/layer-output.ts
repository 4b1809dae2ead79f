import type { TensorWriter } from '@longattn/tensor';
import { type BlobStore, bytesToF32 } from '../blobs/blob-store.ts';
import { joinHeads } from '../layer/projection.ts';
import { PROJECT_ROWS } from '../layer/run-layer.ts';
import type { JobManifest } from './manifest.ts';
import { blobNames } from './names.ts';

/**
 * Writes a done layer job's attention output O (`--attn-out`, the API's result/attn) from its O
 * blob (bhsd `[B, H, S, D]`) to `writer` in the layout `longattn layer` writes it: `[B, S, H, D]`
 * (`[S, H, D]` for a rank-2 X), heads joined per row, PROJECT_ROWS rows at a time.
 */
export async function writeLayerAttn(store: BlobStore, manifest: JobManifest, writer: TensorWriter): Promise<void> {
  const { B, H, Sq: S, D } = manifest.spec;
  const name = blobNames.out(manifest.id);
  const read = async (at: number, count: number) => bytesToF32(await store.read(name, at * 4, count * 4));
  for (let b = 0; b < B; b++) {
    for (let r0 = 0; r0 < S; r0 += PROJECT_ROWS) {
      const rows = Math.min(PROJECT_ROWS, S - r0);
      const heads = await Promise.all(Array.from({ length: H }, (_, h) => read(((b * H + h) * S + r0) * D, rows * D)));
      const o = joinHeads(H, D, rows, (h) => heads[h]!);
      writer.writeRuns((b * S + r0) * H * D, o, o.length, o.length);
    }
  }
}

/** The shape of a layer job's attention output file: `[B, S, H, D]`, or `[S, H, D]` when X had no batch dim. */
export function layerAttnShape(manifest: JobManifest): number[] {
  const { B, H, Sq, D } = manifest.spec;
  return [...(manifest.layer!.xRank === 3 ? [B] : []), Sq, H, D];
}
