/**
 * Sub-block writes (agent/engine/sub-block.ts): a write of whole 4 KiB pages
 * into a block a clone does not own yet writes only those pages, and every
 * reader still sees exactly what it should, through snapshots, clones,
 * overwrites, trims, flatten, pruning, reopen and fsck. What a user checks:
 * the bytes read, and the disk space the data files take.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsckPoolDir, Pool } from '../../agent/engine';
import { IN_PIECES } from '../../agent/engine/block-io';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 64 * 1024;
const PAGE = 4096;

/** Bytes the pool's data files take on disk (allocated, not apparent size). */
function dataBytesOnDisk(dir: string): number {
  return fs
    .readdirSync(dir)
    .filter((f) => /^data(\.\d+)?$/.test(f))
    .reduce((n, f) => n + fs.statSync(path.join(dir, f)).blocks * 512, 0);
}

/** A pool with `base` (4 blocks of distinct bytes per page) and its snapshot `base@s`, flushed. */
async function basePool(): Promise<{ dir: string; pool: Pool; content: Buffer }> {
  const dir = tempDir();
  const pool = Pool.create(dir, { blockSize: BS, capacityBytes: 256 * BS, dataFiles: 1 });
  pool.createContainer({ name: 'base', type: 'vdisk', size: 4 * BS });
  const content = Buffer.alloc(4 * BS);
  for (let page = 0; page < content.length / PAGE; page++)
    content.fill(page + 1, page * PAGE, (page + 1) * PAGE);
  pool.write('base', 0, content);
  pool.snapshot('base', 's');
  await pool.flush();
  return { dir, pool, content };
}

function expectRead(pool: Pool, name: string, want: Buffer): void {
  const got = pool.read(name, 0, want.length);
  for (let at = 0; at < want.length; at += PAGE) {
    assert.ok(
      got.subarray(at, at + PAGE).equals(want.subarray(at, at + PAGE)),
      `${name}: page ${at / PAGE} reads ${got[at]}, not ${want[at]}`,
    );
  }
}

