/**
 * Reader pins (agent/engine/pins.ts): a snapshot a reader has pinned can be
 * deleted; it is hidden (its name free again), the pin reads exactly what it
 * held, and the last release frees it and the chain below. Pins are not
 * stored: a close or a crash with a pin held leaves a snapshot hidden for its
 * reader alone (heldByReader), which fsck accepts (also offline) and the next
 * open frees. A SIGKILLed worker pinning, deleting, reverting and releasing
 * at random moments always leaves a pool fsck passes.
 */
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { open } from 'lmdb';
import { fsckPoolDir, isSnapsyncError, Pool } from '../../agent/engine';
import type { SnapshotRecord } from '../../agent/engine/store/records';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const SIZE = 16 * BS;
const KILLS = Number(process.env.SNAPSYNC_PIN_CRASH_CYCLES ?? 8);

function hiddenSnapshots(pool: Pool) {
  return pool.listSnapshots(undefined, { includeHidden: true }).filter((s) => s.hidden);
}

async function fsckClean(pool: Pool, where: string): Promise<void> {
  assert.deepEqual((await pool.fsck()).problems, [], `${where}: fsck`);
}

/** A pool with vdisk `disk`: 0x11 in blocks 0-7, snapshot `s`, then 0x22 over blocks 0-3. */
function poolWithSnapshot(dir: string): Pool {
  const pool = Pool.create(dir, { blockSize: BS, capacityBytes: 1024 * BS });
  pool.createContainer({ name: 'disk', type: 'vdisk', size: SIZE });
  pool.write('disk', 0, Buffer.alloc(8 * BS, 0x11));
  pool.snapshot('disk', 's');
  pool.write('disk', 0, Buffer.alloc(4 * BS, 0x22));
  return pool;
}

