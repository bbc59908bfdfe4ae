/**
 * Copy-up buffers are reused (copy-up-buffers.ts): a block-sized buffer that
 * carried one disk's data into a new block goes back to a free list and
 * fills the next copy-up. What the user checks: a partial write into a block
 * that has nothing below it reads as zeros around the written bytes, never
 * as the bytes the reused buffer carried before (another disk's data).
 */
import * as assert from 'node:assert/strict';
import { Pool } from '../../agent/engine';
import { giveBlockBuffers, takeBlockBuffer } from '../../agent/engine/copy-up-buffers';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;

describe('copy-up buffers', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: BS, capacityBytes: 256 * BS });
    pool.createContainer({ name: 'secret', type: 'vdisk', size: 8 * BS });
    pool.write('secret', 0, Buffer.alloc(BS, 0xaa));
    pool.snapshot('secret', 's');
    pool.clone({ container: 'secret', snapshot: 's' }, 'copy');
    pool.createContainer({ name: 'empty', type: 'vdisk', size: 8 * BS });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  for (const path of ['event loop', 'threadpool'] as const) {
    it(`a partial write over nothing reads zeros around it after a copy-up of other data (${path} path)`, async () => {
      const write = (name: string, offset: number, data: Buffer) =>
        path === 'event loop' ? pool.write(name, offset, data) : pool.writeAsync(name, offset, data);
      for (let round = 0; round < 4; round++) {
        // Copy-up of secret's block: its buffer holds 0xaa when it goes back.
        await write('copy', 10 + round, Buffer.from([round]));
        await write('empty', round * BS + 100, Buffer.from('hello'));
        const block = pool.read('empty', round * BS, BS);
        const expected = Buffer.alloc(BS);
        expected.write('hello', 100);
        assert.ok(
          block.equals(expected),
          `block ${round}: zeros around the write (saw 0x${block[0]!.toString(16)} at 0)`,
        );
      }
      const copied = pool.read('copy', 0, BS);
      assert.equal(copied[0], 0xaa, 'the copy-up kept what was below it');
      assert.deepEqual([...copied.subarray(10, 14)], [0, 1, 2, 3]);
    });
  }

  it('a buffer given back is handed out again, and two taken at once are distinct', () => {
    const a = takeBlockBuffer(BS);
    const b = takeBlockBuffer(BS);
    assert.notEqual(a.buffer, b.buffer);
    giveBlockBuffers([a, b]);
    const again = [takeBlockBuffer(BS), takeBlockBuffer(BS)];
    assert.ok(again.includes(a) && again.includes(b), 'both reused');
    assert.equal(takeBlockBuffer(BS).length, BS);
  });
});
