import type { AttentionSpec, QBlockPlan } from '@longattn/attention';
import { keyValueSource, type BlockSource } from '../block-source.ts';
import type { LayerInputsOfTask, ProjectTask } from '../local/task.ts';
import { fileReader } from '../local/task-source.ts';
import { joinHeads, project, readRows } from './projection.ts';

/**
 * The pool-thread side of a layer (docs/flow.md, "Layers"): projection tasks, and the block
 * source of an attention q-block whose queries are projected from X here, never read from a file.
 */

/** The projected rows [rows, H·D] of the last row block, for the other heads of the same rows. */
let lastQueries: { key: string; q: Float32Array } | undefined;
/** This thread's K/V source of the current layer job (read buffers reused across tasks). */
let kvSource: { key: string; source: Omit<BlockSource, 'queries'> } | undefined;

/** Runs a ProjectTask: the packed outputs [rows, out] of each projection, then the rows read if asked. */
export async function runProjectTask(task: ProjectTask): Promise<Float32Array> {
  const x = task.gather ? gatherHeads(task) : readRows(task.source, task.width, task.firstRow, task.rows);
  const outs: Float32Array[] = [];
  for (const p of task.projections) outs.push(await project(task.linear, x, task.rows, p, task.position));
  if (task.withInput || task.projections.length === 0) outs.push(x);
  if (outs.length === 1) return outs[0]!;
  const packed = new Float32Array(outs.reduce((n, o) => n + o.length, 0));
  let at = 0;
  for (const o of outs) {
    packed.set(o, at);
    at += o.length;
  }
  return packed;
}

/** O rows [rows, H·D] (bshd) gathered from a bhsd [B, H, S, D] file: one read per head. */
function gatherHeads(task: ProjectTask): Float32Array {
  const { b, heads, S, D } = task.gather!;
  const reader = fileReader(task.source);
  return joinHeads(heads, D, task.rows, (h) => reader.readRuns(((b * heads + h) * S + task.position) * D, 1, task.rows * D, task.rows * D));
}

/**
 * Runs each of the layer's projections once on a row of zeros: the GEMM sessions get made (under
 * load, ~1 s per session here) and the weights read into this thread before the timed phases.
 */
export async function warmProjections(inputs: LayerInputsOfTask): Promise<void> {
  for (const p of inputs.all) await project(inputs.linear, new Float32Array(p.w.layout.shape[1]!), 1, p, 0);
}

/** A layer q-block's source: its queries projected from X (all heads once per row block), K and V from their files. */
export async function layerSource(spec: AttentionSpec, inputs: LayerInputsOfTask, block: QBlockPlan): Promise<BlockSource> {
  // The K/V blocks depend on the files and the spec's shapes and layout, not its pattern (a block
  // mask's cells would make this key MBs long, stringified on every task; as taskSource's key).
  const kvKey = JSON.stringify([inputs.k, inputs.v, spec.layout, spec.B, spec.Hk, spec.Sk, spec.D]);
  if (kvSource?.key !== kvKey) kvSource = { key: kvKey, source: keyValueSource(spec, fileReader(inputs.k), fileReader(inputs.v), true) };
  const { H, Sq, D } = spec;
  const key = JSON.stringify([inputs.x, inputs.q, block.b, block.qStart, block.rows]);
  if (lastQueries?.key !== key) {
    const x = readRows(inputs.x, inputs.dModel, block.b * Sq + block.qStart, block.rows);
    lastQueries = { key, q: await project(inputs.linear, x, block.rows, inputs.q, block.qStart) };
  }
  const all = lastQueries.q;
  const q = new Float32Array(block.rows * D); // head h of row r is all[(r·H + h)·D …]
  for (let r = 0; r < block.rows; r++) q.set(all.subarray((r * H + block.h) * D, (r * H + block.h + 1) * D), r * D);
  return {
    queries: (_b, _h, start, count) => q.subarray((start - block.qStart) * D, (start - block.qStart + count) * D),
    keys: kvSource.source.keys,
    values: kvSource.source.values,
  };
}
