/**
 * direct-writes.ts and aligned-buffers.ts: through BlockDevice, a large
 * aligned write lands byte for byte around the page cache (nothing of it
 * cached afterwards), a read brings in no neighbouring block (readahead off,
 * what keeps the page cache coherent), while small, unaligned and short-fault writes stay
 * buffered; a device that refuses O_DIRECT turns it off and the write is
 * redone buffered; any other error is the write's error.
 */
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ALIGN, ALIGNED_BYTES, giveAligned, takeAligned } from '../../agent/engine/store/aligned-buffers';
import { BlockDevice } from '../../agent/engine/store/block-device';
import { DIRECT_MIN, DirectWrites } from '../../agent/engine/store/direct-writes';
import { bufferAddress } from '../../agent/native/libc';
import { dropFromPageCache } from '../helpers/page-cache';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 64 * 1024;
/** An fd the seamed DirectWrites can close: its writes go to the seam, never to it. */
const nullFd = () => fs.openSync('/dev/null', 'r');
const MiB = 1024 * 1024;

function openDevice(): { device: BlockDevice; file: string } {
  const file = path.join(tempDir(), 'data');
  fs.writeFileSync(file, Buffer.alloc(0));
  return { device: new BlockDevice(file, BS), file };
}

/** Whether every byte of [start, start + length) of the device is in the page cache (RWF_NOWAIT read). */
function cached(device: BlockDevice, block: number, length: number): boolean {
  assert.ok(device.readsNeverWait, 'this host reads with RWF_NOWAIT');
  return device.readNow(block, 0, length, Buffer.alloc(length), 0);
}

