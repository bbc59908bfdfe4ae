/**
 * Fault drill: random device faults (EIO, ENOSPC on reads, writes and
 * syncs) under random engine operations. Each failed operation reports
 * IO_ERROR or OUT_OF_SPACE; once the fault is gone the pool works, fsck is
 * clean, and everything flushed before reads back.
 */
import { isSnapsyncError, Pool } from '../../agent/engine';
import type { DeviceOp } from '../../agent/engine/store/block-device';
import { tempDir } from '../helpers/tmp';

export interface FaultDrillResult {
  injected: number;
  survived: number;
  fsckProblems: number;
  lostWrites: number;
}

export async function faultDrill(rounds: number, seed = Date.now()): Promise<FaultDrillResult> {
  let rng = seed >>> 0;
  const random = () => {
    rng = (rng * 1103515245 + 12345) & 0x7fffffff;
    return rng / 0x7fffffff;
  };
  const pool = Pool.create(tempDir(), { blockSize: 4096, capacityBytes: 512 * 4096 });
  const result: FaultDrillResult = { injected: 0, survived: 0, fsckProblems: 0, lostWrites: 0 };
  const durable = new Map<number, number>();
  try {
    pool.createContainer({ name: 'd', type: 'vdisk', size: 128 * 4096 });
    pool.createContainer({ name: 't', type: 'vdisk', size: 4096 });
    for (let round = 0; round < rounds; round++) {
      const op = (['read', 'write', 'sync'] as DeviceOp[])[Math.floor(random() * 3)]!;
      const hot = Math.floor(random() * 128);
      pool.write('d', hot * 4096, Buffer.alloc(4096, 0xee)); // mapped data for a read, unsynced data for a flush
      const errno = random() < 0.5 ? 'EIO' : 'ENOSPC';
      let fired = false;
      pool.device.setFaultInjector((o) => {
        if (o === op && !fired) {
          fired = true;
          throw Object.assign(new Error(`injected ${errno}`), { code: errno });
        }
      });
      const slot = Math.floor(random() * 128);
      const byte = 1 + Math.floor(random() * 250);
      try {
        // Each fault meets the operation that uses it: a write, a read of written data, a flush or a sync's commit.
        if (op === 'write') pool.write('d', slot * 4096, Buffer.alloc(4096, byte));
        else if (op === 'read') pool.read('d', hot * 4096, 4096);
        else if (random() < 0.5) await pool.flush();
        else {
          pool.snapshot('d', `r${round}`);
          pool.sync('t', `d@r${round}`, { safetySnapshot: false });
        }
      } catch (err) {
        if (!isSnapsyncError(err) || !['IO_ERROR', 'OUT_OF_SPACE'].includes(err.code)) throw err;
      }
      pool.device.setFaultInjector(null);
      if (fired) result.injected++;
      // The fault is gone: the pool must work again.
      pool.write('d', slot * 4096, Buffer.alloc(4096, byte));
      await pool.flush();
      durable.set(hot, 0xee);
      durable.set(slot, byte);
      for (const s of pool.listSnapshots('d')) if (random() < 0.5) pool.deleteSnapshot(`d@${s.name}`);
      pool.reclaim();
      if ((await pool.fsck()).problems.length > 0) result.fsckProblems++;
      if (fired) result.survived++;
    }
    for (const [slot, byte] of durable) if (pool.read('d', slot * 4096, 1)[0] !== byte) result.lostWrites++;
  } finally {
    await pool.close();
  }
  return result;
}
