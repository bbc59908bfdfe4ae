/**
 * bench:nbd — the snapsync agent's NBD export against qemu-nbd serving qcow2
 * backing chains of the same bytes. Both servers run as their own processes
 * on Unix sockets (`snapsync-agent serve --nbd unix:…`; `qemu-nbd --socket`,
 * once per --aio mode); the client is the same for both: `fio --ioengine=nbd`,
 * nbdcopy, and whole processes for giving a disk a new state. Pools are built
 * through the public surface only (init, serve, import, snapshot, clone,
 * sync, NBD writes), so this measures what users run.
 *
 * Prints markdown tables on stdout (progress on stderr) and writes every raw
 * figure to BENCH_NBD_OUT (JSON). Knobs: see config.ts and the README's
 * "NBD figures"; `--quick` is a smoke run (about 2 minutes). Cost: the default
 * run takes about an hour and a half on 2 cores (5 layouts × 5 workloads ×
 * warm/cold × 3 servers × 3 repetitions of 9 s, and the builds).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { copyCases, fioCases, syncCases } from './cases';
import { type BenchConfig, readConfig } from './config';
import { buildLayout, type Layout, writeBaseImage } from './layouts';
import { exec, stopAll } from './procs';
import { ioUringWorks } from './qemu';
import type { BenchReport, CaseReport, LayoutReport } from './report';
import { renderMarkdown } from './table';

const MiB = 1024 * 1024;
const log = (line: string) => process.stderr.write(`${line}\n`);
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').trim();

async function toolVersions(): Promise<Record<string, string>> {
  const first = async (cmd: string, args: string[]) =>
    (await exec(cmd, args).catch((e) => String(e))).split('\n')[0]!.trim();
  return {
    node: process.version,
    fio: await first('fio', ['--version']),
    'qemu-nbd': (await first('qemu-nbd', ['--version'])).replace(/^qemu-nbd /, ''),
    nbdcopy: (await first('nbdcopy', ['--version'])).replace(/^nbdcopy /, ''),
  };
}

/** The layouts to measure: each chain depth with one disk, then the concurrent clients on depth 1. */
function layoutPlan(config: BenchConfig) {
  const plan = config.depths.map((depth) => ({ id: `depth-${depth}`, depth, disks: 1 }));
  if (config.clients > 0) plan.push({ id: `clients-${config.clients}`, depth: 1, disks: config.clients });
  return plan;
}

async function main(): Promise<void> {
  const config = readConfig(process.argv.slice(2), process.env, os.tmpdir());
  const root = fs.mkdtempSync(path.join(config.dir, 'snapsync-bench-nbd-'));
  const startedAt = new Date().toISOString();
  const loadavgBefore = loadavg();
  const notes: string[] = [
    'Both servers: out of process, NBD over a Unix socket, one fio job (one NBD connection) per disk.',
    'qemu-nbd: default --cache=writeback (host page cache, like the agent); cold = `sync` and POSIX_FADV_DONTNEED on every pool and qcow2 file before each run, warm = the same drop, then every data extent of them read in 64 KiB reads with readahead off before each run (no 2 MiB page-cache folios; residentBytes in the JSON).',
    'Disks: depth data layers (every depth-th 64 KiB unit rewritten per layer) under an empty top layer; writes go to a top emptied before each write run.',
    `fio, the agent and qemu-nbd share the machine's ${os.cpus().length} CPUs.`,
  ];
  const layouts: LayoutReport[] = [];
  const cases: CaseReport[] = [];
  const tools = await toolVersions();
  // Written after every layout too (complete: false), so a long run that stops keeps what it measured.
  const writeReport = (complete: boolean): BenchReport => {
    const report: BenchReport = {
      version: 1,
      complete,
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: {
        nproc: os.availableParallelism(),
        cpu: os.cpus()[0]?.model ?? 'unknown',
        memMiB: Math.round(os.totalmem() / MiB),
        kernel: os.release(),
        loadavgBefore,
        loadavgAfter: loadavg(),
        tools,
      },
      config: { ...config },
      notes,
      layouts,
      cases,
    };
    if (config.out) fs.writeFileSync(config.out, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  };
  try {
    const uring = config.aio.includes('io_uring') ? await ioUringWorks(root) : { ok: true, reason: '' };
    if (!uring.ok) {
      config.aio = config.aio.filter((a) => a !== 'io_uring');
      notes.push(`qemu-nbd --aio=io_uring does not work here, left out: ${uring.reason}`);
    }
    const images = path.join(root, 'images');
    fs.mkdirSync(images);
    const baseImage = path.join(images, 'base.raw');
    writeBaseImage(baseImage, config.sizeMiB * MiB);
    const plan = layoutPlan(config);
    // nbdcopy and sync run once, on the shallowest one-disk layout.
    const smallest = plan
      .filter((p) => p.disks === 1)
      .reduce((a, b) => (b.depth < a.depth ? b : a), plan[0]!);
    for (const p of plan) {
      log(`building ${p.id}`);
      const dir = path.join(root, p.id);
      const layout: Layout = await buildLayout({
        ...p,
        sizeBytes: config.sizeMiB * MiB,
        aio: config.aio,
        baseImage,
        qcow2BuildSeconds: config.qcow2BuildSeconds,
        dir,
        copyTargets: p === smallest && config.copy,
        dataFiles: config.dataFiles,
      });
      try {
        layouts.push({
          id: p.id,
          depthRequested: p.depth,
          depth: layout.depth,
          disks: p.disks,
          buildSeconds: layout.buildSeconds,
          ...(layout.depth < p.depth
            ? {
                note: `both chains stopped at depth ${layout.depth}: the qcow2 layers took longer than BENCH_NBD_QCOW2_BUDGET=${config.qcow2BuildSeconds} s`,
              }
            : {}),
        });
        log(
          `${p.id}: depth ${layout.depth}, built in ${layout.buildSeconds.snapsync.toFixed(1)} s (snapsync) / ${layout.buildSeconds.qcow2.toFixed(1)} s (qcow2)`,
        );
        cases.push(...(await fioCases(layout, config, dir, log)));
        if (p === smallest && config.copy)
          cases.push(...(await copyCases(layout, config, baseImage, dir, log)));
        if (p === smallest) cases.push(...(await syncCases(layout, config, dir, log)));
        writeReport(false);
      } finally {
        await layout.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    const report = writeReport(true);
    process.stdout.write(renderMarkdown(report));
  } finally {
    await stopAll();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
