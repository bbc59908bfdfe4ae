/**
 * The measured cases of bench:nbd. Every case runs each server once per
 * repetition, the order alternating (A B C, C B A, …), so a drift of the
 * machine's speed falls on both sides; ratios pair runs of one repetition.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AGENT_BIN, whenDetached } from './agent';
import { type CacheMode, prepareCache } from './cache';
import { type BenchConfig, WORKLOADS, type WorkloadName } from './config';
import { runFio } from './fio';
import type { Layout } from './layouts';
import { exec, timeProcess } from './procs';
import { startQemuNbd } from './qemu';
import { type CaseReport, orderFor, type Run, summarize } from './report';

const MiB = 1024 * 1024;
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').trim();

interface Contender {
  server: string;
  run(rep: number): Promise<{ value: number; raw: Record<string, number>; residentBytes?: number }>;
}

async function measure(
  head: Omit<CaseReport, 'servers' | 'runs' | 'medians' | 'ratios'>,
  contenders: Contender[],
  reps: number,
  log: (line: string) => void,
): Promise<CaseReport> {
  const runs: Run[] = [];
  for (let rep = 0; rep < reps; rep++)
    for (const [position, c] of orderFor(contenders, rep).entries()) {
      const load = loadavg();
      const figures = await c.run(rep);
      runs.push({ server: c.server, rep, position, ...figures, loadavg: load });
    }
  const servers = contenders.map((c) => c.server);
  const report = { ...head, servers, runs, ...summarize(servers, runs, head.unit) };
  const ratios = Object.entries(report.ratios)
    .map(([peer, r]) => `${r.median.toFixed(2)}× vs ${peer}`)
    .join(', ');
  log(`${head.id}: ${ratios}`);
  return report;
}

const isWrite = (w: WorkloadName) => WORKLOADS[w].rw.includes('write');

/** Reads first (on the disks as built), then writes (each into emptied top layers). */
export async function fioCases(
  layout: Layout,
  config: BenchConfig,
  scratch: string,
  log: (line: string) => void,
): Promise<CaseReport[]> {
  const workloads = [...config.workloads].sort((a, b) => Number(isWrite(a)) - Number(isWrite(b)));
  const reports: CaseReport[] = [];
  for (const workload of workloads)
    for (const cache of config.caches) {
      const contenders: Contender[] = layout.sides.map((side) => ({
        server: side.id,
        run: async () => {
          if (isWrite(workload)) await side.reset();
          const cached = await prepareCache(cache, await layout.files());
          const f = await runFio(
            side.uris,
            workload,
            config.sizeMiB * MiB,
            config.runtime,
            config.ramp,
            path.join(scratch, 'fio.json'),
          );
          const unit = WORKLOADS[workload].metric;
          return {
            value: unit === 'IOPS' ? f.iops : f.mibPerSec,
            raw: { ...f },
            residentBytes: cached.bytes,
          };
        },
      }));
      reports.push(
        await measure(
          {
            id: `${layout.id}/${workload}/${cache}`,
            group: 'fio',
            layout: layout.id,
            workload,
            cache,
            unit: WORKLOADS[workload].metric,
          },
          contenders,
          config.reps,
          log,
        ),
      );
    }
  return reports;
}

/**
 * nbdcopy, whole process, both directions: the base image into an empty disk
 * (snapsync: a new vdisk; qemu-nbd: a new qcow2 without backing), and the
 * layout's first disk out to a new raw file. MiB/s = disk size / wall time.
 */
