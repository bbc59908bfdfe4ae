/**
 * Pool.rehearse (EngineCore.rehearse): operations run as one transaction and
 * are always rolled back. What they would refuse is thrown; what they would
 * do is not done — in memory, in the store (after a reopen) and in space —
 * and a rehearsal that would have had to commit part way gives no verdict.
 */
import * as assert from 'node:assert/strict';
import { Pool } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 64 * 1024;

/** What a user would compare: the containers, their snapshots, the space, the bytes. */
function stateOf(pool: Pool) {
  return {
    containers: pool.listContainers(),
    snapshots: pool.listSnapshots(undefined, { includeHidden: true }),
    info: pool.info(),
    target: pool.read('target', 0, 4 * BS).toString('hex'),
  };
}

describe('Pool.rehearse: run, report, roll back', () => {
  let dir: string;
  let pool: Pool;
  beforeEach(() => {
    dir = tempDir();
    pool = Pool.create(dir, { blockSize: BS, capacityBytes: 64 * BS });
    pool.createContainer({ name: 'source', type: 'vdisk', size: 4 * BS });
    pool.createContainer({ name: 'target', type: 'vdisk', size: 4 * BS });
    pool.write('source', 0, Buffer.alloc(2 * BS, 0xaa));
    pool.snapshot('source', 's1');
    pool.write('target', 0, Buffer.alloc(4 * BS, 0xbb));
  });
  afterEach(async () => {
    await pool.close();
  });
  after(cleanupTempDirs);

  it('a sync that would succeed: true, and nothing changed, in memory or on disk', async () => {
    await pool.flush();
    const before = stateOf(pool);
    assert.equal(
      pool.rehearse(() => pool.sync('target', 'source@s1', { safetySnapshot: true })),
      true,
    );
    assert.deepEqual(stateOf(pool), before);
    await pool.close();
    pool = Pool.open(dir);
    assert.deepEqual(stateOf(pool), { ...before, info: pool.info() });
    assert.equal(pool.info().usedBlocks, before.info.usedBlocks);
    // The real one then does what the rehearsal did not.
    const result = pool.sync('target', 'source@s1', { safetySnapshot: true });
    assert.ok(result.safetySnapshot);
    assert.ok(pool.read('target', 0, BS).equals(Buffer.alloc(BS, 0xaa)));
    assert.deepEqual((await pool.fsck()).problems, []);
  });

  it('an operation it would refuse: that error, and nothing changed', async () => {
    const before = stateOf(pool);
    assert.throws(() => pool.rehearse(() => pool.sync('target', 'source@no-such')), { code: 'NOT_FOUND' });
    assert.throws(() => pool.rehearse(() => pool.resize('target', BS)), { code: 'INVALID_ARGUMENT' });
    // Refused after a first step that did change memory: that step is undone too.
    assert.throws(
      () =>
        pool.rehearse(() => {
          pool.resize('target', 8 * BS);
          pool.deleteContainer('source');
        }),
      { code: 'HAS_DEPENDENTS' },
    );
    assert.deepEqual(stateOf(pool), before);
    assert.equal(pool.describe('target').size, 4 * BS);
    assert.deepEqual((await pool.fsck()).problems, []);
  });

  it('keeps writes acknowledged before it (committed first), and takes no blocks', async () => {
    pool.write('target', 2 * BS, Buffer.alloc(BS, 0xcc));
    const used = pool.info().usedBlocks;
    pool.rehearse(() => {
      pool.sync('target', 'source@s1');
      pool.write('target', 3 * BS, Buffer.alloc(BS, 0xdd));
    });
    assert.equal(pool.info().usedBlocks, used);
    assert.ok(pool.read('target', 2 * BS, BS).equals(Buffer.alloc(BS, 0xcc)));
    assert.ok(pool.read('target', 3 * BS, BS).equals(Buffer.alloc(BS, 0xbb)));
    await pool.close();
    pool = Pool.open(dir);
    assert.ok(pool.read('target', 2 * BS, BS).equals(Buffer.alloc(BS, 0xcc)), 'durable');
  });

  it('one that would commit part way gives no verdict (false) and changes nothing', () => {
    const before = stateOf(pool);
    const core = (pool as unknown as { core: { commit(): void } }).core;
    assert.equal(
      pool.rehearse(() => {
        pool.resize('target', 8 * BS);
        core.commit();
      }),
      false,
    );
    assert.deepEqual(stateOf(pool), before);
    assert.throws(() => pool.rehearse(() => pool.rehearse(() => {})), /do not nest/);
    // Operations run as before afterwards.
    assert.equal(pool.resize('target', 8 * BS).size, 8 * BS);
  });
});
