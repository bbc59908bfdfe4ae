/**
 * Reverting a VM to the safety snapshot of a sync (the undo the sync prints)
 * gives it back the member set it had: a member the sync created for a role
 * only the source had holds the source's data, and goes.
 */
import * as assert from 'node:assert/strict';
import { Pool, SnapsyncError } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

describe('reverting a VM undoes the members a sync created', () => {
  let pool: Pool;
  let dir: string;
  const secret = Buffer.alloc(4096, 0x5e);
  beforeEach(() => {
    dir = tempDir();
    pool = Pool.create(dir, { blockSize: 4096, capacityBytes: 1 << 22 });
    pool.createContainer({ name: 'prod-os', type: 'vdisk', size: 8192 });
    pool.createContainer({ name: 'prod-data', type: 'vdisk', size: 8192 });
    pool.write('prod-data', 0, secret);
    pool.createContainer({ name: 'prod', type: 'vm', members: { disk0: 'prod-os', disk1: 'prod-data' } });
    pool.snapshot('prod', 'nightly');
    pool.createContainer({ name: 'stg-os', type: 'vdisk', size: 8192 });
    pool.createContainer({ name: 'stg', type: 'vm', members: { disk0: 'stg-os' } });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  const hasNoContainer = (name: string) =>
    assert.throws(
      () => pool.describe(name),
      (err: unknown) => (err as SnapsyncError).code === 'NOT_FOUND',
    );

  it('revert to safety-g1 deletes the member the sync created (it read production data)', async () => {
    const result = pool.sync('stg', 'prod@nightly');
    assert.deepEqual(pool.describe('stg').members, { disk0: 'stg-os', disk1: 'stg-disk1' });
    assert.ok(pool.read('stg-disk1', 0, 4096).equals(secret));
    pool.revert('stg', result.safetySnapshot!.name);
    assert.deepEqual(pool.describe('stg').members, { disk0: 'stg-os' });
    hasNoContainer('stg-disk1');
    assert.equal((await pool.fsck()).ok, true);
    // The next sync creates it again, and its undo deletes it again.
    const again = pool.sync('stg', 'prod@nightly');
    assert.deepEqual(pool.describe('stg').members, { disk0: 'stg-os', disk1: 'stg-disk1' });
    pool.revert('stg', again.safetySnapshot!.name);
    hasNoContainer('stg-disk1');
    assert.equal((await pool.fsck()).ok, true);
  });

  it('revert to a snapshot taken before the sync deletes it too, also after a reopen', async () => {
    pool.snapshot('stg', 'before');
    pool.sync('stg', 'prod@nightly');
    await pool.close();
    pool = Pool.open(dir);
    pool.revert('stg', 'before');
    assert.deepEqual(pool.describe('stg').members, { disk0: 'stg-os' });
    hasNoContainer('stg-disk1');
    assert.equal((await pool.fsck()).ok, true);
  });

  it('refuses (HAS_DEPENDENTS, naming the snapshot) when the created member has snapshots, and changes nothing', async () => {
    const first = pool.sync('stg', 'prod@nightly');
    pool.write('stg-os', 0, Buffer.alloc(4096, 1));
    pool.snapshot('stg', 'later');
    assert.throws(
      () => pool.revert('stg', first.safetySnapshot!.name),
      (err: unknown) =>
        err instanceof SnapsyncError &&
        err.code === 'HAS_DEPENDENTS' &&
        err.details.name === 'stg-disk1' &&
        (err.details.dependents as string[]).includes('stg@later'),
    );
    assert.deepEqual(pool.describe('stg').members, { disk0: 'stg-os', disk1: 'stg-disk1' });
    assert.ok(pool.read('stg-os', 0, 4096).equals(Buffer.alloc(4096, 1)));
    pool.deleteSnapshot('stg@later');
    pool.revert('stg', first.safetySnapshot!.name);
    assert.deepEqual(pool.describe('stg').members, { disk0: 'stg-os' });
    assert.equal((await pool.fsck()).ok, true);
  });

  it('leaves a created member the operator took out of the VM', async () => {
    const result = pool.sync('stg', 'prod@nightly');
    pool.removeMember('stg', 'disk1');
    pool.revert('stg', result.safetySnapshot!.name);
    assert.deepEqual(pool.describe('stg').members, { disk0: 'stg-os' });
    assert.ok(pool.read('stg-disk1', 0, 4096).equals(secret));
    assert.equal((await pool.fsck()).ok, true);
  });
});
