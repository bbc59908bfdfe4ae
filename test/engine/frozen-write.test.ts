/**
 * A frozen table can never be written, by construction: the byte-level write,
 * zero and trim paths refuse a snapshot's (frozen) table and a discarded one
 * with FROZEN_TABLE before touching anything, and a frozen table records how
 * many entries it froze with, which fsck checks (FROZEN_TABLE_WRITTEN, see
 * fsck.test.ts). The public API never names a frozen table; this reaches
 * below it, as a bug in the engine would.
 */
import * as assert from 'node:assert/strict';
import { isSnapsyncError, Pool } from '../../agent/engine';
import { writeRange, zeroBlock, zeroRange } from '../../agent/engine/block-io';
import type { EngineCore } from '../../agent/engine/core';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;

describe('a frozen table is never written', () => {
  after(cleanupTempDirs);

  it('write, zero and trim of a snapshot table are refused with FROZEN_TABLE and change nothing', async () => {
    const pool = Pool.create(tempDir(), { blockSize: BS, capacityBytes: 256 * BS });
    try {
      pool.createContainer({ name: 'd', type: 'vdisk', size: 8 * BS });
      pool.write('d', 0, Buffer.alloc(2 * BS, 7));
      const snap = pool.snapshot('d', 's');
      const core = (pool as unknown as { core: EngineCore }).core;
      const record = core.catalog.snapshots.get(snap.id)!;
      const table = core.tables.get(record.table!);
      assert.equal(table.frozen, true);
      assert.equal(table.frozenEntries, 2, 'the table records what it froze with');
      const refused = (err: unknown) => isSnapsyncError(err, 'FROZEN_TABLE');
      assert.throws(() => writeRange(core, table, 0, Buffer.alloc(BS, 9)), refused);
      assert.throws(() => writeRange(core, table, 5 * BS, Buffer.alloc(10, 9)), refused);
      assert.throws(() => zeroRange(core, table, 0, 2 * BS), refused);
      assert.throws(() => zeroBlock(core, table, 1), refused);
      await pool.flush();
      assert.deepEqual(pool.readSnapshot('d@s', 0, 2 * BS), Buffer.alloc(2 * BS, 7));
      assert.deepEqual((await pool.fsck()).problems, []);
      // The container's own (current) table still takes writes, and the snapshot does not see them.
      pool.write('d', 0, Buffer.alloc(BS, 1));
      assert.deepEqual(pool.readSnapshot('d@s', 0, BS), Buffer.alloc(BS, 7));
      // A discarded table is refused too.
      const current = core.tables.get(core.catalog.containerByName('d').table!);
      pool.deleteContainer('d', { recursive: true });
      assert.throws(() => writeRange(core, current, 0, Buffer.alloc(BS, 9)), refused);
      assert.deepEqual((await pool.fsck()).problems, []);
    } finally {
      await pool.close();
    }
  });
});
