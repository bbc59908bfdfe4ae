/**
 * The disks both servers export, built from the same bytes through each side's
 * public tools. A layout is a chain of `depth` data layers — layer 0 a raw
 * image (snapsync: `import`; qcow2: `qemu-img convert`), layer ℓ ≥ 1
 * rewriting every depth-th 64 KiB unit with the same `qemu-io` writes (to the
 * agent's NBD export after a `snapshot`; to a new qcow2 overlay) — under one
 * empty writable top layer per exported disk (snapsync: a `clone` of the
 * chain's last snapshot; qcow2: an overlay per disk and per qemu-nbd --aio
 * mode). So both sides read through depth layers plus an empty top, and
 * write into an empty top. Before a write run the top is made empty again
 * (snapsync: delete and clone, waiting until the pool has freed the deleted
 * blocks; qcow2: a new overlay and a new qemu-nbd). Both sides' exports are
 * compared byte for byte (`qemu-img compare`) before anything is measured.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type BenchAgent, startAgent, whenDetached } from './agent';
import type { AioMode } from './config';
import { exec } from './procs';
import { layerOnly, overlay, type QemuNbd, startQemuNbd } from './qemu';

const MiB = 1024 * 1024;
/** Layer granularity: the pool block and the qcow2 cluster are both 64 KiB. */
export const UNIT = 64 * 1024;

export type ServerId = 'snapsync' | `qemu-nbd --aio=${AioMode}`;

/** One server's view of a layout: the URIs fio opens and how to empty its top layers. */
export interface Side {
  id: ServerId;
  uris: string[];
  reset(): Promise<void>;
}

export interface Layout {
  id: string;
  depthRequested: number;
  depth: number;
  disks: number;
  sides: Side[];
  agent: BenchAgent;
  /** The chain's last qcow2 layer and the snapsync snapshot of the same bytes. */
  qcow2Top: string;
  snapshot: string;
  buildSeconds: { snapsync: number; qcow2: number };
  /** Every file either side reads or writes: page-cache control covers both. */
  files(): Promise<string[]>;
  close(): Promise<void>;
}

