/**
 * Imports into an existing container (Pool.importInto): kept whole by
 * complete(), undone exactly by abandon(), by a device error or a full pool,
 * and by a crash (a close without complete, then the open that restores it);
 * the marked state a crash leaves is fsck-clean, offline too.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { fsckPoolDir, isSnapsyncError, Pool } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const SIZE = 24 * BS;
const key = (k: string) => ({ idempotency: { key: k, fingerprint: 'f', expiresAt: Date.now() + 60_000 } });

/** A pool with vdisk d: data under a user snapshot, data and explicit zeros above it, holes. */
function makePool(): { dir: string; pool: Pool } {
  const dir = path.join(tempDir(), 'pool');
  const pool = Pool.create(dir, { blockSize: BS, capacityBytes: 256 * BS });
  pool.createContainer({ name: 'd', type: 'vdisk', size: SIZE });
  pool.write('d', 0, Buffer.alloc(12 * BS, 1));
  pool.snapshot('d', 'before');
  pool.write('d', 2 * BS, Buffer.alloc(3 * BS, 2));
  pool.writeZeroes('d', 6 * BS, 2 * BS);
  pool.write('d', 20 * BS, Buffer.alloc(BS + 100, 3));
  return { dir, pool };
}

/** What the container looks like to a user: bytes, identity, size, lineage, snapshots (hidden ones too). */
function state(pool: Pool) {
  const { uuid, generation, size } = pool.describe('d');
  return {
    bytes: pool.read('d', 0, size),
    uuid,
    generation,
    size,
    lineage: pool.lineage('d').map((l) => l.table),
    snapshots: pool.listSnapshots(undefined, { includeHidden: true }).map((s) => s.name),
  };
}

/** Writes `image` the way the agent's import does: data blocks written, all-zero blocks zeroed. */
function writeImage(target: ReturnType<Pool['importInto']>, image: Buffer, upTo = image.length): void {
  for (let at = 0; at < upTo; at += BS) {
    const piece = image.subarray(at, Math.min(at + BS, upTo));
    if (piece.every((b) => b === 0)) target.writeZeroes(at, piece.length);
    else target.write(at, piece);
  }
}

function imageOf(length: number): Buffer {
  const image = Buffer.alloc(length);
  for (let b = 0; b * BS < length; b++) if (b % 3 !== 1) image.fill(0x40 + b, b * BS, (b + 1) * BS);
  return image;
}

async function clean(pool: Pool): Promise<void> {
  pool.reclaim();
  await pool.flush();
  assert.deepEqual((await pool.fsck()).problems, []);
}

