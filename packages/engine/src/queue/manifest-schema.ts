import { MAX_GLOBALS, MAX_MASK_CELLS } from '@longattn/attention';
import { BadManifestError, excerpt } from '../errors.ts';
import { inspectProblem } from './inspect-manifest.ts';
import { isJobId } from './job-id.ts';
import { layerProblem } from './layer-manifest.ts';

/**
 * The schema of a stored manifest (JobManifest as encodeManifest writes it: windows use -1 for
 * an unbounded side). Everything a worker, reducer or client reads back from Redis passes here
 * before it plans, opens a store or builds a name: a planted or corrupt record is refused with
 * BadManifestError instead of steering a process. Unknown fields pass through untouched (the
 * manifest may grow); known ones must have their type and range.
 */
type Check = (value: unknown) => boolean;

const int =
  (min: number, max = 2 ** 31 - 1): Check =>
  (v) =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const oneOf =
  (...values: unknown[]): Check =>
  (v) =>
    values.includes(v);
const finite: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const shortString =
  (pattern: RegExp, max = 256): Check =>
  (v) =>
    typeof v === 'string' && v.length <= max && pattern.test(v);

const SPEC: Record<string, Check> = {
  layout: oneOf('bhsd', 'bshd'),
  B: int(1),
  H: int(1),
  Hk: int(1),
  Sq: int(1),
  Sk: int(1),
  D: int(1, 1 << 16),
  causal: oneOf(true, false),
  scale: finite,
};

const TOP: Record<string, Check> = {
  version: oneOf(1),
  id: isJobId,
  qShape: (v) => Array.isArray(v) && v.length >= 2 && v.length <= 4 && v.every(int(1)),
  blockQ: int(1, 1 << 20),
  blockK: int(1, 1 << 20),
  /** A resolved backend name, `name` or `name:mode`. */
  backend: shortString(/^[a-z0-9]+(:[a-z0-9.-]+)?$/, 64),
  /** A store location (openBlobStore's forms); which ones a process opens is its allow-list's call. */
  blobs: shortString(/^(redis|rediss?:\/\/\S+|s3:\/\/\S+|fs:\/\S*|\/\S*)$/, 1024),
  tileCount: int(0, Number.MAX_SAFE_INTEGER),
  skippedTiles: int(0, Number.MAX_SAFE_INTEGER),
  qBlockCount: int(0, Number.MAX_SAFE_INTEGER),
  flops: (v) => finite(v) && (v as number) >= 0,
  tileJobs: int(0, Number.MAX_SAFE_INTEGER),
  reduceJobs: int(0, Number.MAX_SAFE_INTEGER),
};

/** spec.pattern (optional): sinks, sorted distinct globals, stride, a block mask whose cells decode to heads·nQb·nKb bytes of 0/1. */
function patternProblem(pattern: unknown, spec: Record<string, unknown>): string | undefined {
  if (pattern === undefined) return undefined;
  if (!isObject(pattern)) return 'spec.pattern';
  const { sinks, global, stride, blockMask } = pattern;
  if (sinks !== undefined && !int(0)(sinks)) return 'spec.pattern.sinks';
  if (stride !== undefined && !int(1)(stride)) return 'spec.pattern.stride';
  if (global !== undefined) {
    const ok = Array.isArray(global) && global.length <= MAX_GLOBALS && global.every((g, i) => int(0)(g) && (i === 0 || g > global[i - 1]));
    if (!ok) return 'spec.pattern.global';
  }
  if (blockMask !== undefined) {
    if (!isObject(blockMask)) return 'spec.pattern.blockMask';
    const { block, heads, nQb, nKb, cells } = blockMask;
    if (!int(1)(block) || !(heads === 1 || heads === spec.H) || !int(1)(nQb) || !int(1)(nKb)) return 'spec.pattern.blockMask';
    const count = (heads as number) * (nQb as number) * (nKb as number);
    if (count > MAX_MASK_CELLS || typeof cells !== 'string' || cells.length > 2 * MAX_MASK_CELLS) return 'spec.pattern.blockMask';
    const bytes = Buffer.from(cells, 'base64');
    if (bytes.length !== count || bytes.some((b) => b > 1)) return 'spec.pattern.blockMask.cells';
  }
  return undefined;
}

/** Most q-blocks a manifest may plan (B·H·⌈Sq/blockQ⌉): a worker re-plans it, so a planted huge one must not. */
export const MAX_QBLOCKS = 1 << 24;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The manifest of job `id` if `value` fits the schema; else BadManifestError saying which field. */
export function checkManifest(value: unknown, id: string): Record<string, unknown> {
  const bad = (what: string) => new BadManifestError(`job ${id}: its record in Redis is not a valid manifest (${what})`);
  if (!isObject(value)) throw bad('not an object');
  for (const [field, check] of Object.entries(TOP))
    if (!check(value[field])) throw bad(`field ${field}: ${excerpt(String(value[field]), 40)}`);
  if (value.id !== id) throw bad(`its id ${excerpt(String(value.id), 40)} is not the key's`);
  const spec = value.spec;
  if (!isObject(spec)) throw bad('field spec');
  for (const [field, check] of Object.entries(SPEC))
    if (!check(spec[field])) throw bad(`field spec.${field}: ${excerpt(String(spec[field]), 40)}`);
  const window = spec.window;
  if (!isObject(window) || !int(-1)(window.left) || !int(-1)(window.right)) throw bad('field spec.window');
  if (spec.linear !== undefined && spec.linear !== true && spec.linear !== false) throw bad('field spec.linear');
  const patternBad = patternProblem(spec.pattern, spec);
  if (patternBad) throw bad(`field ${patternBad}`);
  const inspectBad = inspectProblem(value.inspect, spec);
  if (inspectBad) throw bad(`field ${inspectBad}`);
  const layerBad = layerProblem(value.layer, value.inspect);
  if (layerBad) throw bad(`field ${layerBad}`);
  const { B, H, Hk, Sq } = spec as Record<string, number>;
  if (H! % Hk! !== 0) throw bad('spec.H is not a multiple of spec.Hk');
  if (B! * H! * Math.ceil(Sq! / (value.blockQ as number)) > MAX_QBLOCKS) throw bad(`over ${MAX_QBLOCKS} q-blocks`);
  return value;
}
