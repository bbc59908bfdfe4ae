/**
 * The names the engine gives its own snapshots (safety-g<N>, import-undo-<N>)
 * are refused for user snapshots; a pool made before, holding such a user
 * snapshot, still syncs and imports: the engine picks a free name.
 */
import * as assert from 'node:assert/strict';
import { Pool, SnapsyncError } from '../../agent/engine';
import type { EngineCore } from '../../agent/engine/core';
import { takeSnapshot } from '../../agent/engine/snapshots';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

/** A user snapshot as an agent from before the reservation would have taken it. */
function legacyUserSnapshot(pool: Pool, container: string, name: string): void {
  const core = (pool as unknown as { core: EngineCore }).core;
  core.mutate(() => takeSnapshot(core, core.catalog.containerByName(container), name, 'user', {}));
}

describe('reserved snapshot names', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: 4096, capacityBytes: 1 << 22 });
    for (const name of ['s2', 't3']) pool.createContainer({ name, type: 'vdisk', size: 8192 });
    pool.write('s2', 0, Buffer.from('source'));
    pool.snapshot('s2', 'a');
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('refuses a user snapshot named like a safety snapshot or an import undo point (INVALID_ARGUMENT, reserved)', () => {
    for (const name of ['safety-g1', 'safety-g12-1', 'import-undo-3']) {
      assert.throws(
        () => pool.snapshot('t3', name),
        (err: unknown) =>
          err instanceof SnapsyncError &&
          err.code === 'INVALID_ARGUMENT' &&
          err.details.reserved === true &&
          /reserved/.test(err.message),
        name,
      );
    }
    assert.equal(pool.snapshot('t3', 'safety-net').name, 'safety-net');
    // Nothing the user names is ever in the sync's way.
    assert.equal(pool.sync('t3', 's2@a').safetySnapshot?.name, 'safety-g1');
  });

  it('a sync picks a free safety snapshot name when a user snapshot from before holds safety-g<N>', async () => {
    pool.write('t3', 0, Buffer.from('before'));
    legacyUserSnapshot(pool, 't3', 'safety-g1');
    const result = pool.sync('t3', 's2@a');
    assert.equal(result.safetySnapshot?.name, 'safety-g1-1');
    assert.equal(pool.read('t3', 0, 6).toString(), 'source');
    assert.equal(pool.readSnapshot('t3@safety-g1', 0, 6).toString(), 'before');
    assert.equal((await pool.fsck()).ok, true);
  });

  it('a VM sync does too when only a member holds the name', async () => {
    pool.createContainer({ name: 'vm', type: 'vm', members: { disk0: 't3' } });
    pool.createContainer({ name: 'src-vm', type: 'vm', members: { disk0: 's2' } });
    pool.snapshot('src-vm', 'v');
    legacyUserSnapshot(pool, 't3', 'safety-g1');
    assert.equal(pool.sync('vm', 'src-vm@v').safetySnapshot?.name, 'safety-g1-1');
    assert.equal((await pool.fsck()).ok, true);
  });

  it("an import's undo point does not take the name of a user snapshot from before", async () => {
    const probe = pool.snapshot('t3', 'probe');
    pool.deleteSnapshot('t3@probe');
    // The next snapshot ids: the legacy snapshot's, then the undo point's.
    legacyUserSnapshot(pool, 't3', `import-undo-${probe.id + 2}`);
    const target = pool.importInto('t3');
    target.write(0, Buffer.from('import'));
    target.complete(() => null);
    assert.equal(pool.describeSnapshot(`t3@import-undo-${probe.id + 2}`).kind, 'user');
    assert.equal((await pool.fsck()).ok, true);
  });
});
