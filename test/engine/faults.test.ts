/**
 * Device faults and a full pool: the engine reports OUT_OF_SPACE / IO_ERROR,
 * the metadata stays consistent (fsck), and the pool works again once the
 * fault is gone or space is freed. Short writes are finished by the device.
 */
import * as assert from 'node:assert/strict';
import { Pool, SnapsyncError } from '../../agent/engine';
import type { DeviceOp } from '../../agent/engine/store/block-device';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const fails = (fn: () => unknown, code: string) =>
  assert.throws(fn, (err: unknown) => err instanceof SnapsyncError && err.code === code);

function inject(pool: Pool, op: DeviceOp, errno: string) {
  pool.device.setFaultInjector((o) => {
    if (o === op) throw Object.assign(new Error(`injected ${errno}`), { code: errno });
  });
}

describe('faults and a full pool', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: BS, capacityBytes: 16 * BS });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('a full pool refuses writes but still snapshots, syncs and deletes; freeing space lets writes resume', async () => {
    pool.createContainer({ name: 'a', type: 'vdisk', size: 8 * BS });
    pool.createContainer({ name: 'c', type: 'vdisk', size: 8 * BS });
    pool.createContainer({ name: 'b', type: 'vdisk', size: 8 * BS });
    pool.write('a', 0, Buffer.alloc(8 * BS, 1));
    pool.write('c', 0, Buffer.alloc(8 * BS, 4));
    assert.equal(pool.info().freeBlocks, 0);
    fails(() => pool.write('b', 0, Buffer.alloc(BS, 2)), 'OUT_OF_SPACE');
    pool.snapshot('a', 's');
    pool.sync('b', 'a@s');
    assert.equal(pool.read('b', 0, 1)[0], 1);
    fails(() => pool.write('b', 0, Buffer.alloc(BS, 2)), 'OUT_OF_SPACE');
    pool.deleteContainer('c');
    pool.reclaim(); // normally in the background
    assert.equal(pool.info().freeBlocks, 8);
    pool.write('b', 0, Buffer.alloc(2 * BS, 3));
    assert.equal(pool.read('b', 0, 1)[0], 3);
    assert.equal(pool.read('a', 0, 1)[0], 1);
    assert.deepEqual((await pool.fsck()).problems, []);
  });

  it('ENOSPC from the data file becomes OUT_OF_SPACE and loses nothing already written', async () => {
    pool.createContainer({ name: 'a', type: 'vdisk', size: 8 * BS });
    pool.write('a', 0, Buffer.alloc(BS, 1));
    inject(pool, 'write', 'ENOSPC');
    fails(() => pool.write('a', BS, Buffer.alloc(BS, 2)), 'OUT_OF_SPACE');
    pool.device.setFaultInjector(null);
    assert.ok(pool.read('a', 0, 2 * BS).equals(Buffer.concat([Buffer.alloc(BS, 1), Buffer.alloc(BS)])));
    await pool.flush();
    assert.deepEqual((await pool.fsck()).problems, []);
    pool.write('a', BS, Buffer.alloc(BS, 2));
    assert.equal(pool.read('a', BS, 1)[0], 2);
  });

  it('EIO on read is IO_ERROR; the pool reads again once the fault is gone', () => {
    pool.createContainer({ name: 'a', type: 'vdisk', size: 8 * BS });
    pool.write('a', 0, Buffer.alloc(BS, 1));
    inject(pool, 'read', 'EIO');
    fails(() => pool.read('a', 0, BS), 'IO_ERROR');
    pool.device.setFaultInjector(null);
    assert.equal(pool.read('a', 0, 1)[0], 1);
  });

  it('a short write is finished by the device: the data reads back whole, also after a reopen', async () => {
    const dir = tempDir();
    const p = Pool.create(dir, { blockSize: BS });
    p.createContainer({ name: 'a', type: 'vdisk', size: 8 * BS });
    p.write('a', 0, Buffer.alloc(BS, 1));
    const data = Buffer.alloc(3 * BS);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256;
    let writes = 0;
    p.device.setFaultInjector((op) => {
      if (op !== 'write') return;
      writes++;
      return 1000; // each system call moves at most 1000 bytes
    });
    // Unaligned: into the owned block 0 in place, two new blocks and a copied-up fourth: one write of several parts.
    p.write('a', 100, data);
    p.write('a', 0, Buffer.alloc(50, 2)); // an overwrite in place of a block the table owns
    p.device.setFaultInjector(null);
    assert.ok(writes >= 2, 'the writes went through the injector');
    const expected = Buffer.concat([Buffer.alloc(50, 2), Buffer.alloc(50, 1), data, Buffer.alloc(BS - 100)]);
    assert.ok(p.read('a', 0, 4 * BS).equals(expected));
    await p.close();
    const again = Pool.open(dir);
    assert.ok(again.read('a', 0, 4 * BS).equals(expected));
    assert.deepEqual((await again.fsck()).problems, []);
    await again.close();
  });

  it('a write that makes no progress is IO_ERROR and changes nothing', async () => {
    pool.createContainer({ name: 'a', type: 'vdisk', size: 8 * BS });
    pool.write('a', 0, Buffer.alloc(BS, 1));
    await pool.flush();
    const used = pool.info().usedBlocks;
    pool.device.setFaultInjector((op) => (op === 'write' ? 0 : undefined));
    fails(() => pool.write('a', 0, Buffer.alloc(BS, 2)), 'IO_ERROR'); // in place
    fails(() => pool.write('a', BS, Buffer.alloc(2 * BS, 3)), 'IO_ERROR'); // into new blocks
    pool.device.setFaultInjector(null);
    assert.ok(pool.read('a', 0, 3 * BS).equals(Buffer.concat([Buffer.alloc(BS, 1), Buffer.alloc(2 * BS)])));
    assert.equal(pool.info().usedBlocks, used, 'the new blocks went back');
    await pool.flush();
    assert.deepEqual((await pool.fsck()).problems, []);
    pool.write('a', BS, Buffer.alloc(BS, 4));
    assert.equal(pool.read('a', BS, 1)[0], 4);
  });

  it('a failed flush keeps the writes staged, and the next flush makes them durable', async () => {
    const dir = tempDir();
    const p = Pool.create(dir, { blockSize: BS });
    p.createContainer({ name: 'a', type: 'vdisk', size: 8 * BS });
    p.write('a', 0, Buffer.alloc(BS, 7));
    inject(p, 'sync', 'EIO');
    await assert.rejects(
      p.flush(),
      (err: unknown) => err instanceof SnapsyncError && err.code === 'IO_ERROR',
    );
    fails(() => p.snapshot('a', 's'), 'IO_ERROR'); // a metadata operation needs the staged writes committed first
    p.device.setFaultInjector(null);
    await p.flush();
    await p.close();
    const again = Pool.open(dir);
    assert.equal(again.read('a', 0, 1)[0], 7);
    assert.deepEqual((await again.fsck()).problems, []);
    await again.close();
  });
});
