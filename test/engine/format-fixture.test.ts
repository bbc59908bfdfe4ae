import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;

describe('released on-disk formats', () => {
  after(cleanupTempDirs);

  it('opens the frozen format-1 pool and reads it exactly', async () => {
    const dir = tempDir();
    fs.cpSync(path.join(__dirname, '../fixtures/pool-v1'), dir, { recursive: true });
    const pool = Pool.open(dir);
    try {
      assert.equal(pool.info().formatVersion, 1);
      assert.deepEqual(
        pool.listContainers().map((c) => c.name),
        ['vm', 'vm-config', 'vm-disk0', 'clone'],
      );
      assert.deepEqual(pool.describe('vm').members, { config: 'vm-config', disk0: 'vm-disk0' });
      assert.deepEqual(pool.describe('vm-config').file, { mode: 0o600, uid: 1000, gid: 1000 });
      assert.equal(pool.read('vm-config', 0, 24).toString(), 'displayName = "fixture"\n');
      const disk = pool.read('vm-disk0', 0, 4 * BS);
      assert.ok(disk.subarray(0, BS).equals(Buffer.alloc(BS, 0xab)));
      assert.ok(disk.subarray(BS, 2 * BS).equals(Buffer.alloc(BS, 0xcd)));
      assert.ok(disk.subarray(2 * BS, 3 * BS).equals(Buffer.alloc(BS, 0xab)));
      assert.ok(disk.subarray(3 * BS).equals(Buffer.alloc(BS)));
      assert.ok(pool.readSnapshot('vm-disk0@v1', 0, 3 * BS).equals(Buffer.alloc(3 * BS, 0xab)));
      assert.ok(pool.read('clone', 0, 3 * BS).equals(Buffer.alloc(3 * BS, 0xab)));
      assert.equal(pool.describe('clone').parentSnapshot?.name, 'v1');
      assert.deepEqual((await pool.fsck()).problems, []);
      pool.write('clone', 0, Buffer.from('still writable'));
      await pool.flush();
    } finally {
      await pool.close();
    }
  });
});