describe('import into an existing container: all or nothing', () => {
  after(cleanupTempDirs);

  it('complete() keeps the whole image; the undo point goes and its blocks are freed', async () => {
    const { pool } = makePool();
    await pool.flush();
    const before = state(pool);
    const image = imageOf(SIZE);
    const target = pool.importInto('d');
    writeImage(target, image);
    const result = target.complete((info) => ({ name: info.name }), key('k'));
    assert.deepEqual(result, { name: 'd' });
    assert.deepEqual(pool.idempotent('k')?.result, result);
    const after = state(pool);
    assert.ok(after.bytes.equals(image));
    assert.deepEqual(
      { ...after, bytes: null, lineage: after.lineage.slice(1) },
      { ...before, bytes: null, lineage: before.lineage.slice(1) },
      'same identity, size, snapshots and chain below the current table',
    );
    assert.ok(pool.readSnapshot('d@before', 0, 12 * BS).equals(Buffer.alloc(12 * BS, 1)));
    const used = pool.info().usedBlocks;
    await clean(pool);
    assert.ok(pool.info().usedBlocks < used, 'the replaced blocks went back to free space');
    await pool.close();
  });

  it('complete() of an image smaller than the data keeps the tail, over a hidden undo point', async () => {
    const { pool } = makePool();
    const image = imageOf(10 * BS);
    const target = pool.importInto('d');
    writeImage(target, image);
    target.complete(() => null);
    const bytes = pool.read('d', 0, SIZE);
    assert.ok(bytes.subarray(0, 10 * BS).equals(image));
    assert.ok(bytes.subarray(20 * BS, 21 * BS + 100).equals(Buffer.alloc(BS + 100, 3)));
    assert.deepEqual(
      pool.listSnapshots('d').map((s) => s.name),
      ['before'],
    );
    await clean(pool);
    // A later revert frees the hidden undo point with the table that read through it.
    pool.revert('d', 'before');
    await clean(pool);
    assert.deepEqual(
      pool.listSnapshots(undefined, { includeHidden: true }).map((s) => s.name),
      ['before'],
    );
    await pool.close();
  });

  it('abandon() puts the container back exactly: bytes, table, uuid, generation, size', async () => {
    const { pool } = makePool();
    const before = state(pool);
    const target = pool.importInto('d');
    writeImage(target, imageOf(SIZE), 15 * BS);
    assert.equal(pool.attachedContainer(pool.describe('d').id, before.uuid, before.generation, SIZE), null);
    target.abandon();
    assert.deepEqual(state(pool), before);
    assert.equal(pool.attachedContainer(pool.describe('d').id, before.uuid, before.generation, SIZE), 'd');
    assert.throws(() => target.write(0, Buffer.alloc(1)), /completed or abandoned/);
    await clean(pool);
    await pool.close();
  });

  it('a device error mid-import fails it, and the container reads as before', async () => {
    const { pool } = makePool();
    await pool.flush();
    const before = state(pool);
    const target = pool.importInto('d');
    const image = imageOf(SIZE);
    let writes = 0;
    pool.device.setFaultInjector((op) => {
      if (op === 'write' && ++writes === 6) throw Object.assign(new Error('EIO'), { code: 'EIO' });
    });
    assert.throws(
      () => writeImage(target, image),
      (err) => isSnapsyncError(err, 'IO_ERROR'),
    );
    pool.device.setFaultInjector(null);
    target.abandon();
    assert.deepEqual(state(pool), before);
    await clean(pool);
    await pool.close();
  });

  it('a pool too full for the new image next to the old fails the import with OUT_OF_SPACE and keeps the old', async () => {
    const dir = path.join(tempDir(), 'pool');
    const pool = Pool.create(dir, { blockSize: BS, capacityBytes: 40 * BS });
    pool.createContainer({ name: 'd', type: 'vdisk', size: SIZE });
    pool.write('d', 0, Buffer.alloc(SIZE, 5));
    await pool.flush();
    const before = state(pool);
    const target = pool.importInto('d');
    assert.throws(
      () => writeImage(target, Buffer.alloc(SIZE, 6)),
      (err) => isSnapsyncError(err, 'OUT_OF_SPACE'),
    );
    target.abandon();
    assert.deepEqual(state(pool), before);
    await clean(pool);
    await pool.close();
  });

  it('a crash before complete() leaves a marked, fsck-clean pool; the next open restores it', async () => {
    const { dir, pool } = makePool();
    const before = state(pool);
    const target = pool.importInto('d');
    writeImage(target, imageOf(SIZE), 9 * BS);
    await pool.flush();
    assert.deepEqual((await pool.fsck()).problems, []);
    await pool.close(); // as a crash: the mark and the partial import are committed
    assert.deepEqual((await fsckPoolDir(dir)).problems, []);
    const reopened = Pool.open(dir);
    assert.deepEqual(reopened.restoredAtOpen, ['d']);
    assert.deepEqual(state(reopened), before);
    await clean(reopened);
    // The retry starts over on the restored disk.
    const image = imageOf(SIZE);
    const retry = reopened.importInto('d');
    writeImage(retry, image);
    retry.complete(() => null);
    assert.ok(reopened.read('d', 0, SIZE).equals(image));
    await clean(reopened);
    await reopened.close();
    const again = Pool.open(dir);
    assert.deepEqual(again.restoredAtOpen, []);
    assert.ok(again.read('d', 0, SIZE).equals(image));
    await again.close();
  });

  it('a file container too; a VM is refused', async () => {
    const { pool } = makePool();
    pool.createContainer({ name: 'f', type: 'file', size: 3 * BS });
    pool.write('f', 0, Buffer.alloc(3 * BS, 9));
    const target = pool.importInto('f');
    target.write(0, Buffer.alloc(BS, 8));
    target.abandon();
    assert.ok(pool.read('f', 0, 3 * BS).equals(Buffer.alloc(3 * BS, 9)));
    pool.createContainer({ name: 'v', type: 'vm' });
    assert.throws(
      () => pool.importInto('v'),
      (err) => isSnapsyncError(err, 'TYPE_MISMATCH'),
    );
    await clean(pool);
    await pool.close();
  });

  it('random histories, images and ends (complete, abandon, a crash before or after complete): old or new, exactly', async () => {
    const seed = Number(process.env.SNAPSYNC_MODEL_SEED ?? Date.now() % 2 ** 31);
    let rng = seed >>> 0;
    const rand = (n: number) => {
      rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
      return (rng >>> 8) % n;
    };
    const runs = Number(process.env.SNAPSYNC_MODEL_RUNS ?? 12);
    for (let run = 0; run < runs; run++) {
      const dir = path.join(tempDir(), 'pool');
      let pool = Pool.create(dir, { blockSize: BS, capacityBytes: 1024 * BS });
      const blocks = 4 + rand(28);
      pool.createContainer({ name: 'd', type: 'vdisk', size: blocks * BS });
      // A history: writes, zeros, snapshots, a clone sharing the chain, a revert.
      for (let step = 0; step < 12; step++) {
        const at = rand(blocks) * BS + rand(2) * rand(BS);
        const length = Math.min(blocks * BS - at, 1 + rand(3 * BS));
        const op = rand(10);
        if (op < 5) pool.write('d', at, Buffer.alloc(length, 1 + rand(250)));
        else if (op < 7) pool.writeZeroes('d', at, length);
        else if (op < 9) pool.snapshot('d', `s${step}`);
        else if (pool.listSnapshots('d').length > 0) {
          const s = pool.listSnapshots('d')[rand(pool.listSnapshots('d').length)]!;
          if (rand(2) === 0) pool.clone(`d@${s.name}`, `c${step}`);
          else pool.revert('d', s.name);
        }
      }
      // Two imports in a row, each ending at random.
      for (let round = 0; round < 2; round++) {
        const others = (p: Pool) =>
          JSON.stringify([
            ...p
              .listContainers()
              .filter((c) => c.name !== 'd')
              .map((c) => p.read(c.name, 0, c.size).toString('base64')),
            ...p
              .listSnapshots()
              .map((s) => p.readSnapshot(`${s.container}@${s.name}`, 0, s.size).toString('base64')),
          ]);
        const before = { ...state(pool), others: others(pool) };
        const length = Math.min(blocks * BS, rand(blocks + 1) * BS + rand(2) * rand(BS));
        const image = Buffer.alloc(length);
        for (let b = 0; b * BS < length; b++)
          if (rand(3) > 0) image.fill(1 + rand(250), b * BS, Math.min((b + 1) * BS, length));
        const expected = Buffer.from(before.bytes);
        image.copy(expected);
        const end = ['complete', 'abandon', 'crash', 'crash after complete'][rand(4)]!;
        const kept = end === 'complete' || end === 'crash after complete';
        const target = pool.importInto('d');
        writeImage(target, image, kept ? length : rand(length + 1));
        if (kept) target.complete(() => null);
        if (end === 'abandon') target.abandon();
        if (end.startsWith('crash')) {
          await pool.close();
          assert.deepEqual((await fsckPoolDir(dir)).problems, [], `seed ${seed} run ${run}: offline fsck`);
          pool = Pool.open(dir);
          assert.deepEqual(pool.restoredAtOpen, end === 'crash' ? ['d'] : []);
        }
        const after = state(pool);
        const what = `seed ${seed} run ${run} round ${round} (${end}, image ${length} of ${blocks * BS})`;
        assert.ok(after.bytes.equals(kept ? expected : before.bytes), `${what}: content`);
        assert.deepEqual(
          [after.uuid, after.generation, after.size, others(pool)],
          [before.uuid, before.generation, before.size, before.others],
          `${what}: identity and everything else`,
        );
        if (!kept) assert.deepEqual(after.lineage, before.lineage, `${what}: the same tables`);
        // Kept: read through the old chain, or through the old table too when the image left some of its data.
        else
          assert.ok(
            [before.lineage.slice(1), before.lineage].some(
              (below) => JSON.stringify(below) === JSON.stringify(after.lineage.slice(1)),
            ),
            `${what}: the same chain below`,
          );
        pool.reclaim();
        await pool.flush();
        assert.deepEqual((await pool.fsck()).problems, [], `${what}: fsck`);
      }
      await pool.close();
    }
  });
});
