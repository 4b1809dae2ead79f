import type { AttentionSpec } from '@longattn/attention';
import type { HeadReport } from './report.ts';
import type { InspectReport } from './request.ts';
import type { InspectSettings } from './settings.ts';

/** The report of a folded job (both engines build it here, so their JSON is the same). */
export function inspectReport(spec: AttentionSpec, settings: InspectSettings, heads: HeadReport[]): InspectReport {
  return {
    heads,
    sinksStat: settings.sinks,
    localStat: settings.local,
    topK: settings.topK,
    rows: settings.rowsTo > 0 ? [settings.rowsFrom, settings.rowsTo] : null,
    shape: { B: spec.B, H: spec.H, Hk: spec.Hk, Sq: spec.Sq, Sk: spec.Sk, D: spec.D },
  };
}