describe('reader pins: a deleted snapshot with a reader is hidden, read exactly, freed when the reader goes', () => {
  after(cleanupTempDirs);

  it('delete while pinned: the name is free, the pin reads the old data, the release frees it', async () => {
    const pool = poolWithSnapshot(tempDir());
    try {
      const old = pool.readSnapshot('disk@s', 0, SIZE);
      const pin = pool.pinSnapshot(pool.describeSnapshot('disk@s').uuid);
      pool.deleteSnapshot('disk@s');
      assert.throws(
        () => pool.describeSnapshot('disk@s'),
        (e) => isSnapsyncError(e, 'NOT_FOUND'),
      );
      assert.deepEqual(
        hiddenSnapshots(pool).map((x) => x.uuid),
        [pin.snapshot.uuid],
        'hidden, not freed',
      );
      assert.equal(pool.info().snapshots, 0);
      assert.ok(pin.hidden);
      await fsckClean(pool, 'hidden');
      // The name is free: a new snapshot of that name reads the disk as it is now.
      pool.snapshot('disk', 's');
      const now = pool.readSnapshot('disk@s', 0, SIZE);
      assert.ok(!now.equals(old));
      assert.ok(now.subarray(0, 4 * BS).equals(Buffer.alloc(4 * BS, 0x22)));
      assert.ok(pin.read(0, SIZE).equals(old), 'the pin reads what it held');
      assert.ok(pin.read(2 * BS, 3 * BS).equals(old.subarray(2 * BS, 5 * BS)));
      assert.deepEqual(
        pin.allocation(0, SIZE).map((e) => e.state),
        ['data', 'hole'],
      );
      // Nothing reads through the old s any more, but its reader: it stays, held for it.
      pool.deleteContainer('disk', { recursive: true });
      assert.deepEqual(
        hiddenSnapshots(pool).map((x) => x.uuid),
        [pin.snapshot.uuid],
      );
      await fsckClean(pool, 'hidden for its reader alone');
      assert.ok(pin.read(0, SIZE).equals(old), 'still exact');
      pool.reclaim();
      assert.equal(pool.info().usedBlocks, 8, 'the pinned blocks are kept');

      pin.release();
      pin.release(); // idempotent
      assert.deepEqual(hiddenSnapshots(pool), [], 'freed with its last reader');
      assert.throws(
        () => pin.read(0, BS),
        (e) => isSnapsyncError(e, 'NOT_FOUND'),
      );
      pool.reclaim();
      assert.equal(pool.info().usedBlocks, 0, 'its blocks are free again');
      await fsckClean(pool, 'after the release');
    } finally {
      await pool.close();
    }
  });

  it('a pinned snapshot whose dependents go while it is hidden stays for its reader, then goes with the chain', async () => {
    const pool = poolWithSnapshot(tempDir());
    try {
      pool.snapshot('disk', 't'); // s ← t ← current
      const t = pool.readSnapshot('disk@t', 0, SIZE);
      const pinS = pool.pinSnapshot(pool.describeSnapshot('disk@s').uuid);
      const pinT = pool.pinSnapshot(pool.describeSnapshot('disk@t').uuid);
      const pinS2 = pool.pinSnapshot(pool.describeSnapshot('disk@s').uuid);
      pool.deleteSnapshot('disk@s'); // t reads through it: hidden for t
      pool.deleteContainer('disk', { recursive: true }); // t hidden; the current table goes; s and t stay for readers
      assert.equal(hiddenSnapshots(pool).length, 2);
      await fsckClean(pool, 'two hidden, each held');
      assert.ok(pinT.read(0, SIZE).equals(t));
      pinS.release();
      assert.equal(hiddenSnapshots(pool).length, 2, 's still has a reader and a dependent');
      pinT.release(); // t goes; s keeps its second reader
      assert.deepEqual(
        hiddenSnapshots(pool).map((s) => s.name),
        ['s'],
      );
      await fsckClean(pool, 's held for its reader alone');
      assert.ok(pinS2.read(0, 8 * BS).equals(Buffer.alloc(8 * BS, 0x11)));
      pinS2.release();
      assert.deepEqual(hiddenSnapshots(pool), []);
      pool.reclaim();
      assert.equal(pool.info().usedBlocks, 0, 'every block is free');
      await fsckClean(pool, 'empty');
    } finally {
      await pool.close();
    }
  });

  it('a pin is refused for a missing or deleted snapshot and a VM snapshot; the usage counts a pinned table as kept', async () => {
    const pool = poolWithSnapshot(tempDir());
    try {
      assert.throws(
        () => pool.pinSnapshot('no-such-uuid'),
        (e) => isSnapsyncError(e, 'NOT_FOUND'),
      );
      pool.createContainer({ name: 'vm', type: 'vm' });
      pool.createContainer({ name: 'vm-disk0', type: 'vdisk', size: SIZE });
      pool.addMember('vm', 'disk0', 'vm-disk0');
      const vmSnap = pool.snapshot('vm', 'v');
      assert.throws(
        () => pool.pinSnapshot(vmSnap.uuid),
        (e) => isSnapsyncError(e, 'TYPE_MISMATCH'),
      );
      const before = pool.usage('disk').exclusiveBytes;
      const pin = pool.pinSnapshot(pool.describeSnapshot('disk@s').uuid);
      assert.ok(pool.usage('disk').exclusiveBytes < before, "deleting the disk would not free s's blocks");
      pool.deleteSnapshot('disk@s');
      assert.throws(
        () => pool.pinSnapshot(pin.snapshot.uuid),
        (e) => isSnapsyncError(e, 'NOT_FOUND'),
      );
      // A VM snapshot's member pinned by a reader: deleting the VM snapshot hides the member for it.
      const member = pool.pinSnapshot(pool.describeSnapshot('vm-disk0@v').uuid);
      pool.deleteSnapshot('vm@v');
      await fsckClean(pool, 'a member held for its reader');
      member.release();
      pin.release();
      // Both are still read through by their disks' current tables: hidden, kept for those.
      assert.deepEqual(
        hiddenSnapshots(pool)
          .map((x) => x.name)
          .sort(),
        ['s', 'v'],
      );
      await fsckClean(pool, 'released');
      pool.deleteContainer('disk');
      pool.deleteContainer('vm');
      assert.deepEqual(hiddenSnapshots(pool), []);
    } finally {
      await pool.close();
    }
  });

  it('closed with a pin held (as a crash would): fsck accepts the held snapshot, also offline; the next open frees it', async () => {
    const dir = tempDir();
    const pool = poolWithSnapshot(dir);
    const pin = pool.pinSnapshot(pool.describeSnapshot('disk@s').uuid);
    pool.deleteSnapshot('disk@s'); // hidden: the current table reads through it
    pool.deleteContainer('disk'); // s loses its last dependent: hidden for the reader alone
    await pool.close();
    pin.release(); // after close: nothing happens, nothing throws

    assert.deepEqual(
      (await storedSnapshots(dir)).map((x) => [x.name, x.hidden, x.heldByReader]),
      [['s', true, true]],
      'the reason is on the record',
    );
    assert.deepEqual((await fsckPoolDir(dir)).problems, [], 'offline fsck of the pool as the crash left it');
    const reopened = Pool.open(dir);
    try {
      assert.deepEqual(hiddenSnapshots(reopened), [], 'freed when the pool opened');
      reopened.reclaim();
      assert.equal(reopened.info().usedBlocks, 0);
      await fsckClean(reopened, 'after open');
    } finally {
      await reopened.close();
    }
  });

  it(`SIGKILLed ${KILLS} times while pinning, deleting, reverting and releasing: fsck clean before and after each open`, async () => {
    const dir = tempDir();
    const setup = Pool.create(dir, { blockSize: BS, capacityBytes: 1 << 24 });
    setup.createContainer({ name: 'disk', type: 'vdisk', size: SIZE });
    setup.write('disk', 0, Buffer.alloc(SIZE, 0x01));
    setup.snapshot('disk', 'base');
    await setup.close();
    let heldSeen = 0;
    for (let cycle = 0; cycle < KILLS; cycle++) {
      const out = await runUntilKilled(dir, cycle, 20 + Math.floor(Math.random() * 200));
      assert.doesNotMatch(out, /MISMATCH/, `cycle ${cycle}: a pin read what its snapshot held`);
      assert.deepEqual((await fsckPoolDir(dir)).problems, [], `cycle ${cycle}: offline fsck after the kill`);
      heldSeen += (await storedSnapshots(dir)).filter((s) => s.heldByReader).length;
      const pool = Pool.open(dir);
      try {
        await fsckClean(pool, `cycle ${cycle}: after open`);
        pool.reclaim();
        await fsckClean(pool, `cycle ${cycle}: after reclaim`);
        assert.ok(pool.readSnapshot('disk@base', 0, SIZE).equals(Buffer.alloc(SIZE, 0x01)));
      } finally {
        await pool.close();
      }
      assert.deepEqual(
        (await storedSnapshots(dir)).filter((s) => s.heldByReader).map((s) => s.name),
        [],
        `cycle ${cycle}: the open freed what readers alone held`,
      );
    }
    assert.ok(heldSeen > 0, 'the worker did hide snapshots for readers');
  });
});

/** The snapshot records of a closed pool, as stored. */
async function storedSnapshots(dir: string): Promise<SnapshotRecord[]> {
  const root = open({ path: path.join(dir, 'meta'), maxDbs: 16, readOnly: true });
  try {
    const db = root.openDB<SnapshotRecord, number>({
      name: 'snapshots',
      encoding: 'msgpack',
      keyEncoding: 'ordered-binary',
    });
    return [...db.getRange({})].map((e) => e.value);
  } finally {
    await root.close();
  }
}

/** Runs pin-crash-worker.ts; kills it (SIGKILL) `afterMs` after its first line. */
function runUntilKilled(dir: string, cycle: number, afterMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'pin-crash-worker.ts'), dir, String(cycle)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      err += d;
    });
    const timer = setInterval(() => {
      if (out.length > 0) {
        clearInterval(timer);
        setTimeout(() => child.kill('SIGKILL'), afterMs);
      }
    }, 5);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      if (signal === 'SIGKILL') resolve(out);
      else reject(new Error(`worker exited with ${code}: ${err}${out}`));
    });
  });
}
