/**
 * What a deeper chain costs each server: for every fio case run both on the
 * depth-1 disk and on a deeper single disk, the time per request (per MiB for
 * sequential runs) at depth N over the same at depth 1, repetition r against
 * repetition r; > 1 means slower at depth N. The two runs are minutes apart,
 * not alternated, so this is each server's cost of depth, not a side-by-side
 * ratio.
 */
import { type BenchReport, type RatioSummary, ratioSummary } from './report';

export interface DepthCost {
  /** The deeper layout's id (e.g. `depth-512`). */
  layout: string;
  workload: string;
  cache: string;
  /** Per server: time at depth N ÷ time at depth 1, over the repetitions. */
  costs: Record<string, RatioSummary>;
}

export function depthCosts(report: BenchReport): DepthCost[] {
  const base = report.layouts.find((l) => l.disks === 1 && l.depth === 1);
  if (!base) return [];
  const out: DepthCost[] = [];
  for (const layout of report.layouts.filter((l) => l.disks === 1 && l.depth > 1))
    for (const deep of report.cases.filter((c) => c.layout === layout.id && c.group === 'fio')) {
      const shallow = report.cases.find(
        (c) => c.layout === base.id && c.workload === deep.workload && c.cache === deep.cache,
      );
      if (!shallow) continue;
      const costs: Record<string, RatioSummary> = {};
      for (const server of deep.servers) {
        const perRep: number[] = [];
        for (const run of deep.runs.filter((r) => r.server === server)) {
          const at1 = shallow.runs.find((r) => r.server === server && r.rep === run.rep)?.value;
          // A speed (IOPS, MiB/s): the time per unit is its inverse.
          if (at1 && run.value > 0) perRep.push(at1 / run.value);
        }
        if (perRep.length > 0) costs[server] = ratioSummary(perRep);
      }
      out.push({ layout: layout.id, workload: deep.workload, cache: deep.cache, costs });
    }
  return out;
}
