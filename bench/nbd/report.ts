/**
 * The bench:nbd report (BENCH_NBD_OUT): every raw figure, and the summary the
 * tables print. A ratio is always "snapsync's speed over the peer's" (for a
 * time: the peer's time over snapsync's), so > 1 means snapsync was faster;
 * per repetition, then its median and min–max over the repetitions.
 */

export interface RatioSummary {
  median: number;
  min: number;
  max: number;
  perRep: number[];
}

export interface Run {
  server: string;
  rep: number;
  /** Position of this run within its repetition (the order alternates). */
  position: number;
  /** The case's figure (IOPS, MiB/s or ms, see `unit`). */
  value: number;
  raw: Record<string, number>;
  /** Bytes of the layout's files in the page cache just before the run (after the cold drop or the warm read). */
  residentBytes?: number;
  loadavg: string;
}

export interface CaseReport {
  id: string;
  group: 'fio' | 'nbdcopy' | 'sync';
  layout: string;
  workload: string;
  cache: string;
  unit: 'IOPS' | 'MiB/s' | 'ms';
  servers: string[];
  runs: Run[];
  medians: Record<string, number>;
  /** Keyed by peer: snapsync over that peer. */
  ratios: Record<string, RatioSummary>;
  note?: string;
}

export interface LayoutReport {
  id: string;
  depthRequested: number;
  depth: number;
  disks: number;
  buildSeconds: { snapsync: number; qcow2: number };
  note?: string;
}

export interface BenchReport {
  version: 1;
  /** False while the run goes on (or when it stopped half way): the cases measured so far. */
  complete: boolean;
  startedAt: string;
  finishedAt: string;
  machine: {
    nproc: number;
    cpu: string;
    memMiB: number;
    kernel: string;
    loadavgBefore: string;
    loadavgAfter: string;
    tools: Record<string, string>;
  };
  config: Record<string, unknown>;
  notes: string[];
  layouts: LayoutReport[];
  cases: CaseReport[];
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The median, min and max of per-repetition ratios. */
export function ratioSummary(perRep: number[]): RatioSummary {
  return { median: median(perRep), min: Math.min(...perRep), max: Math.max(...perRep), perRep };
}

/** Medians per server and snapsync-over-peer ratios, pairing runs of the same repetition. */
export function summarize(servers: string[], runs: Run[], unit: CaseReport['unit']) {
  const medians: Record<string, number> = {};
  for (const s of servers) medians[s] = median(runs.filter((r) => r.server === s).map((r) => r.value));
  const ratios: Record<string, RatioSummary> = {};
  const reps = [...new Set(runs.map((r) => r.rep))];
  for (const peer of servers.filter((s) => s !== 'snapsync')) {
    const perRep: number[] = [];
    for (const rep of reps) {
      const a = runs.find((r) => r.rep === rep && r.server === 'snapsync')?.value;
      const b = runs.find((r) => r.rep === rep && r.server === peer)?.value;
      if (a && b) perRep.push(unit === 'ms' ? b / a : a / b);
    }
    if (perRep.length > 0) ratios[peer] = ratioSummary(perRep);
  }
  return { medians, ratios };
}

/** Repetition `rep`'s order: forward on even repetitions, backward on odd ones (A B, B A, A B, …). */
export function orderFor<T>(items: T[], rep: number): T[] {
  return rep % 2 === 0 ? [...items] : [...items].reverse();
}
