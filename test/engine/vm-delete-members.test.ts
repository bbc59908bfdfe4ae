/** Deleting a VM takes its member disks with it; deleting a member alone is refused unless detached. */
import * as assert from 'node:assert/strict';
import { Pool, SnapsyncError } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

describe('deleting a VM or one of its members', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: 4096, capacityBytes: 1 << 22 });
    pool.createContainer({ name: 'root-disk', type: 'vdisk', size: 8192 });
    pool.createContainer({ name: 'data-disk', type: 'vdisk', size: 8192 });
    pool.createContainer({ name: 'vm', type: 'vm', members: { disk0: 'root-disk', disk1: 'data-disk' } });
    pool.write('data-disk', 0, Buffer.alloc(4096, 7));
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('refuses a member on its own (IS_VM_MEMBER naming the VM and role), and changes nothing', async () => {
    assert.throws(
      () => pool.deleteContainer('data-disk'),
      (err: unknown) =>
        err instanceof SnapsyncError &&
        err.code === 'IS_VM_MEMBER' &&
        err.details.vm === 'vm' &&
        err.details.role === 'disk1' &&
        /member disk1 of VM "vm"/.test(err.message),
    );
    assert.deepEqual(pool.describe('vm').members, { disk0: 'root-disk', disk1: 'data-disk' });
    assert.ok(pool.read('data-disk', 0, 4096).equals(Buffer.alloc(4096, 7)));
    assert.equal((await pool.fsck()).ok, true);
  });

  it('with detach, takes the member out of the VM and deletes it', async () => {
    pool.deleteContainer('data-disk', { detach: true });
    assert.deepEqual(pool.describe('vm').members, { disk0: 'root-disk' });
    assert.throws(
      () => pool.describe('data-disk'),
      (err: unknown) => (err as SnapsyncError).code === 'NOT_FOUND',
    );
    assert.equal((await pool.fsck()).ok, true);
  });

  it("refuses a member in one of the VM's snapshots unless recursive, which takes it out of the VM snapshot", async () => {
    pool.snapshot('vm', 's1');
    pool.snapshot('vm', 's2');
    assert.throws(
      () => pool.deleteContainer('data-disk', { detach: true }),
      (err: unknown) =>
        err instanceof SnapsyncError &&
        err.code === 'HAS_DEPENDENTS' &&
        (err.details.dependents as string[]).join() === 'vm@s1,vm@s2' &&
        /recursive/.test(err.message),
    );
    assert.deepEqual(pool.describe('vm').members, { disk0: 'root-disk', disk1: 'data-disk' });
    assert.equal((await pool.fsck()).ok, true);
    pool.deleteContainer('data-disk', { detach: true, recursive: true });
    assert.deepEqual(pool.describe('vm').members, { disk0: 'root-disk' });
    for (const name of ['s1', 's2'])
      assert.deepEqual(Object.keys(pool.describeSnapshot(`vm@${name}`).members), ['disk0'], name);
    assert.equal((await pool.fsck()).ok, true);
    // A VM snapshot left with no member goes too.
    pool.deleteContainer('root-disk', { detach: true, recursive: true });
    assert.deepEqual(pool.listSnapshots('vm'), []);
    assert.equal((await pool.fsck()).ok, true);
  });

  it('a VM goes with its members', async () => {
    pool.deleteContainer('vm');
    for (const name of ['vm', 'root-disk', 'data-disk'])
      assert.throws(
        () => pool.describe(name),
        (err: unknown) => (err as SnapsyncError).code === 'NOT_FOUND',
        name,
      );
    assert.equal((await pool.fsck()).ok, true);
  });
});
