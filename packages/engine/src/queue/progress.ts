import { randomUUID } from 'node:crypto';
import type { QBlockPlan, Tile } from '@longattn/attention';
import type { Redis } from 'ioredis';
import { jobKeys } from './names.ts';

/**
 * KEYS: job hash, reduced set, records set. ARGV: record id, worker field, its value, then per
 * whole q-block (index, tiles, flops), then '|', then the split tiles' count and flops.
 */
const RECORD = `
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then return 0 end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return 0 end
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
return 1`;

/**
 * Records a tile job's finished work, atomically and only while the job is queued (a late
 * worker whose job was re-run elsewhere, cancelled or removed changes nothing): whole q-blocks
 * join the job's reduced set (their rows are written) and count their tiles once however often
 * this runs; split tiles' partials count as stored. Counters: tiles and flops (progress),
 * computed (kernel runs); `w:<worker>` = "backend|device". Each call carries a fresh record id, so
 * the same call arriving twice (ioredis resends commands whose reply a Redis restart cut off)
 * counts once, while a real re-run of the kernel counts again.
 */
export async function recordDone(
  redis: Redis,
  job: string,
  worker: string,
  backend: string,
  whole: readonly QBlockPlan[],
  split: readonly Tile[],
): Promise<void> {
  const flops = (tiles: readonly Tile[]) => String(tiles.reduce((sum, t) => sum + t.flops, 0));
  const args = [randomUUID(), worker, backend];
  for (const block of whole) args.push(String(block.index), String(block.tiles.length), flops(block.tiles));
  args.push('|', String(split.length), flops(split));
  await redis.eval(RECORD, 3, jobKeys.hash(job), jobKeys.reduced(job), jobKeys.records(job), ...args);
}
