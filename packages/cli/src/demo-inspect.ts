import { runInspect, type InspectResult } from '@longattn/engine';
import { SINK_KEYS, type Planted } from './sample.ts';

/** What `demo --inspect` found for each planted structure: the head, what was planted, the statistic, and whether it shows. */
export interface PlantedFinding {
  head: number;
  planted: string;
  found: string;
  ok: boolean;
}

/**
 * `longattn demo --inspect`: inspects the demo's causal attention (LSE from the demo's own run),
 * writes the maps and the received vector next to its inputs, and checks that the statistics find
 * what sample.ts planted: local heads keep ≥ 90% of their weight within 16 tokens, the sink head
 * ≥ 90% on the first SINK_KEYS keys, the retrieval head's last row puts its top weight on the
 * marked token, which is also the key that receives the most attention in that head.
 */
export async function inspectDemo(
  files: { q: string; k: string; lse: string; dir: string },
  n: number,
  planted: Planted,
  threads: number | undefined,
  signal: AbortSignal,
): Promise<{ result: InspectResult; findings: PlantedFinding[] }> {
  const result = await runInspect(
    {
      q: files.q,
      k: files.k,
      lse: files.lse,
      options: { causal: true },
      rows: { from: n - 1, to: n },
      topK: 3,
      sinksStat: SINK_KEYS,
      localStat: 16,
      received: `${files.dir}/received.npy`,
      map: `${files.dir}/map.png`,
      mapSize: 256,
    },
    { ...(threads ? { threads } : {}), signal },
  );
  const heads = result.report.heads;
  const findings: PlantedFinding[] = [];
  for (const h of planted.local) {
    const share = heads[h]!.localShare ?? 0;
    findings.push({
      head: h,
      planted: 'local attention',
      found: `localShare(≤16) ${share.toFixed(3)}, meanDistance ${heads[h]!.meanDistance?.toFixed(1)}`,
      ok: share >= 0.9,
    });
  }
  if (planted.sink !== undefined) {
    const share = heads[planted.sink]!.sinkShare ?? 0;
    findings.push({
      head: planted.sink,
      planted: `a sink on keys 0–${SINK_KEYS - 1}`,
      found: `sinkShare ${share.toFixed(3)}`,
      ok: share >= 0.9,
    });
  }
  if (planted.retrieve) {
    const { head, position } = planted.retrieve;
    const top = heads[head]!.top[0]?.keys[0];
    findings.push({
      head,
      planted: `retrieval of token ${position}`,
      found: `row ${n - 1}'s top key ${top?.[0]} (p ${top?.[1].toFixed(3)})`,
      ok: top?.[0] === position,
    });
  }
  return { result, findings };
}