/** The base image: pseudo-random bytes, no two MiB alike, no zero block (so neither side skips any). */
export function writeBaseImage(file: string, sizeBytes: number): void {
  const seed = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i += 4)
    seed.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ (i >>> 3) ^ 1) >>> 0, i);
  const fd = fs.openSync(file, 'w');
  try {
    for (let m = 0; m < sizeBytes / MiB; m++) {
      seed.writeUInt32LE(m, 0);
      seed.writeUInt32LE(Math.imul(m, 2246822519) >>> 0, MiB / 2);
      fs.writeSync(fd, seed, 0, MiB, m * MiB);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** qemu-io commands writing layer `layer` of a depth-`depth` chain: every depth-th unit, a pattern never 0. */
function layerCommands(layer: number, depth: number, sizeBytes: number): string[] {
  const commands: string[] = [];
  for (let u = layer; u < sizeBytes / UNIT; u += depth)
    commands.push('-c', `write -q -P ${1 + (layer % 255)} ${u * UNIT} ${UNIT}`);
  return commands;
}

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

export interface LayoutOptions {
  id: string;
  depth: number;
  disks: number;
  sizeBytes: number;
  aio: AioMode[];
  baseImage: string;
  /** Seconds the qcow2 layers may take; both chains stop at the depth reached. */
  qcow2BuildSeconds: number;
  dir: string;
  /** Also make the empty disks nbdcopy copies into. */
  copyTargets: boolean;
  /** `init --data-files` of the snapsync pool; null: init's default. */
  dataFiles: number | null;
}

/** Starts an agent on a new pool and builds both sides of a layout; leaves every server running. */
export async function buildLayout(o: LayoutOptions): Promise<Layout> {
  fs.mkdirSync(o.dir, { recursive: true });
  const capacityMiB = Math.ceil((o.sizeBytes * (3 + o.disks)) / MiB) + 256;
  const agent = await startAgent(o.dir, capacityMiB, path.dirname(o.baseImage), o.dataFiles);
  const qemus: QemuNbd[] = [];
  try {
    const build = { snapsync: 0, qcow2: 0 };
    let t0 = process.hrtime.bigint();
    await agent.call('import', { path: o.baseImage, container: 'chain', create: true });
    build.snapsync += seconds(t0);
    t0 = process.hrtime.bigint();
    let qcow2Top = path.join(o.dir, 'layer0.qcow2');
    await exec('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', o.baseImage, qcow2Top]);
    build.qcow2 += seconds(t0);
    let depth = 1;
    for (; depth < o.depth && build.qcow2 < o.qcow2BuildSeconds; depth++) {
      const commands = layerCommands(depth, o.depth, o.sizeBytes);
      t0 = process.hrtime.bigint();
      await agent.call('snapshot', { container: 'chain', name: `layer${depth - 1}` });
      await exec('qemu-io', ['-f', 'raw', ...commands, agent.uri('chain')]);
      build.snapsync += seconds(t0);
      t0 = process.hrtime.bigint();
      const next = path.join(o.dir, `layer${depth}.qcow2`);
      await overlay(qcow2Top, next, o.sizeBytes);
      await exec('qemu-io', [...commands, layerOnly(next)]);
      qcow2Top = next;
      build.qcow2 += seconds(t0);
    }
    await agent.call('snapshot', { container: 'chain', name: 'top' });
    const disks = Array.from({ length: o.disks }, (_, i) => `disk${i}`);
    for (const disk of disks) await agent.call('clone', { source: 'chain@top', name: disk });
    if (o.copyTargets)
      await agent.call('createContainer', { name: 'copy-in', type: 'vdisk', size: o.sizeBytes });
    const baseline = (await agent.call('info', {})).usedBlocks;

    const snapsync: Side = {
      id: 'snapsync',
      uris: disks.map((d) => agent.uri(d)),
      reset: async () => {
        for (const disk of disks)
          await whenDetached(() => agent.call('deleteContainer', { container: disk }));
        if (!(await agent.settle(baseline)))
          throw new Error('the pool did not free a deleted disk within 30 s');
        for (const disk of disks) await agent.call('clone', { source: 'chain@top', name: disk });
      },
    };
    const sides: Side[] = [snapsync];
    for (const aio of o.aio) {
      const tops = disks.map((d) => path.join(o.dir, `${d}-${aio}.qcow2`));
      const servers: QemuNbd[] = [];
      const start = async () => {
        servers.length = 0;
        for (const [i, top] of tops.entries()) {
          await overlay(qcow2Top, top, o.sizeBytes);
          const server = await startQemuNbd(
            top,
            aio,
            path.join(o.dir, `${disks[i]}-${aio}.sock`),
            path.join(o.dir, `qemu-nbd-${aio}.log`),
          );
          servers.push(server);
          qemus.push(server);
        }
      };
      await start();
      sides.push({
        id: `qemu-nbd --aio=${aio}`,
        uris: servers.map((s) => s.uri),
        reset: async () => {
          for (const s of servers) await s.stop();
          await start();
        },
      });
    }
    // Same client, same bytes: every export of both sides compares equal before anything is measured.
    const first = sides[1];
    if (first)
      await exec('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'raw', snapsync.uris[0]!, first.uris[0]!]);
    const qcow2Files = () =>
      fs
        .readdirSync(o.dir)
        .filter((f) => f.endsWith('.qcow2'))
        .map((f) => path.join(o.dir, f));
    return {
      id: o.id,
      depthRequested: o.depth,
      depth,
      disks: o.disks,
      sides,
      agent,
      qcow2Top,
      snapshot: 'chain@top',
      buildSeconds: build,
      files: async () => [...(await agent.files()), ...qcow2Files()],
      close: async () => {
        for (const q of qemus) await q.stop();
        await agent.stop();
      },
    };
  } catch (err) {
    for (const q of qemus) await q.stop();
    await agent.stop();
    throw err;
  }
}
