/**
 * Acknowledged writes past the staged-entry threshold are committed without a
 * flush. The commit runs in the background: the data file is synced on the
 * threadpool first (an fdatasync with gigabytes dirty takes seconds, and on
 * the event loop every NBD client and the API would wait for it), then the
 * metadata. Writes that outrun it (four times the threshold) get a commit at
 * once, so the staged batch stays bounded. The threshold is lowered here
 * (EngineCore.autoCommitEntries) so that a few blocks cross it.
 */
import * as assert from 'node:assert/strict';
import { Pool } from '../../agent/engine';
import type { EngineCore } from '../../agent/engine/core';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;

/** Which data syncs ran, and whether each ran on the threadpool (syncDataAsync) or the event loop. */
function recordSyncs(pool: Pool): Array<'threadpool' | 'event loop'> {
  const syncs: Array<'threadpool' | 'event loop'> = [];
  pool.device.setFaultInjector((op) => {
    if (op === 'sync') syncs.push(new Error().stack?.includes('syncDataAsync') ? 'threadpool' : 'event loop');
    return undefined;
  });
  return syncs;
}

describe('automatic commits of many acknowledged writes', () => {
  let pool: Pool;
  let core: EngineCore;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: BS, capacityBytes: 1024 * BS });
    pool.createContainer({ name: 'd', type: 'vdisk', size: 512 * BS });
    core = (pool as unknown as { core: EngineCore }).core;
    core.autoCommitEntries = 16;
  });
  afterEach(async () => {
    pool.device.setFaultInjector(null);
    await pool.close();
  });
  after(cleanupTempDirs);

  it('past the threshold, NBD-path writes are committed in the background: data synced on the threadpool, no flush needed', async () => {
    const syncs = recordSyncs(pool);
    for (let b = 0; b < 40; b++) await pool.writeAsync('d', b * BS, Buffer.alloc(BS, b + 1));
    // The commit runs between the writes; the last one may still be under way.
    await core.autoCommit;
    assert.equal(syncs[0], 'threadpool', `the first data sync ran off the event loop (${syncs.join(', ')})`);
    // The threshold counts the batch's entries; pendingEntries() also counts the space map's
    // changed records, so a commit mid-run that leaves 16 entries staged shows 17 there.
    assert.ok(core.batch.entryCount <= 16, `staged entries committed (${core.batch.entryCount} left)`);
    for (let b = 0; b < 40; b++)
      assert.ok(pool.read('d', b * BS, BS).equals(Buffer.alloc(BS, b + 1)), `block ${b}`);
  });

  it('writes that never yield to the background commit are committed at four times the threshold: the batch stays bounded', () => {
    let most = 0;
    for (let b = 0; b < 300; b++) {
      pool.write('d', b * BS, Buffer.alloc(BS, 9));
      most = Math.max(most, core.pendingEntries());
    }
    assert.ok(most <= 4 * 16 + 8, `at most about 64 entries staged (saw ${most})`);
    assert.ok(most > 16, 'the threshold alone did not commit them (the background commit had no turn)');
  });
});
