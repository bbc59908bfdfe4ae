/**
 * A sync copies nothing, but restoring the target's identity (here its GPT
 * GUIDs) writes blocks copy-on-write: on a full pool that sync is refused
 * OUT_OF_SPACE saying why, and the target is left as it was.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { isSnapsyncError, Pool } from '../../agent/engine';
import { createIdentityHooks } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { importImage } from './helpers/pool';
import { gpt512 } from './helpers/tools';

describe('a sync that restores identity on a full pool', function () {
  this.timeout(120_000);
  after(cleanupTempDirs);

  it('is refused OUT_OF_SPACE naming the identity restore, and leaves the target as it was', async () => {
    const dir = tempDir();
    const pool = Pool.create(path.join(dir, 'pool'), { blockSize: 65536, capacityBytes: 64 << 20 });
    try {
      for (const [name, guid] of [
        ['prod', '11111111-1111-4111-8111-111111111111'],
        ['stg', '22222222-2222-4222-8222-222222222222'],
      ] as const)
        importImage(
          pool,
          name,
          gpt512(path.join(dir, `${name}.img`), 8, guid, guid.replace(/^1|^2/, '3'), name).file,
        );
      pool.snapshot('prod', 'nightly');
      pool.createContainer({ name: 'filler', type: 'vdisk', size: 64 << 20 });
      const free = pool.info().freeBlocks;
      for (let block = 0; block < free; block++)
        pool.write('filler', block * 65536, Buffer.alloc(65536, 0x66));
      assert.equal(pool.info().freeBlocks, 0);
      const before = pool.read('stg', 0, 8 << 20);

      assert.throws(
        () => pool.sync('stg', 'prod@nightly', { hooks: createIdentityHooks('default') }),
        (err) =>
          isSnapsyncError(err, 'OUT_OF_SPACE') &&
          /^sync refused: restoring the target's identity writes its blocks copy-on-write, and pool is full: /.test(
            err.message,
          ),
      );
      assert.ok(pool.read('stg', 0, 8 << 20).equals(before), 'the target changed');
    } finally {
      await pool.close();
    }
  });
});
