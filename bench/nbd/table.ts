/**
 * Turns a bench:nbd report (BENCH_NBD_OUT) into the README's markdown:
 * `npx tsx bench/nbd/table.ts report.json`. run.ts prints the same tables.
 */
import * as fs from 'node:fs';
import { type DepthCost, depthCosts } from './depth-cost';
import type { BenchReport, CaseReport, RatioSummary } from './report';

const figure = (v: number | undefined, unit: string) =>
  v === undefined ? '–' : unit === 'ms' ? v.toFixed(v < 10 ? 2 : 1) : v.toFixed(0);
const ratio = (r: RatioSummary | undefined) =>
  r === undefined
    ? '–'
    : r.perRep.length > 1
      ? `${r.median.toFixed(2)}× (${r.min.toFixed(2)}–${r.max.toFixed(2)})`
      : `${r.median.toFixed(2)}×`;

const repetitions = (n: unknown) => `${n} repetition${n === 1 ? '' : 's'}`;

function header(report: BenchReport): string[] {
  const m = report.machine;
  const c = report.config;
  return [
    `bench:nbd — ${c.sizeMiB} MiB disks, ${repetitions(c.reps)}${c.copy ? ` (nbdcopy ${repetitions(c.copyReps ?? c.reps)})` : ''} (order alternating), fio ${c.runtime} s + ${c.ramp} s ramp per run;`,
    `${m.nproc} CPUs (${m.cpu}), ${m.memMiB} MiB, Linux ${m.kernel}; load average before ${m.loadavgBefore}, after ${m.loadavgAfter}.`,
    `Tools: ${Object.entries(m.tools)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    'Ratio: snapsync over the peer, median of the per-repetition ratios (min–max); > 1 means snapsync was faster.',
  ];
}

function layoutLabel(report: BenchReport, id: string): string {
  const l = report.layouts.find((x) => x.id === id);
  if (!l) return id;
  const depth = l.depth === l.depthRequested ? `${l.depth}` : `${l.depth} (of ${l.depthRequested} asked)`;
  return l.disks > 1 ? `${l.disks} disks, depth ${depth}` : `depth ${depth}`;
}

function ioTable(report: BenchReport, cases: CaseReport[]): string[] {
  const peers = [...new Set(cases.flatMap((c) => c.servers.filter((s) => s !== 'snapsync')))];
  const lines = [
    `| layout | workload | cache | unit | snapsync | ${peers.map((p) => `${p} | ratio`).join(' | ')} |`,
    `|---|---|---|---|---:|${peers.map(() => '---:|---:').join('|')}|`,
  ];
  for (const c of cases)
    lines.push(
      `| ${layoutLabel(report, c.layout)} | ${c.workload} | ${c.cache} | ${c.unit} | ${figure(c.medians.snapsync, c.unit)} | ${peers
        .map((p) => `${figure(c.medians[p], c.unit)} | ${ratio(c.ratios[p])}`)
        .join(' | ')} |`,
    );
  return lines;
}

function syncTable(cases: CaseReport[]): string[] {
  const lines = [
    '| measure | command | median ms | ratio (snapsync faster when > 1) |',
    '|---|---|---:|---:|',
  ];
  for (const c of cases)
    for (const s of c.servers)
      lines.push(
        `| ${c.workload} | ${s} | ${figure(c.medians[s], 'ms')} | ${s === 'snapsync' ? '' : ratio(c.ratios[s])} |`,
      );
  return lines;
}

function depthTable(report: BenchReport, costs: DepthCost[]): string[] {
  const servers = [...new Set(costs.flatMap((c) => Object.keys(c.costs)))];
  const lines = [
    'Cost of depth: time per request at depth N ÷ at depth 1, each server against itself (> 1: slower at depth N).',
    '',
    `| layout | workload | cache | ${servers.join(' | ')} |`,
    `|---|---|---|${servers.map(() => '---:').join('|')}|`,
  ];
  for (const c of costs)
    lines.push(
      `| ${layoutLabel(report, c.layout)} | ${c.workload} | ${c.cache} | ${servers.map((s) => ratio(c.costs[s])).join(' | ')} |`,
    );
  return lines;
}

/** The whole markdown: header, I/O table, depth costs, sync table, notes. */
export function renderMarkdown(report: BenchReport): string {
  const io = report.cases.filter((c) => c.group !== 'sync');
  const sync = report.cases.filter((c) => c.group === 'sync');
  const out = [header(report).join('\n\n'), ''];
  if (io.length > 0) out.push(...ioTable(report, io), '');
  const costs = depthCosts(report);
  if (costs.length > 0) out.push(...depthTable(report, costs), '');
  if (sync.length > 0) out.push(...syncTable(sync), '');
  const notes = [
    ...report.notes,
    ...report.layouts.filter((l) => l.note).map((l) => `${l.id}: ${l.note}`),
    ...[...new Set(report.cases.filter((c) => c.note).map((c) => `${c.group}: ${c.note}`))],
  ];
  for (const n of notes) out.push(`- ${n}`);
  return `${out.join('\n')}\n`;
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: tsx bench/nbd/table.ts REPORT.json');
    process.exit(2);
  }
  process.stdout.write(renderMarkdown(JSON.parse(fs.readFileSync(file, 'utf8')) as BenchReport));
}
