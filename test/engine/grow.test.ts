/**
 * Growing a pool (engine/grow.ts) on a real pool: a full pool on a named data
 * file takes writes again once the file is extended and the pool grown, the
 * capacity survives a reopen and fsck stays clean; a smaller capacity, one the
 * file does not hold, or none at all for sparse data files is INVALID_ARGUMENT
 * and changes nothing.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool, SnapsyncError } from '../../agent/engine';
import { cleanupTempDirs, sparseFile, tempDir } from '../helpers/tmp';

const BLOCK = 4096;

const refused = (code: string, message: RegExp) => (err: unknown) =>
  err instanceof SnapsyncError && err.code === code && message.test(err.message);

describe('engine: growing a pool', () => {
  after(cleanupTempDirs);

  it('a full pool on a named data file takes writes again after the file is extended and the pool grown; the capacity survives a reopen', async () => {
    const dir = tempDir('snapsync-grow-');
    const device = sparseFile(path.join(dir, 'device.img'), 8 * BLOCK);
    const poolDir = path.join(dir, 'pool');
    let pool = Pool.create(poolDir, { blockSize: BLOCK, dataPath: device });
    pool.createContainer({ name: 'd', type: 'vdisk', size: 32 * BLOCK });
    pool.write('d', 0, Buffer.alloc(8 * BLOCK, 1));
    assert.throws(() => pool.write('d', 8 * BLOCK, Buffer.alloc(BLOCK, 2)), { code: 'OUT_OF_SPACE' });
    assert.equal(pool.grow().capacityBlocks, 8, 'the file is not bigger yet: nothing changes');

    fs.truncateSync(device, 20 * BLOCK);
    const grown = pool.grow();
    assert.equal(grown.capacityBlocks, 20);
    assert.equal(grown.freeBlocks, 12);
    pool.write('d', 8 * BLOCK, Buffer.alloc(12 * BLOCK, 2));
    assert.throws(() => pool.write('d', 20 * BLOCK, Buffer.alloc(BLOCK, 3)), { code: 'OUT_OF_SPACE' });
    await pool.close();

    pool = Pool.open(poolDir);
    try {
      assert.equal(pool.info().capacityBlocks, 20);
      assert.ok(pool.read('d', 0, 8 * BLOCK).equals(Buffer.alloc(8 * BLOCK, 1)));
      assert.ok(pool.read('d', 8 * BLOCK, 12 * BLOCK).equals(Buffer.alloc(12 * BLOCK, 2)));
      assert.equal((await pool.fsck()).ok, true);
    } finally {
      await pool.close();
    }
  });

  it('refuses a smaller capacity, one the data file does not hold, and sparse data files without a capacity; changes nothing', async () => {
    const dir = tempDir('snapsync-grow-');
    const device = sparseFile(path.join(dir, 'device.img'), 16 * BLOCK);
    const named = Pool.create(path.join(dir, 'named'), {
      blockSize: BLOCK,
      dataPath: device,
      capacityBytes: 8 * BLOCK,
    });
    try {
      assert.throws(
        () => named.grow({ capacityBytes: 4 * BLOCK }),
        refused('INVALID_ARGUMENT', /does not shrink/),
      );
      assert.throws(
        () => named.grow({ capacityBytes: 17 * BLOCK }),
        refused(
          'INVALID_ARGUMENT',
          /more than .*device\.img holds \(65536 bytes\): grow the device or file first/,
        ),
      );
      assert.equal(named.info().capacityBlocks, 8);
      assert.equal(named.grow({ capacityBytes: 12 * BLOCK }).capacityBlocks, 12);
      assert.equal(named.grow({ capacityBytes: 12 * BLOCK }).capacityBlocks, 12, 'the same again: a no-op');
    } finally {
      await named.close();
    }

    const sparse = Pool.create(path.join(dir, 'sparse'), {
      blockSize: BLOCK,
      capacityBytes: 8 * BLOCK,
      dataFiles: 2,
    });
    try {
      assert.throws(() => sparse.grow(), refused('INVALID_ARGUMENT', /give the new capacity/));
      sparse.createContainer({ name: 'd', type: 'vdisk', size: 64 * BLOCK });
      sparse.write('d', 0, Buffer.alloc(8 * BLOCK, 5));
      assert.equal(sparse.grow({ capacityBytes: 1 << 20 }).capacityBlocks, 256);
      // Striped by block number alone: the blocks written before keep their place, new ones follow.
      sparse.write('d', 8 * BLOCK, Buffer.alloc(56 * BLOCK, 6));
      assert.ok(sparse.read('d', 0, 8 * BLOCK).equals(Buffer.alloc(8 * BLOCK, 5)));
      assert.equal((await sparse.fsck()).ok, true);
    } finally {
      await sparse.close();
    }
  });
});
