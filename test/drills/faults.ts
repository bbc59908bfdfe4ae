/**
 * Fault drill: random device faults under random engine operations — EIO on
 * reads, writes and syncs, ENOSPC on writes and syncs (read(2) never reports
 * it), and short writes (each system call of a write moves at most a random
 * number of bytes, or none). EIO fails the operation with IO_ERROR, ENOSPC
 * with OUT_OF_SPACE, a write that makes no progress with IO_ERROR; a short
 * write that does progress is finished by the device and reads back whole.
 * Once the fault is gone the pool writes, flushes and reads back, fsck is
 * clean, and everything flushed before reads back.
 */
import { isSnapsyncError, Pool } from '../../agent/engine';
import type { DeviceOp } from '../../agent/engine/store/block-device';
import { tempDir } from '../helpers/tmp';

export type InjectedFault = 'EIO' | 'ENOSPC' | 'short write' | 'stalled write';

export interface FaultDrillResult {
  injected: number;
  /** Faults whose operation ended as it must, after which the pool worked and fsck was clean. */
  survived: number;
  byFault: Partial<Record<InjectedFault, number>>;
  fsckProblems: number;
  lostWrites: number;
  /** The first faults that were not survived, and why. */
  failures: string[];
}

/** What the operation under each fault must end with: an error code, or success. */
const EXPECTED: Record<InjectedFault, string> = {
  EIO: 'IO_ERROR',
  ENOSPC: 'OUT_OF_SPACE',
  'stalled write': 'IO_ERROR',
  'short write': 'ok',
};

const FAULTS: Record<DeviceOp, InjectedFault[]> = {
  read: ['EIO'],
  write: ['EIO', 'ENOSPC', 'short write', 'stalled write'],
  sync: ['EIO', 'ENOSPC'],
};

export async function faultDrill(rounds: number, seed = Date.now()): Promise<FaultDrillResult> {
  let rng = seed >>> 0;
  const random = () => {
    rng = (rng * 1103515245 + 12345) & 0x7fffffff;
    return rng / 0x7fffffff;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const pool = Pool.create(tempDir(), { blockSize: 4096, capacityBytes: 512 * 4096 });
  const result: FaultDrillResult = {
    injected: 0,
    survived: 0,
    byFault: {},
    fsckProblems: 0,
    lostWrites: 0,
    failures: [],
  };
  const durable = new Map<number, number>();
  try {
    pool.createContainer({ name: 'd', type: 'vdisk', size: 128 * 4096 });
    pool.createContainer({ name: 't', type: 'vdisk', size: 4096 });
    for (let round = 0; round < rounds; round++) {
      const op = pick(['read', 'write', 'sync'] as const);
      const fault = pick(FAULTS[op]);
      const hot = Math.floor(random() * 128);
      pool.write('d', hot * 4096, Buffer.alloc(4096, 0xee)); // mapped data for a read, unsynced data for a flush
      // A short write moves 1..4095 bytes a call; a stalled one none.
      const limit = fault === 'short write' ? 1 + Math.floor(random() * 4095) : 0;
      let fired = false;
      pool.device.setFaultInjector((o) => {
        if (o !== op || fired) return;
        fired = true;
        if (fault === 'short write' || fault === 'stalled write') return limit;
        throw Object.assign(new Error(`injected ${fault}`), { code: fault });
      });
      result.injected++;
      result.byFault[fault] = (result.byFault[fault] ?? 0) + 1;
      const slot = Math.floor(random() * 128);
      const data = Buffer.alloc(4096, 1 + Math.floor(random() * 250));
      const problems: string[] = [];
      let outcome = 'ok';
      try {
        // Each fault meets the operation that uses it: a write, a read of written data, a flush or a sync's commit.
        if (op === 'write') pool.write('d', slot * 4096, data);
        else if (op === 'read') pool.read('d', hot * 4096, 4096);
        else if (random() < 0.5) await pool.flush();
        else {
          pool.snapshot('d', `r${round}`);
          pool.sync('t', `d@r${round}`, { safetySnapshot: false });
        }
      } catch (err) {
        outcome = isSnapsyncError(err) ? err.code : String(err);
      }
      pool.device.setFaultInjector(null);
      if (!fired) problems.push('the fault never fired');
      if (outcome !== EXPECTED[fault]) problems.push(`ended with ${outcome}, not ${EXPECTED[fault]}`);
      if (fault === 'short write' && outcome === 'ok' && !pool.read('d', slot * 4096, 4096).equals(data))
        problems.push(`the short write (${limit} bytes a call) did not read back whole`);
      // The fault is gone: the pool must work again.
      try {
        pool.write('d', slot * 4096, data);
        await pool.flush();
        if (!pool.read('d', slot * 4096, 4096).equals(data))
          problems.push('a write after the fault did not read back');
        durable.set(hot, 0xee);
        durable.set(slot, data[0]!);
        for (const s of pool.listSnapshots('d')) if (random() < 0.5) pool.deleteSnapshot(`d@${s.name}`);
        pool.reclaim();
        const fsck = (await pool.fsck()).problems;
        if (fsck.length > 0) {
          result.fsckProblems++;
          problems.push(`fsck: ${fsck.map((p) => p.code).join(', ')}`);
        }
      } catch (err) {
        problems.push(`the pool failed after the fault: ${String(err)}`);
      }
      if (problems.length === 0) result.survived++;
      else if (result.failures.length < 5)
        result.failures.push(`round ${round}, ${fault} on ${op}: ${problems.join('; ')}`);
    }
    for (const [slot, byte] of durable) if (pool.read('d', slot * 4096, 1)[0] !== byte) result.lostWrites++;
  } finally {
    await pool.close();
  }
  return result;
}
