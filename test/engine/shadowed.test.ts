/**
 * The nightly refresh on a real pool: production rewrites part of its disk,
 * is snapshotted, staging is synced to the new nightly and yesterday's
 * nightly (and staging's safety snapshot) are deleted. Space must stay
 * bounded: a deleted nightly that the next one still reads through (hidden)
 * gives up the blocks the next one maps again (engine/shadowed.ts), and goes
 * once it holds nothing. What every container and snapshot reads never
 * changes, and fsck passes after every night.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const BLOCKS = 64;

describe('engine: hidden snapshots give up what no one can read (the nightly refresh)', () => {
  after(cleanupTempDirs);

  for (const rewritten of [BLOCKS, BLOCKS / 2]) {
    it(`production rewriting ${rewritten} of ${BLOCKS} blocks a night: used space stays bounded over 12 nights, every read unchanged, fsck clean`, async () => {
      const pool = Pool.create(path.join(tempDir('snapsync-shadowed-'), 'pool'), { blockSize: BS });
      try {
        pool.createContainer({ name: 'prod', type: 'vdisk', size: BLOCKS * BS });
        pool.createContainer({ name: 'stg', type: 'vdisk', size: BLOCKS * BS });
        // Night 0's base: every block written once.
        for (let b = 0; b < BLOCKS; b++) pool.write('prod', b * BS, Buffer.alloc(BS, 0x40));
        const used: number[] = [];
        for (let night = 1; night <= 12; night++) {
          for (let b = 0; b < rewritten; b++) pool.write('prod', b * BS, Buffer.alloc(BS, night));
          pool.snapshot('prod', `n${night}`);
          const synced = pool.sync('stg', `prod@n${night}`);
          if (night > 1) pool.deleteSnapshot(`prod@n${night - 1}`);
          if (synced.safetySnapshot) pool.deleteSnapshot(`stg@${synced.safetySnapshot.name}`);
          pool.reclaim();
          used.push(pool.info().usedBlocks);
          for (const name of ['prod', 'stg', `prod@n${night}`]) {
            const data = name.includes('@')
              ? pool.readSnapshot(name, 0, BLOCKS * BS)
              : pool.read(name, 0, BLOCKS * BS);
            for (let b = 0; b < BLOCKS; b++) {
              const want = b < rewritten ? night : 0x40;
              assert.equal(data[b * BS], want, `night ${night}: ${name} block ${b}`);
            }
          }
          const report = await pool.fsck();
          assert.deepEqual(report.problems, [], `night ${night}: fsck`);
        }
        // Before: one night's rewrite more every night (12 nights: 12 × rewritten + base). Now the base,
        // the live nightly's rewrite and nothing of the deleted ones.
        assert.ok(
          used.every((u) => u <= BLOCKS + rewritten),
          `used blocks per night stay within ${BLOCKS + rewritten}: ${used.join(' ')}`,
        );
        const hidden = pool.listSnapshots('prod', { includeHidden: true }).filter((s) => s.hidden);
        assert.ok(hidden.length <= 1, `hidden nightlies left: ${hidden.map((s) => s.name).join(' ')}`);
      } finally {
        await pool.close();
      }
    });
  }

  it("a container's own snapshot, deleted after the container rewrote it, gives its blocks back: at once, after its last reader, after a restart", async () => {
    const dir = path.join(tempDir('snapsync-shadowed-own-'), 'pool');
    let pool = Pool.create(dir, { blockSize: BS });
    const rewriteAll = (value: number) => {
      for (let b = 0; b < BLOCKS; b++) pool.write('d', b * BS, Buffer.alloc(BS, value));
    };
    const check = async (value: number, when: string) => {
      const data = pool.read('d', 0, BLOCKS * BS);
      for (let b = 0; b < BLOCKS; b++) assert.equal(data[b * BS], value, `${when}: block ${b}`);
      assert.deepEqual((await pool.fsck()).problems, [], `${when}: fsck`);
    };
    try {
      pool.createContainer({ name: 'd', type: 'vdisk', size: 2 * BLOCKS * BS });
      rewriteAll(0x71);
      // No reader: deleted, it is pruned against the container's current table and goes.
      pool.snapshot('d', 'nightly');
      rewriteAll(0x72);
      pool.deleteSnapshot('d@nightly');
      pool.reclaim();
      assert.equal(pool.info().usedBlocks, BLOCKS, 'the rewritten nightly holds nothing any more');
      assert.deepEqual(pool.listSnapshots('d', { includeHidden: true }), []);
      await check(0x72, 'after the delete');

      // A reader holds it while it is deleted: kept for the reader, then given back when it goes.
      pool.snapshot('d', 'nightly');
      rewriteAll(0x73);
      const uuid = pool.listSnapshots('d')[0]!.uuid;
      const pin = pool.pinSnapshot(uuid);
      pool.deleteSnapshot('d@nightly');
      pool.reclaim();
      assert.equal(pin.read(0, 1)[0], 0x72, 'the reader still reads what it pinned');
      assert.equal(pool.info().usedBlocks, 2 * BLOCKS);
      pin.release();
      pool.reclaim();
      assert.equal(pool.info().usedBlocks, BLOCKS, 'given back once its reader went');
      await check(0x73, 'after the reader');

      // The agent stops while the reader holds it: the next open gives it back.
      pool.snapshot('d', 'nightly');
      rewriteAll(0x74);
      pool.pinSnapshot(pool.listSnapshots('d')[0]!.uuid);
      pool.deleteSnapshot('d@nightly');
      await pool.close();
      pool = Pool.open(dir);
      pool.reclaim();
      assert.equal(pool.info().usedBlocks, BLOCKS, 'given back after a restart');
      assert.deepEqual(pool.listSnapshots('d', { includeHidden: true }), []);
      await check(0x74, 'after a restart');

      // Rewritten after the delete: gone through again once the container maps more.
      pool.snapshot('d', 'nightly');
      for (let b = 0; b < BLOCKS / 2; b++) pool.write('d', b * BS, Buffer.alloc(BS, 0x75));
      pool.deleteSnapshot('d@nightly');
      pool.reclaim();
      // The half it rewrote is given back; the other half is still read through it.
      assert.equal(pool.info().usedBlocks, BLOCKS);
      assert.equal(pool.listSnapshots('d', { includeHidden: true }).length, 1);
      for (let b = BLOCKS / 2; b < BLOCKS; b++) pool.write('d', b * BS, Buffer.alloc(BS, 0x76));
      assert.equal(pool.info().usedBlocks, BLOCKS + BLOCKS / 2);
      pool.reclaim();
      assert.equal(pool.info().usedBlocks, BLOCKS, 'the rest given back once rewritten');
      assert.deepEqual(pool.listSnapshots('d', { includeHidden: true }), []);
    } finally {
      await pool.close();
    }
  });
});
