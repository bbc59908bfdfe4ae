/**
 * The NBD path's I/O on the event loop. Pool.writeNow writes what
 * writeAsync would (copy-up included), and declines (false, nothing done)
 * whenever it would have to wait — an earlier write or trim of its blocks
 * still in flight, a quiesce in progress, a write that stalled lately — so
 * the later write lands after the earlier one. A failed device write gives
 * its new blocks back, and only once none of its device writes still runs.
 */
import * as assert from 'node:assert/strict';
import { Pool, SnapsyncError } from '../../agent/engine';
import { dropFromPageCache } from '../helpers/page-cache';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 64 * 1024;

describe('Pool.writeNow: small writes on the event loop', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: BS, capacityBytes: 64 * BS });
    pool.createContainer({ name: 'd', type: 'vdisk', size: 8 * BS });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('writes copy-on-write into a clone: the clone reads old bytes around the new ones, the source is unchanged', async () => {
    pool.write('d', 0, Buffer.alloc(2 * BS, 7));
    pool.snapshot('d', 's');
    pool.clone('d@s', 'c');
    assert.equal(pool.writeNow('c', 100, Buffer.alloc(4096, 9)), true);
    const got = pool.read('c', 0, BS);
    assert.ok(got.subarray(0, 100).equals(Buffer.alloc(100, 7)));
    assert.ok(got.subarray(100, 4196).equals(Buffer.alloc(4096, 9)));
    assert.ok(got.subarray(4196).equals(Buffer.alloc(BS - 4196, 7)));
    assert.ok(pool.read('d', 0, BS).equals(Buffer.alloc(BS, 7)));
    await pool.flush();
    assert.deepEqual((await pool.fsck()).problems, []);
  });

  it('declines while an earlier write of the same block is in flight, so the later one (async) lands last', async () => {
    const first = pool.writeAsync('d', 0, Buffer.alloc(4096, 1));
    assert.equal(pool.writeNow('d', 2048, Buffer.alloc(4096, 2)), false);
    // Another block is free to go now.
    assert.equal(pool.writeNow('d', BS, Buffer.alloc(4096, 3)), true);
    const second = pool.writeAsync('d', 2048, Buffer.alloc(4096, 2));
    await Promise.all([first, second]);
    const got = pool.read('d', 0, 6144);
    assert.ok(got.equals(Buffer.concat([Buffer.alloc(2048, 1), Buffer.alloc(4096, 2)])));
    assert.equal(pool.read('d', BS, 1)[0], 3);
    assert.equal(pool.writeNow('d', 0, Buffer.alloc(4096, 4)), true);
    assert.equal(pool.read('d', 0, 1)[0], 4);
  });

  it('declines while a quiesce holds new requests back', async () => {
    const quiet = pool.quiesce();
    assert.equal(pool.writeNow('d', 0, Buffer.alloc(4096, 1)), false);
    await quiet;
    await new Promise((r) => setImmediate(r));
    assert.equal(pool.writeNow('d', 0, Buffer.alloc(4096, 1)), true);
  });

  it('declines after a write stalled (the next writes go to the threadpool), and a large write always', async () => {
    assert.equal(pool.writeNow('d', 0, Buffer.alloc(2 * BS, 1)), false);
    pool.device.setFaultInjector((op) => {
      if (op !== 'write') return;
      const until = performance.now() + 5;
      while (performance.now() < until); // a write that blocks the loop, as dirty-page throttling would
    });
    assert.equal(pool.writeNow('d', 0, Buffer.alloc(4096, 1)), true);
    pool.device.setFaultInjector(null);
    assert.equal(pool.writeNow('d', 0, Buffer.alloc(4096, 2)), false);
    await pool.writeAsync('d', 0, Buffer.alloc(4096, 2));
    assert.equal(pool.read('d', 0, 1)[0], 2);
  });

  it('a failed device write throws IO_ERROR, stages nothing and gives its new block back', async () => {
    const free = pool.info().freeBlocks;
    pool.device.setFaultInjector((op) => {
      if (op === 'write') throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
    });
    assert.throws(
      () => pool.writeNow('d', 0, Buffer.alloc(4096, 1)),
      (err: unknown) => err instanceof SnapsyncError && err.code === 'IO_ERROR',
    );
    pool.device.setFaultInjector(null);
    assert.equal(pool.info().freeBlocks, free);
    assert.ok(pool.read('d', 0, 4096).equals(Buffer.alloc(4096)));
    await pool.flush();
    assert.deepEqual((await pool.fsck()).problems, []);
  });

  it('after reads went to the disk, a copy-up of a cached block still runs now; one of a block on the disk only declines (blocks given back)', async () => {
    assert.equal(pool.device.readsNeverWait, true, 'RWF_NOWAIT works on the test host');
    pool.write('d', 0, Buffer.alloc(8 * BS, 7));
    pool.snapshot('d', 's');
    pool.clone('d@s', 'c');
    pool.write('c', 0, Buffer.alloc(BS, 8));
    const device = pool.device as unknown as { threadpoolReads: number };
    device.threadpoolReads = 256; // reads missed lately: client reads go to the threadpool
    assert.equal(pool.writeNow('c', BS + 100, Buffer.alloc(4096, 9)), true, 'the source block is cached');
    await pool.flush();
    // The readahead a miss starts may finish at once: the next block is tried until one declines.
    let declined = -1;
    for (let block = 2; block < 8 && declined < 0; block++) {
      for (const file of pool.device.paths) dropFromPageCache(file);
      const free = pool.info().freeBlocks;
      if (pool.writeNow('c', block * BS + 100, Buffer.alloc(4096, 9))) continue;
      declined = block;
      assert.equal(pool.info().freeBlocks, free, 'its new block went back');
    }
    assert.ok(declined >= 2, 'a copy-up whose source is on the disk only is not done on the event loop');
    assert.equal(pool.writeNow('c', 100, Buffer.alloc(4096, 9)), true, 'an owned block needs no copy-up');
    await pool.writeAsync('c', declined * BS + 100, Buffer.alloc(4096, 9));
    for (const block of [0, 1, declined]) {
      const got = pool.read('c', block * BS, BS);
      const want = Buffer.alloc(BS, block === 0 ? 8 : 7);
      want.fill(9, 100, 4196);
      assert.ok(got.equals(want), `block ${block}`);
    }
    assert.ok(pool.read('d', 0, 8 * BS).equals(Buffer.alloc(8 * BS, 7)));
    await pool.flush();
    assert.deepEqual((await pool.fsck()).problems, []);
  });

  it('a copy-up read on the threadpool is written on the event loop while writes are fast, else on the threadpool', async () => {
    pool.write('d', 0, Buffer.alloc(2 * BS, 7));
    pool.snapshot('d', 's');
    pool.clone('d@s', 'c');
    const device = pool.device as unknown as {
      threadpoolReads: number;
      threadpoolWrites: number;
      writeAsync: (...args: unknown[]) => Promise<void>;
    };
    const original = device.writeAsync.bind(device);
    let threadpoolWrites = 0;
    device.writeAsync = (...args: unknown[]) => {
      threadpoolWrites++;
      return original(...args);
    };
    device.threadpoolReads = 256; // reads went to the disk: the copy-up read goes to the threadpool
    await pool.writeAsync('c', 100, Buffer.alloc(4096, 9));
    assert.equal(threadpoolWrites, 0, 'one hand-off (the read), the write on the loop');
    device.threadpoolWrites = 256; // a write stalled lately
    await pool.writeAsync('c', BS + 100, Buffer.alloc(4096, 8));
    assert.equal(threadpoolWrites, 1);
    device.writeAsync = original;
    const got = pool.read('c', 0, 2 * BS);
    const want = Buffer.alloc(2 * BS, 7);
    want.fill(9, 100, 4196);
    want.fill(8, BS + 100, BS + 4196);
    assert.ok(got.equals(want));
    assert.ok(pool.read('d', 0, 2 * BS).equals(Buffer.alloc(2 * BS, 7)));
    await pool.flush();
    assert.deepEqual((await pool.fsck()).problems, []);
  });

  it('a failed async write answers only once every device write of it settled, so its blocks are never handed out under one', async () => {
    // Blocks 0 and 1 of d physically apart (another disk's block between them): one write over both is two device writes.
    pool.createContainer({ name: 'e', type: 'vdisk', size: 8 * BS });
    pool.write('d', 0, Buffer.alloc(BS, 1));
    pool.write('e', 0, Buffer.alloc(BS, 2));
    pool.write('d', BS, Buffer.alloc(BS, 3));
    const device = pool.device as unknown as { writeAsync: (...args: unknown[]) => Promise<void> };
    const original = device.writeAsync.bind(device);
    let calls = 0;
    let running = 0;
    device.writeAsync = async (...args: unknown[]) => {
      const call = calls++;
      running++;
      try {
        if (call === 0) throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
        await new Promise((resolve) => setTimeout(resolve, 50));
        return await original(...args);
      } finally {
        running--;
      }
    };
    // More than WRITE_NOW_MAX in all, so both device writes go to the threadpool.
    await assert.rejects(pool.writeAsync('d', BS - 40960, Buffer.alloc(81920, 9)));
    assert.equal(calls, 2, 'two device writes');
    assert.equal(running, 0, 'the other device write had finished when the failure was answered');
    device.writeAsync = original;
  });
});

describe('Pool.readNow: reads of what the page cache holds, on the event loop', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: BS, capacityBytes: 64 * BS });
    pool.createContainer({ name: 'd', type: 'vdisk', size: 16 * BS });
    pool.write('d', 0, Buffer.alloc(16 * BS, 5));
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('answers a cached read of up to 256 KiB now (nbdcopy asks 256 KiB); a larger one goes to the threadpool', async () => {
    assert.equal(pool.device.readsNeverWait, true, 'RWF_NOWAIT works on the test host');
    const quarter = Buffer.alloc(256 * 1024);
    assert.equal(pool.readNow('d', BS, quarter), true);
    assert.ok(quarter.equals(Buffer.alloc(256 * 1024, 5)));
    const larger = Buffer.alloc(256 * 1024 + 4096);
    assert.equal(pool.readNow('d', 0, larger), false, 'its copy would hold the event loop too long');
    await pool.readAsync('d', 0, larger);
    assert.ok(larger.equals(Buffer.alloc(larger.length, 5)));
  });
});
