/**
 * nowait-read.ts and BlockDevice.readNow against the real kernel: bytes the
 * page cache holds are read exactly (into views at any offset of a buffer);
 * bytes it does not hold answer WOULD_BLOCK, never a wait for the disk; the
 * block device then reads them on the threadpool.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlockDevice } from '../../agent/engine/store/block-device';
import { nowaitReader, WOULD_BLOCK } from '../../agent/engine/store/nowait-read';
import { libcFunction } from '../../agent/native/libc';
import { dropFromPageCache } from '../helpers/page-cache';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const PAGE = 4096;

/** Writes `bytes` to a new file in a temp dir (on the test host's disk file system); returns its path. */
function fileWith(bytes: Buffer): string {
  const file = path.join(tempDir('snapsync-nowait-'), 'data');
  fs.writeFileSync(file, bytes);
  return file;
}

describe('nowait-read: reads that do not wait for the disk', () => {
  after(cleanupTempDirs);

  it('reads cached bytes exactly, into views at any offset, short at the end of the file', () => {
    const bytes = crypto.randomBytes(64 * PAGE + 123);
    const file = fileWith(bytes);
    const fd = fs.openSync(file, 'r');
    try {
      const read = nowaitReader(fd);
      assert.ok(read, 'the test host (ext4 or xfs) supports RWF_NOWAIT');
      const arena = Buffer.alloc(1 << 20);
      const seed = Number(process.env.SNAPSYNC_MODEL_SEED ?? Date.now() % 100000);
      let x = seed;
      const next = (n: number) => {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        return x % n;
      };
      for (let i = 0; i < 200; i++) {
        const position = next(bytes.length);
        const length = 1 + next(3 * PAGE);
        const view = arena.subarray(next(4096), 600_000);
        const at = next(1000);
        const n = read(view, at, length, position);
        const expected = Math.min(length, bytes.length - position);
        assert.equal(n, expected, `seed ${seed}: read ${length} at ${position}`);
        assert.ok(view.subarray(at, at + n).equals(bytes.subarray(position, position + n)), `seed ${seed}`);
      }
      assert.equal(read(arena, 0, PAGE, bytes.length + PAGE), 0, 'past the end: 0 bytes');
      assert.throws(() => read(arena.subarray(0, 10), 5, 6, 0), RangeError);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('answers WOULD_BLOCK for bytes out of the page cache, and what is cached of a range that is partly', () => {
    const bytes = crypto.randomBytes(32 * PAGE);
    const file = fileWith(bytes);
    const fd = fs.openSync(file, 'r');
    try {
      const read = nowaitReader(fd)!;
      const target = Buffer.alloc(8 * PAGE);
      // The kernel starts a readahead for what a NOWAIT read misses, without waiting for it; on a
      // fast virtual disk it may finish before the call returns, so a miss shows in most tries, not all.
      let misses = 0;
      for (let i = 0; i < 10; i++) {
        dropFromPageCache(file);
        const n = read(target, 0, 8 * PAGE, 0);
        if (n === WOULD_BLOCK) misses++;
        else assert.ok(target.subarray(0, n).equals(bytes.subarray(0, n)), `a cached prefix: ${n} bytes`);
      }
      assert.ok(misses > 0, 'a read of bytes on the disk only answered WOULD_BLOCK');
      // A range cached in its first part: those bytes, then the call stops short (or a miss).
      dropFromPageCache(file);
      fs.readSync(fd, Buffer.alloc(2 * PAGE), 0, 2 * PAGE, 16 * PAGE);
      const n = read(target, 0, 8 * PAGE, 16 * PAGE);
      assert.ok(n !== WOULD_BLOCK && n >= 2 * PAGE, `the cached first part: got ${n}`);
      assert.ok(target.subarray(0, n).equals(bytes.subarray(16 * PAGE, 16 * PAGE + n)));
    } finally {
      fs.closeSync(fd);
    }
  });

  it('is null for a file descriptor that cannot read this way (a pipe)', () => {
    const dir = tempDir('snapsync-nowait-');
    const fifo = path.join(dir, 'fifo');
    // A FIFO opened read-write never blocks on open; preadv2 on it is ESPIPE.
    assert.equal(libcFunction('int mkfifo(const char *, uint32_t)')!(fifo, 0o600), 0);
    const fd = fs.openSync(fifo, fs.constants.O_RDWR);
    try {
      assert.equal(nowaitReader(fd), null);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('BlockDevice.readNow: the event loop reads only what the page cache holds', () => {
  after(cleanupTempDirs);
  const BS = 64 * 1024;

  it('says false for a block out of the page cache, readAsync reads it, then it is read now', async () => {
    const bytes = crypto.randomBytes(8 * BS);
    const file = fileWith(bytes);
    dropFromPageCache(file);
    const device = new BlockDevice(file, BS);
    try {
      assert.equal(device.readsNeverWait, true);
      const target = Buffer.alloc(BS);
      // As above: the readahead a miss starts may finish at once; one of ten tries must miss.
      let missed = device.readNow(6, 0, BS, target, 0) === false;
      for (let i = 0; i < 9 && !missed; i++) {
        dropFromPageCache(file);
        missed = device.readNow(6, 0, BS, target, 0) === false;
      }
      assert.ok(missed, 'block 6, on the disk only, is not read now');
      assert.equal(device.readsHit, false, 'the next reads go to the threadpool');
      await device.readAsync(6, 0, BS, target, 0);
      assert.ok(target.equals(bytes.subarray(5 * BS, 6 * BS)), 'block 6 is bytes 5..6 × BS');
      const now = Buffer.alloc(BS);
      assert.equal(device.readNow(6, 0, BS, now, 0), true, 'in the page cache now');
      assert.ok(now.equals(target));
    } finally {
      device.close();
    }
  });

  it('an injected read fault is IO_ERROR on the event loop too', () => {
    const file = fileWith(crypto.randomBytes(2 * BS));
    const device = new BlockDevice(file, BS);
    try {
      device.setFaultInjector((op) => {
        if (op === 'read') throw Object.assign(new Error('injected'), { code: 'EIO' });
      });
      assert.throws(() => device.readNow(1, 0, BS, Buffer.alloc(BS), 0), { code: 'IO_ERROR' });
    } finally {
      device.close();
    }
  });
});
