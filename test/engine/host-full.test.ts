import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool, SnapsyncError } from '../../agent/engine';
import { mountSmallFs, type SmallFs } from '../helpers/small-fs';
import { cleanupTempDirs } from '../helpers/tmp';

const MiB = 1 << 20;

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof SnapsyncError) return err.code;
    throw err;
  }
}

/** Writes 1 MiB at a time from `from` until the engine refuses; returns the count written. */
function fill(pool: Pool, name: string, from = 0): { written: number; error: string } {
  const chunk = Buffer.alloc(MiB, 0x5a);
  for (let i = from; ; i++) {
    const result = code(() => pool.write(name, i * MiB, chunk));
    if (result !== 'ok') return { written: i - from, error: result };
  }
}

describe('a full host filesystem under the pool (40 MiB tmpfs, default capacity)', () => {
  let small: SmallFs;
  beforeEach(() => {
    small = mountSmallFs(40 * MiB);
  });
  afterEach(() => small.unmount());
  after(cleanupTempDirs);

  it('answers OUT_OF_SPACE, still flushes, snapshots, creates, deletes and checks, then writes again where a delete freed room', async () => {
    const dir = path.join(small.dir, 'pool');
    const pool = Pool.create(dir);
    pool.createContainer({ name: 'v', type: 'vdisk', size: 1 << 30 });
    const first = fill(pool, 'v');
    assert.equal(first.error, 'OUT_OF_SPACE');
    assert.ok(first.written >= 8, `wrote ${first.written} MiB first`);
    await pool.flush();
    assert.equal(
      code(() => pool.snapshot('v', 's1')),
      'ok',
    );
    assert.equal(
      code(() => pool.createContainer({ name: 'w', type: 'vdisk', size: 1 << 30 })),
      'ok',
    );
    assert.equal(fill(pool, 'w').error, 'OUT_OF_SPACE');
    assert.equal((await pool.fsck()).ok, true);
    assert.equal(
      code(() => pool.deleteContainer('v', { recursive: true })),
      'ok',
    );
    pool.reclaim();
    await pool.flush();
    // The delete gave its blocks back: writes land in them, with no new host space.
    const again = fill(pool, 'w');
    assert.ok(again.written >= first.written - 2, `wrote ${again.written} MiB after the delete`);
    assert.equal(again.error, 'OUT_OF_SPACE');
    await pool.flush();
    assert.equal((await pool.fsck()).ok, true);
    await pool.close();

    // After a restart, with the host still full: a delete commits, fsck is clean.
    const reopened = Pool.open(dir);
    assert.equal(
      code(() => reopened.snapshot('w', 's2')),
      'ok',
    );
    assert.equal(
      code(() => reopened.deleteContainer('w', { recursive: true })),
      'ok',
    );
    assert.equal((await reopened.fsck()).ok, true);
    await reopened.close();
  });

  it('a commit the full host cuts short (LMDB: EIO, not ENOSPC) gives the headroom back too, and the pool goes on', async () => {
    const dir = path.join(small.dir, 'pool');
    const pool = Pool.create(dir);
    pool.createContainer({ name: 'v', type: 'vdisk', size: 1 << 30 });
    await pool.flush();
    // Something else fills the host but one page: a commit needing several new pages gets a short write.
    const filler = small.fillWith('other-tenant');
    const fd = fs.openSync(filler, 'r+');
    fs.ftruncateSync(fd, fs.fstatSync(fd).size - 4096);
    fs.closeSync(fd);
    assert.equal(small.freeBytes(), 4096);
    const labels = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`key${i}`, 'v'.repeat(200)]));
    const codes = Array.from({ length: 40 }, (_, i) =>
      code(() => pool.createContainer({ name: `c${i}`, type: 'file', labels })),
    );
    assert.deepEqual(new Set(codes), new Set(['ok']));
    assert.equal(
      code(() => pool.snapshot('v', 's1')),
      'ok',
    );
    await pool.flush();
    assert.equal((await pool.fsck()).ok, true);
    await pool.close();
  });

  it('keeps its metadata headroom when something else fills the host, and grows again when room comes back', async () => {
    const dir = path.join(small.dir, 'pool');
    const pool = Pool.create(dir);
    pool.createContainer({ name: 'v', type: 'vdisk', size: 1 << 30 });
    pool.write('v', 0, Buffer.alloc(MiB, 1));
    await pool.flush();
    const filler = small.fillWith('other-tenant');
    for (let i = 0; i < 50; i++)
      assert.equal(
        code(() => pool.createContainer({ name: `c${i}`, type: 'file' })),
        'ok',
      );
    assert.equal(
      code(() => pool.snapshot('v', 's1')),
      'ok',
    );
    assert.equal(
      code(() => pool.write('v', 8 * MiB, Buffer.alloc(MiB, 2))),
      'OUT_OF_SPACE',
    );
    assert.equal(
      code(() => pool.deleteContainer('c0')),
      'ok',
    );
    fs.rmSync(filler);
    // Room is back: the pool takes its headroom again and grows.
    assert.equal(
      code(() => pool.write('v', 8 * MiB, Buffer.alloc(MiB, 2))),
      'ok',
    );
    await pool.flush();
    assert.equal(pool.read('v', 8 * MiB, 1)[0], 2);
    assert.equal((await pool.fsck()).ok, true);
    await pool.close();
  });
});
