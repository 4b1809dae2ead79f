import { createHash, randomUUID } from 'node:crypto';
import type { QBlockPlan, Tile } from '@longattn/attention';
import type { Redis } from 'ioredis';
import { jobKeys } from './names.ts';

/**
 * KEYS: job hash, reduced set, records set. ARGV: record id, worker field, its value, then per
 * whole q-block (index, tiles, flops), then '|', then the split tiles' count and flops, then per
 * run of a split q-block (index, first tile, tiles, the q-block's tiles). Each run's first tile
 * joins the hash field `r:<q-block>` ("F,F,…", arrival order). Returns the job's state as it found
 * it ('' when the record is gone), then per split q-block whose last part this record completed:
 * its index and its `r:` field.
 */
const RECORD = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return { '' } end
if state ~= 'queued' then return { state } end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return { state } end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
local i = 4
while ARGV[i] ~= '|' do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[1], 'tiles', ARGV[i + 1])
    redis.call('HINCRBY', KEYS[1], 'computed', ARGV[i + 1])
    redis.call('HINCRBY', KEYS[1], 'flops', ARGV[i + 2])
  end
  i = i + 3
end
if ARGV[i + 1] ~= '0' then
  redis.call('HINCRBY', KEYS[1], 'tiles', ARGV[i + 1])
  redis.call('HINCRBY', KEYS[1], 'computed', ARGV[i + 1])
  redis.call('HINCRBY', KEYS[1], 'flops', ARGV[i + 2])
end
local out = { state }
i = i + 3
while ARGV[i] do
  if redis.call('SADD', KEYS[3], 'p:' .. ARGV[i] .. ':' .. ARGV[i + 1]) == 1 then
    local runs = 'r:' .. ARGV[i]
    local known = redis.call('HGET', KEYS[1], runs)
    local firsts = known and (known .. ',' .. ARGV[i + 1]) or ARGV[i + 1]
    redis.call('HSET', KEYS[1], runs, firsts)
    local field = 's:' .. ARGV[i]
    if redis.call('HINCRBY', KEYS[1], field, ARGV[i + 2]) == tonumber(ARGV[i + 3]) then
      redis.call('HDEL', KEYS[1], field)
      out[#out + 1] = ARGV[i]
      out[#out + 1] = firsts
    end
  end
  i = i + 4
end
return out`;
const RECORD_SHA = createHash('sha1').update(RECORD).digest('hex');

/** A run of a split q-block a tile job computed: tiles [from, from + tiles) of the q-block's `of`. */
export interface SplitRun {
  qi: number;
  from: number;
  tiles: number;
  of: number;
}

/**
 * Records a tile job's finished work, atomically and only while the job is queued (a late
 * worker whose job was re-run elsewhere, cancelled or removed changes nothing): whole q-blocks
 * join the job's reduced set (their rows are written) and count their tiles once however often
 * this runs; split tiles' partials count as stored. Counters: tiles and flops (progress),
 * computed (kernel runs); `w:<worker>` = "backend|device". Each call carries a fresh record id, so
 * the same call arriving twice (ioredis resends commands whose reply a Redis restart cut off)
 * counts once, while a real re-run of the kernel counts again. Each split run counts its tiles
 * once (member `p:<q-block>:<first tile>` of the records set) into the hash field `s:<q-block>`,
 * and its first tile into `r:<q-block>` (which names its partials' blob, blob-layout.ts); the
 * record that completes a q-block's tiles deletes `s:` and returns the q-block in `complete` with
 * its runs' first tiles in `firsts` (ascending): every partial of it is stored, and this worker
 * merges it (docs/flow.md); `r:` stays until the q-block is marked reduced (mergeQBlocks). Returns the
 * job's state as the record found it ('' when gone), so the worker needs no second read to see
 * whether the job ended meanwhile (tile-job.ts, cleanUpAfterEnd). Sent as EVALSHA (one script
 * load per Redis): the script text does not travel, nor is it hashed by Redis, once per tile job.
 */
export async function recordDone(
  redis: Redis,
  job: string,
  worker: string,
  backend: string,
  whole: readonly QBlockPlan[],
  split: readonly Tile[],
  runs: readonly SplitRun[] = [],
): Promise<{ state: string; complete: number[]; firsts: Map<number, number[]> }> {
  const flops = (tiles: readonly Tile[]) => String(tiles.reduce((sum, t) => sum + t.flops, 0));
  const args = [randomUUID(), worker, backend];
  for (const block of whole) args.push(String(block.index), String(block.tiles.length), flops(block.tiles));
  args.push('|', String(split.length), flops(split));
  for (const r of runs) args.push(String(r.qi), String(r.from), String(r.tiles), String(r.of));
  const keys = [jobKeys.hash(job), jobKeys.reduced(job), jobKeys.records(job)];
  let reply: unknown;
  try {
    reply = await redis.evalsha(RECORD_SHA, 3, ...keys, ...args);
  } catch (error) {
    if (!/NOSCRIPT/.test((error as Error).message)) throw error;
    reply = await redis.eval(RECORD, 3, ...keys, ...args); // loads it: later calls hit the cache
  }
  const [state, ...done] = (reply as unknown[]).map(String);
  const complete: number[] = [];
  const firsts = new Map<number, number[]>();
  for (let i = 0; i + 1 < done.length; i += 2) {
    complete.push(Number(done[i]));
    firsts.set(Number(done[i]), runFirsts(done[i + 1]!));
  }
  return { state: state ?? '', complete, firsts };
}

/** A q-block's `r:` field ("F,F,…", arrival order) as its runs' first tiles, ascending. */
export function runFirsts(field: string): number[] {
  return field
    .split(',')
    .map(Number)
    .sort((a, b) => a - b);
}
