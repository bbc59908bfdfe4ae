/**
 * Crash drill: a child agent under a mixed load (writes with flushes,
 * snapshots, syncs of a vdisk and of a two-member VM, clones, reverts,
 * flattens, deletes) is killed with SIGKILL at a random moment, again and
 * again. After each restart: fsck is clean; every write acknowledged before a
 * completed flush reads back exactly (a checksummed log); every block holds a
 * whole record, old or newer, never garbage; every sync happened entirely or
 * not at all, across all of a VM's members.
 */
import { createHash } from 'node:crypto';
import { AgentClient } from '../../agent/client/client';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { checkAttached, setUpAttached, startAttached } from './attached-writer';

const BS = 4096;
const SLOTS = 32;
/** The disk's starting byte (P): no record looks like it, so a slot that reads it back holds no record. */
const BASE = 0x50;

export interface CrashDrillResult {
  cycles: number;
  /** Cycles after which a check found something new wrong (survived = cycles − failedCycles). */
  failedCycles: number;
  flushedRecords: number;
  lostWrites: number;
  tornBlocks: number;
  partialSyncs: number;
  fsckProblems: number;
  /** An NBD writer's acknowledged write missing from (or a later one in) a forced sync's safety snapshot. */
  attachedProblems: number;
  /** Completed operations by kind (what the kills interrupted). */
  operations: Record<string, number>;
  /** The first problems found, for the failure message. */
  failures: string[];
}

export const record = (seq: number): Buffer => {
  const b = Buffer.alloc(BS, seq % 251);
  b.writeUInt32LE(seq, 0);
  return b;
};
const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A flushed record: its sequence number and checksum. */
export type FlushedLog = Map<number, { seq: number; hash: string }>;
export const logEntry = (seq: number) => ({ seq, hash: hash(record(seq)) });

/**
 * Problems in the disk's slots, one string per problem (the block's checksum
 * makes each distinct). A slot may hold its last flushed record or a newer
 * one; an older record, or the starting pattern where a record was flushed,
 * is a lost write; anything but a whole record or the whole pattern is torn.
 */
export function diskProblems(disk: Buffer, flushed: FlushedLog): string[] {
  const problems: string[] = [];
  for (let slot = 0; slot < SLOTS; slot++) {
    const block = disk.subarray(slot * BS, (slot + 1) * BS);
    const base = block.every((b) => b === BASE);
    const seq = base ? 0 : block.readUInt32LE(0);
    const whole = base || (seq > 0 && block.subarray(4).every((b) => b === seq % 251));
    if (!whole) problems.push(`torn: slot ${slot} ${hash(block)}`);
    const last = flushed.get(slot);
    if (last && (seq < last.seq || (seq === last.seq && hash(block) !== last.hash)))
      problems.push(`lost: slot ${slot} held #${last.seq}, reads #${seq} ${hash(block)}`);
  }
  return problems;
}

/** The VMs' contents: `prod` is the sync source, `stag` the target; identity hooks keep stag's values in a synced config. */
const config = (id: string, host: string, filler: string) =>
  Buffer.from(`instance-id: ${id}\nlocal-hostname: ${host}\n# ${filler}\n`);
const PROD_CONFIG = config('i-prod-0001', 'prod-web', 'P'.repeat(9000));
const STAG_CONFIG = config('i-stag-0001', 'stag-web', 's'.repeat(100));
const SYNCED_CONFIG = config('i-stag-0001', 'stag-web', 'P'.repeat(9000));
const PROD_DISK = Buffer.alloc(8 * BS, 0x51);
const STAG_DISK = Buffer.alloc(4 * BS, 0x53);

