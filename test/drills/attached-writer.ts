/**
 * The crash drill's attached writer: an NBD client writing checksummed
 * records to vdisk `att` with LANES requests in flight (each lane its own
 * slots, flushing every few writes: the agent runs them concurrently, their
 * disk I/O on its threadpool) while a forced sync of
 * `att` drains and disconnects it, and a SIGKILL may land anywhere in
 * between. After the restart: a sync that was answered kept a safety
 * snapshot holding exactly the writes the client had acknowledged (none it
 * sent after); a sync the kill cut off left either that snapshot or `att`
 * itself with every write whose flush was acknowledged.
 */
import type { AgentClient } from '../../agent/client/client';
import { CMD } from '../../agent/nbd/constants';
import { RawClient } from '../nbd/helpers/raw-client';
import { diskProblems, type FlushedLog, logEntry, record } from './crash';

const BS = 4096;
const SLOTS = 32;
const BASE = 0x50;
/** Concurrent writers on the one connection; lane l writes the slots ≡ l (mod LANES). */
const LANES = 4;
/** The writer's record numbers: a range of their own, so the disk load's sequence is left alone. */
let nextSeq = 2_000_000_000;

export async function setUpAttached(client: AgentClient): Promise<void> {
  for (const name of ['attsrc', 'att']) {
    await client.call('createContainer', { name, type: 'vdisk', size: SLOTS * BS });
    await client.write(name, 0, Buffer.alloc(SLOTS * BS, BASE));
  }
  await client.call('snapshot', { container: 'attsrc', name: 'base' });
}

/** One cycle's session: what the client was told, and what the forced sync answered. */
export interface AttachedCycle {
  /** Slot → last record the client had acknowledged. */
  acked: Map<number, number>;
  /** Slot → last record whose FLUSH was acknowledged. */
  flushed: FlushedLog;
  /** Records sent but never acknowledged (after the detach, or cut off by the kill). */
  unacked: Map<number, number>;
  /** The safety snapshot of an answered forced sync. */
  safety: string | null;
  /** Safety snapshots of `att` before the cycle. */
  safetyBefore: number;
  /** Resolves when the writer and the sync have ended (by the kill at the latest). */
  done: Promise<void>;
}

/** Starts the writer on `att` and, after `syncAfterMs`, a forced sync of `att` while it writes. */
export async function startAttached(
  client: AgentClient,
  nbdUrl: string,
  random: () => number,
  syncAfterMs: number,
): Promise<AttachedCycle> {
  const safetyBefore = (await client.call('listSnapshots', { container: 'att' })).length;
  const { client: nbd } = await RawClient.open(Number(new URL(nbdUrl).port), 'att', { structured: false });
  const cycle: AttachedCycle = {
    acked: new Map(),
    flushed: new Map(),
    unacked: new Map(),
    safety: null,
    safetyBefore,
    done: Promise.resolve(),
  };
  const lane = async (l: number) => {
    for (let n = 1; ; n++) {
      const slot = l + LANES * Math.floor(random() * (SLOTS / LANES));
      const seq = nextSeq++;
      if (!(await ok(nbd, nbd.request(CMD.WRITE, 0, slot * BS, BS, record(seq))))) {
        cycle.unacked.set(slot, seq);
        return;
      }
      cycle.acked.set(slot, seq);
      if (n % 4 === 0) {
        // Whatever any lane had acknowledged when the FLUSH went out is durable once it is answered.
        const pending = new Map(cycle.acked);
        if (!(await ok(nbd, nbd.request(CMD.FLUSH, 0, 0, 0)))) return;
        for (const [s, q] of pending)
          if ((cycle.flushed.get(s)?.seq ?? 0) < q) cycle.flushed.set(s, logEntry(q));
      }
    }
  };
  const writer = Promise.all(Array.from({ length: LANES }, (_, l) => lane(l)));
  const sync = (async () => {
    await new Promise((resolve) => setTimeout(resolve, syncAfterMs));
    try {
      const r = await client.call('sync', { target: 'att', source: 'attsrc@base', force: true });
      cycle.safety = r.safetySnapshot?.name ?? null;
    } catch {
      // Cut off by the kill.
    }
  })();
  cycle.done = Promise.all([writer, sync]).then(() => nbd.destroy());
  return cycle;
}

async function ok(nbd: RawClient, handle: bigint): Promise<boolean> {
  try {
    return (await nbd.replyFor(handle)).error === 0;
  } catch {
    return false; // the connection closed (detached, or the agent was killed)
  }
}

/** Problems after the restart, one string each; then clears `att`'s safety snapshots for the next cycle. */
export async function checkAttached(check: AgentClient, cycle: AttachedCycle): Promise<string[]> {
  const problems: string[] = [];
  const safeties = (await check.call('listSnapshots', { container: 'att' })).filter(
    (s) => s.kind === 'safety',
  );
  if (cycle.safety !== null) {
    // Answered: the safety snapshot is exact.
    const snap = await check.read('att', 0, SLOTS * BS, cycle.safety);
    for (const [slot, seq] of cycle.acked)
      if (!snap.subarray(slot * BS, (slot + 1) * BS).equals(record(seq)))
        problems.push(`attached lost: slot ${slot} acknowledged #${seq}, not in ${cycle.safety}`);
    for (const [slot, seq] of cycle.unacked)
      if (snap.subarray(slot * BS, (slot + 1) * BS).equals(record(seq)))
        problems.push(`attached after: #${seq} (never acknowledged) is in ${cycle.safety}`);
    for (let slot = 0; slot < SLOTS; slot++)
      if (!cycle.acked.has(slot) && !snap.subarray(slot * BS, (slot + 1) * BS).every((b) => b === BASE))
        problems.push(`attached after: slot ${slot} was never acknowledged, yet changed in ${cycle.safety}`);
  } else {
    // Cut off: the sync committed (a new safety snapshot) or not (att itself); flushed writes are in it.
    const committed = safeties.length > cycle.safetyBefore;
    const last = safeties[safeties.length - 1];
    const state = committed
      ? await check.read('att', 0, SLOTS * BS, last!.name)
      : await check.read('att', 0, SLOTS * BS);
    for (const p of diskProblems(state, cycle.flushed)) problems.push(`attached ${p}`);
  }
  for (const s of safeties) await check.call('deleteSnapshot', { snapshot: `att@${s.name}` });
  // Start each cycle from the base again, so a record of an earlier cycle never passes for this one's.
  await check.call('sync', { target: 'att', source: 'attsrc@base', safetySnapshot: false, force: true });
  // The forced sync fenced `att` (kept across the restart); its writer is gone: let the next cycle's in.
  await check.call('unfence', { container: 'att' });
  return problems;
}
