/** Staged containers (import --create): invisible until complete, gone after a reopen if never completed. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const code = (c: string) => (err: unknown) => (err as { code?: string }).code === c;
const key = (k: string) => ({ idempotency: { key: k, fingerprint: 'f', expiresAt: Date.now() + 60_000 } });

describe('staged containers', () => {
  after(cleanupTempDirs);

  it('are invisible to every lookup by name until completed, then appear with their idempotency record', async () => {
    const dir = path.join(tempDir(), 'pool');
    const pool = Pool.create(dir, { blockSize: BS, capacityBytes: 1 << 24 });
    const staged = pool.stageContainer({ name: 'img', type: 'vdisk', size: 4 * BS });
    staged.write(0, Buffer.alloc(BS, 7));
    staged.writeZeroes(BS, BS);
    assert.deepEqual(pool.listContainers(), []);
    assert.equal(pool.info().containers, 0);
    assert.throws(() => pool.describe('img'), code('NOT_FOUND'));
    assert.throws(() => pool.read('img', 0, 1), code('NOT_FOUND'));
    assert.throws(() => pool.write('img', 0, Buffer.alloc(1)), code('NOT_FOUND'));
    assert.throws(() => pool.snapshot('img', 's'), code('NOT_FOUND'));
    assert.throws(
      () => pool.createContainer({ name: 'img', type: 'vdisk', size: BS }),
      code('ALREADY_EXISTS'),
    );
    await pool.flush();
    assert.equal((await pool.fsck()).ok, true);
    const result = staged.complete((info) => ({ name: info.name, size: info.size }), key('k1'));
    assert.deepEqual(result, { name: 'img', size: 4 * BS });
    assert.deepEqual(pool.idempotent('k1')?.result, result);
    assert.ok(pool.read('img', 0, BS).equals(Buffer.alloc(BS, 7)));
    assert.deepEqual(
      pool.listContainers().map((c) => c.name),
      ['img'],
    );
    await pool.close();
    const reopened = Pool.open(dir);
    assert.deepEqual(reopened.discardedAtOpen, []);
    assert.ok(reopened.read('img', 0, BS).equals(Buffer.alloc(BS, 7)));
    assert.equal((await reopened.fsck()).ok, true);
    await reopened.close();
  });

  it('left incomplete (a crash), are deleted when the pool opens, their blocks freed and their name free', async () => {
    const dir = path.join(tempDir(), 'pool');
    const pool = Pool.create(dir, { blockSize: BS, capacityBytes: 1 << 24 });
    const staged = pool.stageContainer({ name: 'img', type: 'vdisk', size: 8 * BS });
    for (let b = 0; b < 8; b++) staged.write(b * BS, Buffer.alloc(BS, b + 1));
    await pool.flush();
    assert.ok(pool.info().usedBlocks >= 8);
    await pool.close(); // as a crash would leave it: the mark is on disk
    const reopened = Pool.open(dir);
    assert.deepEqual(reopened.discardedAtOpen, ['img']);
    assert.deepEqual(reopened.listContainers(), []);
    reopened.reclaim();
    assert.equal(reopened.info().usedBlocks, 0);
    assert.equal((await reopened.fsck()).ok, true);
    reopened.createContainer({ name: 'img', type: 'vdisk', size: BS });
    await reopened.close();
  });

  it('discard deletes a staged container at once', async () => {
    const pool = Pool.create(path.join(tempDir(), 'pool'), { blockSize: BS, capacityBytes: 1 << 24 });
    const staged = pool.stageContainer({ name: 'img', type: 'vdisk', size: BS });
    staged.write(0, Buffer.alloc(BS, 1));
    staged.discard();
    assert.throws(() => staged.write(0, Buffer.alloc(1)), code('INVALID_ARGUMENT'));
    pool.createContainer({ name: 'img', type: 'vdisk', size: BS });
    assert.equal((await pool.fsck()).ok, true);
    await pool.close();
  });
});
