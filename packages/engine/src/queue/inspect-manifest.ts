import type { InspectSettings } from '../inspect/settings.ts';
import { CHUNK_ROWS } from '../inspect/settings.ts';

/**
 * The part of a job's manifest that makes it an inspect job (docs/flow.md, "Inspect on the
 * queue"): what the statistics pass gathers, where the LSE came from, and its chunk jobs.
 */
export interface InspectManifest {
  settings: InspectSettings;
  /** `pass`: the job's attention flow computes the LSE first, LSE-only (lseOnly); `file`: `--lse` was uploaded. */
  lseFrom: 'pass' | 'file';
  /** Chunks of the statistics pass (chunksOf(spec): B·H·⌈Sq/CHUNK_ROWS⌉), and the chunk jobs holding them. */
  chunks: number;
  chunkJobs: number;
  /** Chunks per chunk job when set (tests); 0: about CHUNK_JOB_FLOPS each (chunkRanges). */
  chunksPerJob: number;
  /** 2·D per visible (query, key) pair: the statistics pass's progress. */
  flops: number;
}

/**
 * Whether a job's attention flow is an LSE-only pass (an inspect job's first pass): its tiles run
 * V-free (computeQBlock's outputs `'lse'`), no V is uploaded and no O written; partials and rows are [rows, 0] + lse.
 */
export function lseOnly(manifest: { inspect?: Pick<InspectManifest, 'lseFrom'> }): boolean {
  return manifest.inspect?.lseFrom === 'pass';
}

/** Chunks of a spec, as chunksOf(spec) lists them. */
export function chunkCount(spec: { B: number; H: number; Sq: number }): number {
  return spec.B * spec.H * Math.ceil(spec.Sq / CHUNK_ROWS);
}

const int = (v: unknown, min: number, max = 2 ** 31 - 1) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * manifest.inspect (optional) against the schema and its spec: the field that is wrong, or
 * undefined. Sizes a worker or reducer allocates from (map grid, rows A:B, chunk counts) must
 * match what submit derives from the spec, so a planted record cannot make them allocate more.
 */
export function inspectProblem(value: unknown, spec: Record<string, unknown>): string | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) return 'inspect';
  const { Sq, Sk } = spec as Record<string, number>;
  const s = value.settings;
  if (!isObject(s)) return 'inspect.settings';
  if (!int(s.sinks, 0) || !int(s.local, 0) || !int(s.topK, 0, 1 << 20)) return 'inspect.settings';
  if (typeof s.weights !== 'boolean' || typeof s.received !== 'boolean') return 'inspect.settings';
  const rows =
    int(s.rowsFrom, 0) && int(s.rowsTo, 0) && ((s.rowsFrom === 0 && s.rowsTo === 0) || (s.rowsFrom as number) < (s.rowsTo as number));
  if (!rows || (s.rowsTo as number) > Sq! || (s.weights && s.rowsTo === 0)) return 'inspect.settings.rows';
  const map = int(s.mapRows, 0, Math.min(4096, Sq!)) && int(s.mapCols, 0, Math.min(4096, Sk!)) && (s.mapRows === 0) === (s.mapCols === 0);
  if (!map) return 'inspect.settings.map';
  if (value.lseFrom !== 'pass' && value.lseFrom !== 'file') return 'inspect.lseFrom';
  if (value.chunks !== chunkCount(spec as { B: number; H: number; Sq: number })) return 'inspect.chunks';
  if (!int(value.chunkJobs, 1, value.chunks as number)) return 'inspect.chunkJobs';
  if (!int(value.chunksPerJob, 0, value.chunks as number)) return 'inspect.chunksPerJob';
  if (!(typeof value.flops === 'number' && Number.isFinite(value.flops) && value.flops >= 0)) return 'inspect.flops';
  return undefined;
}
