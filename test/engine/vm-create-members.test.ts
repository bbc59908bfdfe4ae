/** A VM created with its members is one operation: every member is checked first, a refusal leaves nothing. */
import * as assert from 'node:assert/strict';
import { Pool, SnapsyncError } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const refused = (fn: () => unknown, code: string, message?: RegExp) =>
  assert.throws(
    fn,
    (err: unknown) =>
      err instanceof SnapsyncError && err.code === code && (!message || message.test(err.message)),
  );

describe('createContainer with members', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: 4096, capacityBytes: 1 << 22 });
    pool.createContainer({ name: 'src', type: 'vdisk', size: 8192 });
    pool.createContainer({ name: 'cfg', type: 'file' });
    pool.createContainer({ name: 'held', type: 'vdisk', size: 4096 });
    pool.createContainer({ name: 'other', type: 'vm', members: { disk0: 'held' } });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('creates the VM with every member in one operation', async () => {
    const vm = pool.createContainer({ name: 'v1', type: 'vm', members: { disk0: 'src', config: 'cfg' } });
    assert.deepEqual(vm.members, { disk0: 'src', config: 'cfg' });
    assert.deepEqual(pool.describe('src').memberOf, { vm: 'v1', role: 'disk0' });
    assert.equal((await pool.fsck()).ok, true);
  });

  it('refuses a missing, held, repeated or VM member, a bad role, or members of a vdisk, and creates nothing', () => {
    const before = pool.listContainers();
    refused(
      () => pool.createContainer({ name: 'v2', type: 'vm', members: { disk0: 'nonexist' } }),
      'NOT_FOUND',
    );
    refused(
      () => pool.createContainer({ name: 'v2', type: 'vm', members: { disk0: 'src', disk1: 'held' } }),
      'INVALID_ARGUMENT',
      /"held" is already member disk0 of VM "other"/,
    );
    refused(
      () => pool.createContainer({ name: 'v3', type: 'vm', members: { disk0: 'src', disk1: 'src' } }),
      'INVALID_ARGUMENT',
      /"src" is named twice in this request \(roles disk0 and disk1\)/,
    );
    refused(
      () => pool.createContainer({ name: 'v2', type: 'vm', members: { '../x': 'src' } }),
      'INVALID_ARGUMENT',
    );
    refused(
      () => pool.createContainer({ name: 'v2', type: 'vm', members: { disk0: 'other' } }),
      'TYPE_MISMATCH',
    );
    refused(
      () => pool.createContainer({ name: 'v2', type: 'vdisk', size: 4096, members: { disk0: 'src' } }),
      'INVALID_ARGUMENT',
    );
    assert.deepEqual(pool.listContainers(), before);
    assert.equal(pool.describe('src').memberOf, null);
    // The corrected request then goes through: nothing was left under the name.
    assert.deepEqual(pool.createContainer({ name: 'v3', type: 'vm', members: { disk0: 'src' } }).members, {
      disk0: 'src',
    });
  });
});