export async function crashDrill(cycles: number, seed = Date.now()): Promise<CrashDrillResult> {
  let rng = seed >>> 0;
  const random = () => {
    rng = (rng * 1103515245 + 12345) & 0x7fffffff;
    return rng / 0x7fffffff;
  };
  // With NBD: a client writes `att` while a forced sync disconnects it.
  const nbdArgs = ['--nbd', '127.0.0.1:0'];
  let agent: AgentProcess = await startAgentProcess({ args: nbdArgs });
  const { poolDir, token } = agent;
  const setup = await AgentClient.connect(agent.url, { token });
  // The sync source `disk@base` is all P; the mirror starts as all M, half the size. A sync (and any
  // revert to a safety snapshot) leaves the mirror entirely one or the other, at the matching size.
  await setup.call('createContainer', { name: 'disk', type: 'vdisk', size: SLOTS * BS });
  await setup.write('disk', 0, Buffer.alloc(SLOTS * BS, BASE));
  await setup.call('snapshot', { container: 'disk', name: 'base' });
  await setup.call('createContainer', { name: 'mirror', type: 'vdisk', size: (SLOTS / 2) * BS });
  await setup.write('mirror', 0, Buffer.alloc((SLOTS / 2) * BS, 0x4d));
  // Two VMs of a config file and a disk: a sync of stag to prod@base changes both members or neither.
  for (const [vm, cfg, disk] of [
    ['prod', PROD_CONFIG, PROD_DISK],
    ['stag', STAG_CONFIG, STAG_DISK],
  ] as const) {
    await setup.call('createContainer', { name: vm, type: 'vm' });
    await setup.call('createContainer', { name: `${vm}-config`, type: 'file' });
    await setup.call('createContainer', { name: `${vm}-disk`, type: 'vdisk', size: disk.length });
    await setup.call('addMember', { vm, role: 'config', member: `${vm}-config` });
    await setup.call('addMember', { vm, role: 'disk0', member: `${vm}-disk` });
    await setup.write(`${vm}-config`, 0, cfg);
    await setup.write(`${vm}-disk`, 0, disk);
  }
  await setup.call('snapshot', { container: 'prod', name: 'base' });
  await setUpAttached(setup);
  await setup.call('flush', {});
  await setup.close();
  const flushed: FlushedLog = new Map();
  const result: CrashDrillResult = {
    cycles: 0,
    failedCycles: 0,
    flushedRecords: 0,
    lostWrites: 0,
    tornBlocks: 0,
    partialSyncs: 0,
    fsckProblems: 0,
    attachedProblems: 0,
    operations: {},
    failures: [],
  };
  const done = (op: string) => {
    result.operations[op] = (result.operations[op] ?? 0) + 1;
  };
  /** Problems already counted: a damaged state that outlives later kills fails only the cycle that made it. */
  const seen = new Set<string>();
  let seq = 1;
  const loadErrors: string[] = [];
  let snapshotCount = 0;
  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      const client = await AgentClient.connect(agent.url, { token, retries: 0 });
      const attached = await startAttached(client, agent.nbd!, random, random() * 100);
      const revertToSafety = async (container: string) => {
        const safety = (await client.call('listSnapshots', { container })).filter((x) => x.kind === 'safety');
        const last = safety[safety.length - 1];
        if (!last) return false;
        await client.call('revert', { container, snapshot: last.name });
        return true;
      };
      // Load runs until the kill cuts it off.
      const load = (async () => {
        for (;;) {
          const batch: Array<[number, number]> = [];
          for (let i = 0; i < 4; i++, seq++) {
            const slot = Math.floor(random() * SLOTS);
            await client.write('disk', slot * BS, record(seq));
            batch.push([slot, seq]);
          }
          await client.call('flush', {});
          for (const [slot, s] of batch) flushed.set(slot, logEntry(s));
          done('write+flush');
          const dice = random();
          const name = `s${++snapshotCount}`;
          if (dice < 0.2) {
            await client.call('snapshot', { container: 'disk', name });
            done('snapshot');
          } else if (dice < 0.3) {
            await client.call('sync', {
              target: 'mirror',
              source: 'disk@base',
              safetySnapshot: random() < 0.5,
            });
            done('sync');
          } else if (dice < 0.4) {
            await client.call('sync', {
              target: 'stag',
              source: 'prod@base',
              safetySnapshot: random() < 0.5,
            });
            done('vm sync');
          } else if (dice < 0.5) {
            await client.call('clone', { source: 'disk@base', name: `c${snapshotCount}` });
            done('clone');
          } else if (dice < 0.55) {
            await client.call('flatten', { container: 'mirror' });
            done('flatten');
          } else if (dice < 0.6) {
            if (await revertToSafety('mirror')) done('revert');
          } else if (dice < 0.65) {
            if (await revertToSafety('stag')) done('vm revert');
          } else if (dice < 0.75) {
            const clones = (await client.call('listContainers', {})).filter((c) => c.name.startsWith('c'));
            if (clones[0]) {
              await client.call('deleteContainer', { container: clones[0].name, recursive: true });
              done('delete');
            }
          }
        }
      })().catch((err: Error & { code?: string }) => {
        // The kill ends the load with a lost connection; anything else is a failure of the drill itself.
        if (!['CONNECTION_LOST', 'CONNECTION_FAILED', 'CLOSED'].includes(err.code ?? ''))
          loadErrors.push(String(err));
      });
      await new Promise((resolve) => setTimeout(resolve, 20 + random() * 120));
      await agent.kill();
      await load;
      await attached.done;
      if (attached.safety) done('forced sync');
      await client.close().catch(() => null);
      agent = await startAgentProcess({ poolDir, token, args: nbdArgs });
      const check = await AgentClient.connect(agent.url, { token });
      const problems: string[] = [];
      for (const p of (await check.call('fsck', {})).problems)
        problems.push(`fsck: ${p.code} ${p.message} ${JSON.stringify(p.details)}`);
      problems.push(...diskProblems(await check.read('disk', 0, SLOTS * BS), flushed));
      const content = async (container: string) => {
        const { size } = await check.call('describe', { container });
        return check.read(container, 0, size);
      };
      // A sync is all or nothing: the mirror is entirely the base (P, full size) or entirely its own (M, half size).
      const mirror = await content('mirror');
      const mirrorSynced = mirror.length === SLOTS * BS && mirror.every((b) => b === BASE);
      const mirrorOwn = mirror.length === (SLOTS / 2) * BS && mirror.every((b) => b === 0x4d);
      if (!mirrorSynced && !mirrorOwn) problems.push(`partial sync: mirror ${hash(mirror)}`);
      // ... and across a VM's members: both are prod's (config with stag's identity) or both stag's own.
      const [stagConfig, stagDisk] = [await content('stag-config'), await content('stag-disk')];
      const vmSynced = stagConfig.equals(SYNCED_CONFIG) && stagDisk.equals(PROD_DISK);
      const vmOwn = stagConfig.equals(STAG_CONFIG) && stagDisk.equals(STAG_DISK);
      if (!vmSynced && !vmOwn) problems.push(`partial sync: vm ${hash(stagConfig)} ${hash(stagDisk)}`);
      problems.push(...(await checkAttached(check, attached)));
      await check.close();
      const fresh = problems.filter((p) => !seen.has(p));
      for (const p of fresh) seen.add(p);
      const count = (kind: string) => fresh.filter((p) => p.startsWith(kind)).length;
      result.fsckProblems += count('fsck:');
      result.lostWrites += count('lost:');
      result.tornBlocks += count('torn:');
      result.partialSyncs += count('partial sync:');
      result.attachedProblems += count('attached');
      if (fresh.length > 0) {
        result.failedCycles++;
        if (result.failures.length < 5)
          result.failures.push(`cycle ${cycle}: ${fresh.slice(0, 3).join('; ')}`);
      }
      seq += 1000; // records of a batch killed before its flush may be on disk: keep sequence numbers unique
      result.cycles++;
    }
    result.flushedRecords = flushed.size;
    if (loadErrors.length > 0)
      throw new Error(`the drill's load failed: ${loadErrors.slice(0, 3).join('; ')}`);
  } finally {
    await agent.stop();
  }
  return result;
}
