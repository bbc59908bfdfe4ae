/**
 * A member a sync created (the VM lacked the role) is the sync's: describe
 * names its role in syncCreatedMembers (what the providers read to leave it
 * out of the declared members), across a reopen and later syncs, until it is
 * taken out of the VM.
 */
import * as assert from 'node:assert/strict';
import { Pool } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

describe('the members a sync created are named on the VM', () => {
  let pool: Pool;
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
    pool = Pool.create(dir, { blockSize: 4096, capacityBytes: 1 << 22 });
    pool.createContainer({ name: 'p-sys', type: 'vdisk', size: 8192 });
    pool.createContainer({ name: 'p-logs', type: 'vdisk', size: 8192 });
    pool.createContainer({ name: 'prod', type: 'vm', members: { root: 'p-sys', logs: 'p-logs' } });
    pool.snapshot('prod', 'n1');
    pool.createContainer({ name: 's-system', type: 'vdisk', size: 8192 });
    pool.createContainer({ name: 'stg', type: 'vm', members: { root: 's-system' } });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('after a reopen and a second sync, describe still names the role the first sync created', async () => {
    assert.equal(pool.describe('stg').syncCreatedMembers, undefined);
    pool.sync('stg', 'prod@n1');
    assert.deepEqual(pool.describe('stg').syncCreatedMembers, ['logs']);
    await pool.close();
    pool = Pool.open(dir);
    pool.snapshot('prod', 'n2');
    pool.sync('stg', 'prod@n2');
    assert.deepEqual(pool.describe('stg').members, { root: 's-system', logs: 'stg-logs' });
    assert.deepEqual(pool.describe('stg').syncCreatedMembers, ['logs']);
    assert.equal(pool.describe('prod').syncCreatedMembers, undefined);
    assert.equal((await pool.fsck()).ok, true);
  });

  it('taken out of the VM it is a plain container: added back, it is a declared member', () => {
    pool.sync('stg', 'prod@n1');
    assert.deepEqual(pool.describe('stg').syncCreatedMembers, ['logs']);
    pool.removeMember('stg', 'logs');
    assert.equal(pool.describe('stg').syncCreatedMembers, undefined);
    pool.addMember('stg', 'logs', 'stg-logs');
    assert.equal(pool.describe('stg').syncCreatedMembers, undefined);
  });
});