describe('sub-block writes', () => {
  after(cleanupTempDirs);

  it('a 4 KiB write into a clone takes 4 KiB of disk, not a 64 KiB block, and reads merge the rest from the snapshot', async () => {
    const { dir, pool, content } = await basePool();
    try {
      pool.clone('base@s', 'c');
      await pool.flush();
      const before = dataBytesOnDisk(dir);
      const want = Buffer.from(content);
      for (const page of [1, 17, 18, 40]) {
        pool.write('c', page * PAGE, Buffer.alloc(PAGE, 0xee));
        want.fill(0xee, page * PAGE, (page + 1) * PAGE);
      }
      await pool.flush();
      // Four pages in three blocks: 16 KiB written, where whole-block copy-ups wrote 192 KiB.
      assert.equal(dataBytesOnDisk(dir) - before, 4 * PAGE);
      expectRead(pool, 'c', want);
      expectRead(pool, 'base', content);
      assert.ok(pool.readSnapshot('base@s', 0, 4 * BS).equals(content));
      assert.deepEqual((await pool.fsck()).problems, []);
    } finally {
      await pool.close();
    }
    const again = Pool.open(dir);
    try {
      const want = Buffer.from(content);
      for (const page of [1, 17, 18, 40]) want.fill(0xee, page * PAGE, (page + 1) * PAGE);
      expectRead(again, 'c', want);
    } finally {
      await again.close();
    }
    assert.deepEqual((await fsckPoolDir(dir)).problems, []);
  });

  it('reads merge through a chain of partly owned blocks: each level gives its own pages', async () => {
    const { pool, content } = await basePool();
    try {
      const want = Buffer.from(content);
      pool.clone('base@s', 'c');
      pool.write('c', 2 * PAGE, Buffer.alloc(PAGE, 0xa1));
      want.fill(0xa1, 2 * PAGE, 3 * PAGE);
      pool.snapshot('c', 's1');
      pool.clone('c@s1', 'd');
      pool.write('d', 5 * PAGE, Buffer.alloc(2 * PAGE, 0xa2));
      want.fill(0xa2, 5 * PAGE, 7 * PAGE);
      pool.snapshot('d', 's2');
      pool.write('d', 2 * PAGE, Buffer.alloc(PAGE, 0xa3)); // over c's page, in d's own block
      const wantD = Buffer.from(want).fill(0xa3, 2 * PAGE, 3 * PAGE);
      expectRead(pool, 'd', wantD);
      assert.ok(pool.readSnapshot('d@s2', 0, 4 * BS).equals(want));
      expectRead(pool, 'c', Buffer.from(content).fill(0xa1, 2 * PAGE, 3 * PAGE));
      // The relay of NBD reads asks the event loop for a block read from several places.
      assert.deepEqual(pool.locate('base', 0, 2)?.blocks.length, 2);
      const [first, second] = pool.locate('d', 0, 2)!.blocks;
      assert.equal(first, IN_PIECES);
      assert.ok(second! > 0 && second! < IN_PIECES);
      assert.deepEqual((await pool.fsck()).problems, []);
    } finally {
      await pool.close();
    }
  });

  it('writes not aligned to pages copy up only the pages they touch; filling every page makes the block whole', async () => {
    const { dir, pool, content } = await basePool();
    try {
      pool.clone('base@s', 'c');
      const want = Buffer.from(content);
      pool.write('c', 3 * PAGE + 100, Buffer.alloc(10, 0x77)); // inside page 3
      want.fill(0x77, 3 * PAGE + 100, 3 * PAGE + 110);
      pool.write('c', 5 * PAGE - 7, Buffer.alloc(20, 0x78)); // across pages 4 and 5
      want.fill(0x78, 5 * PAGE - 7, 5 * PAGE + 13);
      expectRead(pool, 'c', want);
      for (let page = 0; page < BS / PAGE; page++) {
        pool.write('c', page * PAGE + 1, Buffer.alloc(PAGE - 2, page + 0x30));
        want.fill(page + 0x30, page * PAGE + 1, (page + 1) * PAGE - 1);
      }
      expectRead(pool, 'c', want);
      await pool.flush();
      // Whole now: the snapshot's block is no longer read for block 0.
      assert.ok(pool.locate('c', 0, 1)!.blocks[0]! < IN_PIECES);
      assert.deepEqual((await pool.fsck()).problems, []);
    } finally {
      await pool.close();
    }
    assert.deepEqual((await fsckPoolDir(dir)).problems, []);
  });

  it('trim and write-zeroes of pages in a partly owned block read zeros there and the snapshot elsewhere', async () => {
    const { pool, content } = await basePool();
    try {
      pool.clone('base@s', 'c');
      const want = Buffer.from(content);
      pool.write('c', PAGE, Buffer.alloc(PAGE, 0x11));
      want.fill(0x11, PAGE, 2 * PAGE);
      pool.writeZeroes('c', 2 * PAGE, PAGE);
      want.fill(0, 2 * PAGE, 3 * PAGE);
      pool.trim('c', PAGE, PAGE);
      want.fill(0, PAGE, 2 * PAGE);
      expectRead(pool, 'c', want);
      pool.trim('c', 0, BS); // the whole block: zeros over the snapshot's data
      want.fill(0, 0, BS);
      expectRead(pool, 'c', want);
      assert.deepEqual((await pool.fsck()).problems, []);
    } finally {
      await pool.close();
    }
  });

  it('flatten makes partly owned blocks whole before it cuts the chain', async () => {
    const { pool, content } = await basePool();
    try {
      pool.clone('base@s', 'c');
      const want = Buffer.from(content);
      pool.write('c', 7 * PAGE, Buffer.alloc(PAGE, 0x5a));
      want.fill(0x5a, 7 * PAGE, 8 * PAGE);
      await pool.flatten('c');
      assert.equal(pool.describe('c').parentSnapshot, null);
      pool.deleteSnapshot('base@s');
      pool.deleteContainer('base');
      pool.reclaim();
      expectRead(pool, 'c', want);
      assert.deepEqual((await pool.fsck()).problems, []);
    } finally {
      await pool.close();
    }
  });

  it("a deleted snapshot's blocks its one dependent owns only in part stay readable after pruning", async () => {
    const { pool, content } = await basePool();
    try {
      pool.clone('base@s', 'c');
      pool.deleteSnapshot('base@s');
      pool.deleteContainer('base');
      const want = Buffer.from(content);
      pool.write('c', 0, Buffer.alloc(BS, 0x44)); // block 0 whole: the hidden snapshot's copy goes
      want.fill(0x44, 0, BS);
      pool.write('c', BS + PAGE, Buffer.alloc(PAGE, 0x45)); // block 1 in part: its copy stays
      want.fill(0x45, BS + PAGE, BS + 2 * PAGE);
      await pool.flush();
      pool.reclaim();
      expectRead(pool, 'c', want);
      assert.deepEqual((await pool.fsck()).problems, []);
    } finally {
      await pool.close();
    }
  });

  it('deleting superseded snapshots frees their blocks when the newer ones own every page they did', async () => {
    const { pool } = await basePool();
    try {
      pool.clone('base@s', 'c');
      const want = Buffer.from(pool.read('c', 0, 4 * BS));
      for (let i = 0; i < 8; i++) {
        pool.write('c', 0, Buffer.alloc(PAGE, 0x60 + i)); // page 0 of block 0 each night
        want.fill(0x60 + i, 0, PAGE);
        pool.snapshot('c', `n${i}`);
      }
      await pool.flush();
      const before = pool.info().usedBlocks;
      for (let i = 0; i < 7; i++) pool.deleteSnapshot(`c@n${i}`);
      await pool.flush();
      pool.reclaim();
      // Each superseded night held a block of its own for page 0: all seven go, n7's page 0 covers theirs.
      assert.equal(pool.info().usedBlocks, before - 7);
      expectRead(pool, 'c', want);
      assert.ok(pool.readSnapshot('c@n7', 0, 4 * BS).equals(want));
      assert.deepEqual((await pool.fsck()).problems, []);
    } finally {
      await pool.close();
    }
  });
});
