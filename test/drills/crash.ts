/**
 * Crash drill: a child agent under a mixed load (writes with flushes,
 * snapshots, syncs, clones, reverts, flattens, deletes) is killed with
 * SIGKILL at a random moment, again and again. After each restart: fsck is
 * clean; every write acknowledged before a completed flush reads back exactly
 * (a checksummed log); every block holds a whole record, old or newer, never
 * garbage; every sync happened entirely or not at all.
 */
import { createHash } from 'node:crypto';
import { AgentClient } from '../../agent/client/client';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';

const BS = 4096;
const SLOTS = 32;

export interface CrashDrillResult {
  cycles: number;
  flushedRecords: number;
  lostWrites: number;
  tornBlocks: number;
  partialSyncs: number;
  fsckProblems: number;
  /** Completed operations by kind (what the kills interrupted). */
  operations: Record<string, number>;
}

const record = (seq: number): Buffer => {
  const b = Buffer.alloc(BS, seq % 251);
  b.writeUInt32LE(seq, 0);
  return b;
};
const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function crashDrill(cycles: number, seed = Date.now()): Promise<CrashDrillResult> {
  let rng = seed >>> 0;
  const random = () => {
    rng = (rng * 1103515245 + 12345) & 0x7fffffff;
    return rng / 0x7fffffff;
  };
  let agent: AgentProcess = await startAgentProcess();
  const { poolDir, token } = agent;
  const setup = await AgentClient.connect(agent.url, { token });
  // The sync source `disk@base` is all P; the mirror starts as all M, half the size. A sync (and any
  // revert to a safety snapshot) leaves the mirror entirely one or the other, at the matching size.
  await setup.call('createContainer', { name: 'disk', type: 'vdisk', size: SLOTS * BS });
  await setup.write('disk', 0, Buffer.alloc(SLOTS * BS, 0x50));
  await setup.call('snapshot', { container: 'disk', name: 'base' });
  await setup.call('createContainer', { name: 'mirror', type: 'vdisk', size: (SLOTS / 2) * BS });
  await setup.write('mirror', 0, Buffer.alloc((SLOTS / 2) * BS, 0x4d));
  await setup.call('flush', {});
  await setup.close();
  const flushed = new Map<number, { seq: number; hash: string }>();
  const result: CrashDrillResult = {
    cycles: 0,
    flushedRecords: 0,
    lostWrites: 0,
    tornBlocks: 0,
    partialSyncs: 0,
    fsckProblems: 0,
    operations: {},
  };
  const done = (op: string) => {
    result.operations[op] = (result.operations[op] ?? 0) + 1;
  };
  let seq = 1;
  const loadErrors: string[] = [];
  let snapshotCount = 0;
  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      const client = await AgentClient.connect(agent.url, { token, retries: 0 });
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
          for (const [slot, s] of batch) flushed.set(slot, { seq: s, hash: hash(record(s)) });
          done('write+flush');
          const dice = random();
          const name = `s${++snapshotCount}`;
          if (dice < 0.2) {
            await client.call('snapshot', { container: 'disk', name });
            done('snapshot');
          } else if (dice < 0.35) {
            await client.call('sync', {
              target: 'mirror',
              source: 'disk@base',
              safetySnapshot: random() < 0.5,
            });
            done('sync');
          } else if (dice < 0.45) {
            await client.call('clone', { source: 'disk@base', name: `c${snapshotCount}` });
            done('clone');
          } else if (dice < 0.5) {
            await client.call('flatten', { container: 'mirror' });
            done('flatten');
          } else if (dice < 0.55) {
            const safety = (await client.call('listSnapshots', { container: 'mirror' })).filter(
              (x) => x.kind === 'safety',
            );
            const last = safety[safety.length - 1];
            if (last) {
              await client.call('revert', { container: 'mirror', snapshot: last.name });
              done('revert');
            }
          } else if (dice < 0.65) {
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
      await client.close().catch(() => null);
      agent = await startAgentProcess({ poolDir, token });
      const check = await AgentClient.connect(agent.url, { token });
      const report = await check.call('fsck', {});
      result.fsckProblems += report.problems.length;
      const disk = await check.read('disk', 0, SLOTS * BS);
      for (let slot = 0; slot < SLOTS; slot++) {
        const block = disk.subarray(slot * BS, (slot + 1) * BS);
        const s = block.readUInt32LE(0);
        const whole =
          s === 0x50505050 ? block.every((b) => b === 0x50) : block.subarray(4).every((b) => b === s % 251);
        if (!whole) result.tornBlocks++;
        const last = flushed.get(slot);
        if (last && (s < last.seq || (s === last.seq && hash(block) !== last.hash))) result.lostWrites++;
      }
      // A sync is all or nothing: the mirror is entirely the base (P, full size) or entirely its own (M, half size).
      const mirrorSize = (await check.call('describe', { container: 'mirror' })).size;
      const mirror = await check.read('mirror', 0, mirrorSize);
      const synced = mirrorSize === SLOTS * BS && mirror.every((b) => b === 0x50);
      const own = mirrorSize === (SLOTS / 2) * BS && mirror.every((b) => b === 0x4d);
      if (!synced && !own) result.partialSyncs++;
      await check.close();
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