export async function copyCases(
  layout: Layout,
  config: BenchConfig,
  baseImage: string,
  scratch: string,
  log: (line: string) => void,
): Promise<CaseReport[]> {
  const size = config.sizeMiB * MiB;
  const out = path.join(scratch, 'copy-out.raw');
  const targets = new Map<string, () => Promise<string>>();
  targets.set('snapsync', async () => {
    const agent = layout.agent;
    await whenDetached(() => agent.call('deleteContainer', { container: 'copy-in' }));
    await agent.call('createContainer', { name: 'copy-in', type: 'vdisk', size });
    return agent.uri('copy-in');
  });
  for (const side of layout.sides.slice(1)) {
    const aio = side.id.replace('qemu-nbd --aio=', '') as 'threads' | 'io_uring';
    const file = path.join(scratch, `copy-in-${aio}.qcow2`);
    let server: { stop(): Promise<void> } | null = null;
    targets.set(side.id, async () => {
      await server?.stop();
      fs.rmSync(file, { force: true });
      await exec('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(size)]);
      const s = await startQemuNbd(
        file,
        aio,
        path.join(scratch, `copy-in-${aio}.sock`),
        path.join(scratch, 'copy.log'),
      );
      server = s;
      copyServers.push(s);
      return s.uri;
    });
  }
  // nbdcopy opens several connections only to an export that advertises multi-conn: say which did.
  const multiConn: string[] = [];
  for (const side of layout.sides) {
    const info = JSON.parse(await exec('nbdinfo', ['--json', side.uris[0]!]));
    multiConn.push(`${side.id} ${info.exports?.[0]?.can_multi_conn ? 'yes' : 'no'}`);
  }
  const note = `nbdcopy with its default options; multi-conn advertised for the disk read: ${multiConn.join(', ')}`;
  const reports: CaseReport[] = [];
  const copyServers: { stop(): Promise<void> }[] = [];
  for (const direction of ['in', 'out'] as const)
    for (const cache of config.caches as CacheMode[]) {
      const contenders: Contender[] = layout.sides.map((side) => ({
        server: side.id,
        run: async () => {
          let args: string[];
          if (direction === 'in') args = [baseImage, await targets.get(side.id)!()];
          else {
            fs.rmSync(out, { force: true });
            args = [side.uris[0]!, out];
          }
          const cached = await prepareCache(cache, [...(await layout.files()), baseImage]);
          const ms = await timeProcess('nbdcopy', args);
          await exec('sync', []);
          return { value: config.sizeMiB / (ms / 1000), raw: { ms }, residentBytes: cached.bytes };
        },
      }));
      reports.push(
        await measure(
          {
            id: `${layout.id}/nbdcopy-${direction}/${cache}`,
            group: 'nbdcopy',
            layout: layout.id,
            workload: direction === 'in' ? 'nbdcopy file → export' : 'nbdcopy export → file',
            cache,
            unit: 'MiB/s',
            note,
          },
          contenders,
          config.copyReps,
          log,
        ),
      );
    }
  for (const s of copyServers) await s.stop();
  fs.rmSync(out, { force: true });
  return reports;
}

/**
 * Giving a disk a new state, like for like: the whole `snapsync-agent sync`
 * CLI process (start, connect, sync, durable, exit) against the whole
 * `qemu-img create -b` process (a new overlay over the same data; the old one
 * kept, as sync keeps a safety snapshot) and a whole `qemu-img convert` copy;
 * and the `sync` operation alone, timed by a client over the WebSocket, against
 * the same whole-process qemu-img figure (qemu-img has no in-process peer).
 */
export async function syncCases(
  layout: Layout,
  config: BenchConfig,
  scratch: string,
  log: (line: string) => void,
): Promise<CaseReport[]> {
  const agent = layout.agent;
  await agent.call('createContainer', { name: 'staging', type: 'vdisk', size: config.sizeMiB * MiB });
  const env = { ...process.env, SNAPSYNC_URL: agent.url };
  let n = 0;
  const qemuImgCreate: Contender = {
    server: 'qemu-img create -b',
    run: async () => {
      const file = path.join(scratch, `staging-${n++}.qcow2`);
      const ms = await timeProcess('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        '-b',
        layout.qcow2Top,
        '-F',
        'qcow2',
        file,
      ]);
      return { value: ms, raw: { ms } };
    },
  };
  const copy: Contender = {
    server: 'qemu-img convert (full copy)',
    run: async () => {
      const file = path.join(scratch, 'staging-copy.qcow2');
      fs.rmSync(file, { force: true });
      const ms = await timeProcess('qemu-img', [
        'convert',
        '-f',
        'qcow2',
        '-O',
        'qcow2',
        layout.qcow2Top,
        file,
      ]);
      fs.rmSync(file, { force: true });
      return { value: ms, raw: { ms } };
    },
  };
  const cli: Contender = {
    server: 'snapsync',
    run: async () => {
      const ms = await timeProcess(process.execPath, [AGENT_BIN, 'sync', 'staging', layout.snapshot], env);
      return { value: ms, raw: { ms } };
    },
  };
  const op: Contender = {
    server: 'snapsync',
    run: async () => {
      const t0 = process.hrtime.bigint();
      await agent.call('sync', { target: 'staging', source: layout.snapshot });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      return { value: ms, raw: { ms } };
    },
  };
  const head = { group: 'sync' as const, layout: layout.id, cache: 'warm', unit: 'ms' as const };
  const reports = [
    await measure(
      { ...head, id: `${layout.id}/sync-cli`, workload: 'new state, whole process: snapsync-agent sync CLI' },
      [cli, qemuImgCreate, copy],
      config.syncReps,
      log,
    ),
    await measure(
      {
        ...head,
        id: `${layout.id}/sync-op`,
        workload: 'new state: sync op over WebSocket (client-timed)',
        note: 'snapsync in-process operation vs whole qemu-img processes: qemu-img has no in-process peer',
      },
      [op, qemuImgCreate],
      config.syncReps,
      log,
    ),
  ];
  for (const f of fs.readdirSync(scratch)) if (f.startsWith('staging-')) fs.rmSync(path.join(scratch, f));
  return reports;
}