function fileBytes(file: string, start: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const out = Buffer.alloc(length);
    fs.readSync(fd, out, 0, length, start);
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

describe('direct writes', () => {
  after(cleanupTempDirs);

  it('gives aligned, reusable buffers', () => {
    const a = takeAligned()!;
    assert.equal(a.length, ALIGNED_BYTES);
    assert.equal(bufferAddress(a)! % BigInt(ALIGN), 0n);
    giveAligned(a);
    assert.equal(takeAligned(), a, 'a given-back buffer is handed out again');
  });

  it('striped over four files: a large aligned run lands in each file where the layout says, around the page cache', async () => {
    const dir = tempDir();
    const files = ['data', 'data.1', 'data.2', 'data.3'].map((f) => path.join(dir, f));
    for (const f of files) fs.writeFileSync(f, Buffer.alloc(0));
    const device = new BlockDevice(files, BS);
    try {
      // 40 blocks from block 7, in uneven parts: each file gets 10 blocks, written from one aligned copy.
      const data = crypto.randomBytes(40 * BS);
      const parts = [data.subarray(0, 100_000), data.subarray(100_000, 1_500_000), data.subarray(1_500_000)];
      await device.writeAsync(7, 0, parts);
      assert.equal(device.directWritesOff, null, 'direct writes still on');
      assert.equal(cached(device, 7, data.length), false, 'written around the page cache');
      for (let i = 0; i < 40; i++) {
        const p = 7 + i;
        const onDisk = fileBytes(files[(p - 1) % 4]!, Math.floor((p - 1) / 4) * BS, BS);
        assert.ok(onDisk.equals(data.subarray(i * BS, (i + 1) * BS)), `block ${p}`);
      }
      const back = Buffer.alloc(data.length);
      await device.readAsync(7, 0, data.length, back, 0);
      assert.ok(back.equals(data), 'and what the device reads back');
    } finally {
      device.close();
    }
  });

  it('writes a large aligned run of uneven parts byte for byte, and leaves none of it in the page cache', async () => {
    const { device, file } = openDevice();
    try {
      const data = crypto.randomBytes(3 * MiB + 5 * BS);
      const parts = [data.subarray(0, 100_000), data.subarray(100_000, 2_000_000), data.subarray(2_000_000)];
      await device.writeAsync(3, 0, parts);
      assert.equal(device.directWritesOff, null, 'direct writes still on');
      assert.equal(cached(device, 3, data.length), false, 'written around the page cache');
      assert.ok(fileBytes(file, 2 * BS, data.length).equals(data), 'the bytes on the device');
      // A buffered write of a block inside it, then the direct rewrite: the device has the last bytes.
      await device.writeAsync(4, 0, [Buffer.alloc(BS, 0x11)]);
      assert.equal(cached(device, 4, BS), true, 'a 64 KiB write is buffered');
      const again = crypto.randomBytes(MiB);
      await device.writeAsync(3, 0, [again]);
      assert.ok(fileBytes(file, 2 * BS, MiB).equals(again), 'the direct rewrite is what reads see');
      const viaDevice = Buffer.alloc(MiB);
      await device.readAsync(3, 0, MiB, viaDevice, 0);
      assert.ok(viaDevice.equals(again), 'and what the device reads back');
    } finally {
      device.close();
    }
  });

  it('reads bring in no neighbouring block (no readahead): nothing cached can cover a block being written direct', async () => {
    const { device, file } = openDevice();
    try {
      fs.writeFileSync(file, crypto.randomBytes(64 * BS));
      dropFromPageCache(file);
      assert.equal(cached(device, 10, BS), false, 'dropped');
      // Sequential reads: what makes the kernel read ahead of them.
      const target = Buffer.alloc(BS);
      for (const block of [10, 11, 12]) await device.readAsync(block, 0, BS, target, 0);
      assert.equal(cached(device, 10, 3 * BS), true, 'the blocks read are cached');
      for (const next of [13, 14, 20])
        assert.equal(cached(device, next, BS), false, `block ${next} was not read ahead`);
    } finally {
      device.close();
    }
  });

  it('keeps small, unaligned and fault-shortened writes buffered', async () => {
    const { device, file } = openDevice();
    try {
      const unaligned = crypto.randomBytes(MiB);
      await device.writeAsync(2, 512, [unaligned]);
      assert.equal(cached(device, 2, BS), true, 'an unaligned write is buffered');
      assert.ok(fileBytes(file, BS + 512, MiB).equals(unaligned));

      device.setFaultInjector((op) => (op === 'write' ? 4096 : undefined));
      const shortened = crypto.randomBytes(MiB);
      await device.writeAsync(40, 0, [shortened]);
      device.setFaultInjector(null);
      assert.equal(cached(device, 40, MiB), true, 'the fault seam writes buffered');
      assert.ok(fileBytes(file, 39 * BS, MiB).equals(shortened), 'short system calls finish the write');

      device.setFaultInjector((op) => {
        if (op === 'write') throw Object.assign(new Error('injected'), { code: 'EIO' });
      });
      await assert.rejects(device.writeAsync(60, 0, [Buffer.alloc(MiB)]), { code: 'IO_ERROR' });
    } finally {
      device.setFaultInjector(null);
      device.close();
    }
  });

  it('turns off where the device refuses O_DIRECT, and reports other errors as the write’s', async () => {
    const refuse = new DirectWrites(nullFd(), (_fd, _b, _o, _l, _p, done) =>
      done(Object.assign(new Error('EINVAL'), { code: 'EINVAL' }), 0),
    );
    assert.equal(refuse.wants(0, DIRECT_MIN), true);
    assert.equal(refuse.wants(512, DIRECT_MIN), false, 'unaligned position');
    assert.equal(refuse.wants(0, DIRECT_MIN - ALIGN), false, 'shorter than DIRECT_MIN');
    assert.equal(
      await refuse.write([Buffer.alloc(2 * MiB)], 0, 2 * MiB),
      false,
      'the caller writes it buffered',
    );
    assert.equal(refuse.wants(0, DIRECT_MIN), false, 'off from then on');
    assert.equal(refuse.offReason, 'the filesystem refused a direct write (EINVAL)');

    const short = new DirectWrites(nullFd(), (_fd, _b, _o, length, _p, done) => done(null, length - ALIGN));
    assert.equal(await short.write([Buffer.alloc(MiB)], 0, MiB), false, 'a short piece is redone buffered');
    assert.equal(short.offReason, `a direct write of ${MiB} bytes wrote ${MiB - ALIGN}`);

    // Refused while another write is under way: its fd stays open (a reused fd number would take its bytes) until it settles.
    const fd = nullFd();
    const held: Array<(err: NodeJS.ErrnoException | null, written: number) => void> = [];
    const racing = new DirectWrites(fd, (_fd, _b, _o, _l, _p, done) => held.push(done));
    const slow = racing.write([Buffer.alloc(MiB)], 0, MiB);
    const refused = racing.write([Buffer.alloc(MiB)], MiB, MiB);
    held[1]!(Object.assign(new Error('EINVAL'), { code: 'EINVAL' }), 0);
    assert.equal(await refused, false);
    assert.doesNotThrow(() => fs.fstatSync(fd), 'open while a write is under way');
    held[0]!(null, MiB);
    assert.equal(await slow, true, 'the write under way completes direct');
    assert.throws(() => fs.fstatSync(fd), { code: 'EBADF' }, 'closed once it settled');

    const failing = new DirectWrites(nullFd(), (_fd, _b, _o, _l, _p, done) =>
      done(Object.assign(new Error('EIO'), { code: 'EIO' }), 0),
    );
    await assert.rejects(failing.write([Buffer.alloc(MiB)], 0, MiB), { code: 'EIO' });
    assert.equal(failing.wants(0, MiB), true, 'an I/O error does not turn direct writes off');
    assert.equal(failing.offReason, null);
  });
});
