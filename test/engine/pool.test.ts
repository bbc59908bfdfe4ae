import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool, SnapsyncError } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const rejects = (fn: () => unknown, code: string) =>
  assert.throws(fn, (err: unknown) => err instanceof SnapsyncError && err.code === code);

describe('pool lifecycle', () => {
  after(cleanupTempDirs);

  it('creates with a default 64 KiB block size and reopens with the same uuid', async () => {
    const dir = tempDir();
    const pool = Pool.create(dir);
    const info = pool.info();
    assert.equal(info.blockSize, 65536);
    assert.equal(info.formatVersion, 4);
    await pool.close();
    const again = Pool.open(dir);
    assert.equal(again.info().uuid, info.uuid);
    await again.close();
  });

  it('refuses block sizes that are not a power of two from 4 KiB to 1 MiB', () => {
    for (const blockSize of [2048, 3 * 4096, 2 * 1048576]) {
      rejects(() => Pool.create(tempDir(), { blockSize }), 'INVALID_ARGUMENT');
    }
  });

  it('refuses a capacity of 2^32 blocks or more (format 2 numbers physical blocks in 32 bits)', async () => {
    rejects(
      () => Pool.create(tempDir(), { blockSize: 4096, capacityBytes: 2 ** 32 * 4096 }),
      'INVALID_ARGUMENT',
    );
    const largest = Pool.create(tempDir(), { blockSize: 4096, capacityBytes: (2 ** 32 - 1) * 4096 });
    assert.equal(largest.info().capacityBlocks, 2 ** 32 - 1);
    await largest.close();
  });

  it('keeps data on a given file and caps capacity at its size', async () => {
    const dir = tempDir();
    const data = path.join(tempDir(), 'device.img');
    fs.writeFileSync(data, Buffer.alloc(0));
    fs.truncateSync(data, 8 * 4096);
    const pool = Pool.create(dir, { blockSize: 4096, dataPath: data });
    assert.equal(pool.info().capacityBlocks, 8);
    pool.createContainer({ name: 'd', type: 'vdisk', size: 16 * 4096 });
    pool.write('d', 0, Buffer.alloc(8 * 4096, 7));
    rejects(() => pool.write('d', 8 * 4096, Buffer.alloc(4096, 1)), 'OUT_OF_SPACE');
    await pool.flush();
    assert.equal(fs.readFileSync(data)[0], 7);
    assert.equal((await pool.fsck()).ok, true);
    await pool.close();
  });

  it('stripes blocks over four data files by default, block p in file (p - 1) mod 4, and reads them back after a reopen', async () => {
    const dir = tempDir();
    const BS = 4096;
    let pool = Pool.create(dir, { blockSize: BS });
    const files = ['data', 'data.1', 'data.2', 'data.3'].map((f) => path.join(dir, f));
    assert.deepEqual(pool.info().dataFiles, files);
    assert.equal(pool.info().dataPath, files[0]);
    pool.createContainer({ name: 'd', type: 'vdisk', size: 64 * BS });
    // Ten blocks, each filled with its own number, written in one run across every file.
    const bytes = Buffer.concat(Array.from({ length: 10 }, (_, i) => Buffer.alloc(BS, i + 1)));
    pool.write('d', 0, bytes);
    await pool.writeAsync('d', 20 * BS + 100, Buffer.alloc(3 * BS, 0x77));
    await pool.flush();
    // What a stranger sees on disk: physical blocks 1..10 went round the files, in order.
    const onDisk = files.map((f) => fs.readFileSync(f));
    for (let p = 1; p <= 10; p++) {
      const file = onDisk[(p - 1) % 4]!;
      const at = Math.floor((p - 1) / 4) * BS;
      assert.ok(file.subarray(at, at + BS).equals(Buffer.alloc(BS, p)), `block ${p}`);
    }
    await pool.close();
    pool = Pool.open(dir);
    assert.ok(pool.read('d', 0, 10 * BS).equals(bytes));
    const unaligned = Buffer.alloc(4 * BS, 0xff);
    await pool.readAsync('d', 20 * BS, unaligned);
    assert.ok(unaligned.subarray(100, 100 + 3 * BS).equals(Buffer.alloc(3 * BS, 0x77)));
    assert.ok(unaligned.subarray(0, 100).equals(Buffer.alloc(100)));
    assert.equal((await pool.fsck()).ok, true);
    await pool.close();
  });

  it('takes dataFiles 1 to 64 (one: the layout of format 2), and only 1 with a named data file', async () => {
    const one = tempDir();
    const pool = Pool.create(one, { blockSize: 4096, dataFiles: 1 });
    assert.deepEqual(pool.info().dataFiles, [path.join(one, 'data')]);
    pool.createContainer({ name: 'd', type: 'vdisk', size: 8 * 4096 });
    pool.write('d', 0, Buffer.alloc(3 * 4096, 9));
    await pool.flush();
    assert.equal(fs.statSync(path.join(one, 'data')).size, 3 * 4096);
    assert.equal(fs.existsSync(path.join(one, 'data.1')), false);
    await pool.close();
    for (const dataFiles of [0, 65, 1.5])
      rejects(() => Pool.create(tempDir(), { dataFiles }), 'INVALID_ARGUMENT');
    const device = path.join(tempDir(), 'device.img');
    fs.writeFileSync(device, Buffer.alloc(8 * 4096));
    rejects(
      () => Pool.create(tempDir(), { blockSize: 4096, dataPath: device, dataFiles: 2 }),
      'INVALID_ARGUMENT',
    );
  });

  it('refuses to open a striped pool whose data file is gone (IO_ERROR), and opens again once it is back', async () => {
    const dir = tempDir();
    const pool = Pool.create(dir, { blockSize: 4096 });
    await pool.close();
    fs.renameSync(path.join(dir, 'data.2'), path.join(dir, 'moved'));
    rejects(() => Pool.open(dir), 'IO_ERROR');
    fs.renameSync(path.join(dir, 'moved'), path.join(dir, 'data.2'));
    await Pool.open(dir).close();
  });

  it('refuses a second open in this process and in another process (POOL_LOCKED)', async () => {
    const dir = tempDir();
    const pool = Pool.create(dir);
    rejects(() => Pool.open(dir), 'POOL_LOCKED');
    const script = `require(${JSON.stringify(path.resolve('agent/engine/index.ts'))}).Pool.open(${JSON.stringify(dir)})`;
    const out = (() => {
      try {
        execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { stdio: 'pipe' });
        return 'opened';
      } catch (err) {
        return String((err as { stderr: Buffer }).stderr);
      }
    })();
    assert.match(out, /POOL_LOCKED/);
    await pool.close();
    const reopened = Pool.open(dir);
    await reopened.close();
  });

  it('takes over the lock of a process that died', async () => {
    const dir = tempDir();
    await Pool.create(dir).close();
    fs.writeFileSync(path.join(dir, 'pool.lock'), JSON.stringify({ pid: 999999, start: '1' }));
    const pool = Pool.open(dir);
    await pool.close();
  });

  it('refuses an unknown format version (UNSUPPORTED_VERSION)', async () => {
    const dir = tempDir();
    await Pool.create(dir).close();
    const { open } = await import('lmdb');
    const root = open({ path: path.join(dir, 'meta'), maxDbs: 16 });
    const meta = root.openDB({ name: 'meta' });
    const record = meta.get('pool');
    await meta.put('pool', { ...record, formatVersion: 99 });
    await root.close();
    rejects(() => Pool.open(dir), 'UNSUPPORTED_VERSION');
  });
});

describe('containers and I/O', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: 4096, capacityBytes: 1 << 24 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('reads never-written ranges as zeros and writes at any offset and length', () => {
    pool.createContainer({ name: 'd', type: 'vdisk', size: 100_000 });
    assert.ok(pool.read('d', 0, 100_000).equals(Buffer.alloc(100_000)));
    pool.write('d', 4090, Buffer.from('across a block boundary'));
    assert.equal(pool.read('d', 4090, 23).toString(), 'across a block boundary');
    assert.ok(pool.read('d', 0, 4090).equals(Buffer.alloc(4090)));
  });

  it('refuses I/O outside the container with OUT_OF_RANGE and bad names with INVALID_ARGUMENT', () => {
    pool.createContainer({ name: 'd', type: 'vdisk', size: 8192 });
    rejects(() => pool.read('d', 8000, 193), 'OUT_OF_RANGE');
    rejects(() => pool.write('d', 8192, Buffer.from('x')), 'OUT_OF_RANGE');
    rejects(() => pool.read('d', -1, 1), 'INVALID_ARGUMENT');
    rejects(() => pool.createContainer({ name: '../etc', type: 'vdisk' }), 'INVALID_ARGUMENT');
    rejects(() => pool.createContainer({ name: 'd', type: 'vdisk' }), 'ALREADY_EXISTS');
    rejects(() => pool.read('nope', 0, 1), 'NOT_FOUND');
  });

  it('grows a file when written past its end; a vdisk does not grow', () => {
    pool.createContainer({ name: 'f', type: 'file', file: { mode: 0o600 } });
    pool.write('f', 0, Buffer.from('displayName = "x"\n'));
    assert.equal(pool.describe('f').size, 18);
    assert.equal(pool.describe('f').file?.mode, 0o600);
  });

  it('frees trimmed blocks and shrinks only when asked', () => {
    pool.createContainer({ name: 'd', type: 'vdisk', size: 16 * 4096 });
    pool.write('d', 0, Buffer.alloc(16 * 4096, 1));
    const used = pool.info().usedBlocks;
    pool.trim('d', 0, 8 * 4096);
    pool.reclaim();
    assert.equal(pool.info().usedBlocks, used); // freed only after the commit that freed them
    return pool.flush().then(() => {
      assert.equal(pool.info().usedBlocks, used - 8);
      rejects(() => pool.resize('d', 4096), 'INVALID_ARGUMENT');
      pool.resize('d', 10 * 4096, { shrink: true });
      pool.resize('d', 16 * 4096);
      assert.ok(pool.read('d', 10 * 4096, 6 * 4096).equals(Buffer.alloc(6 * 4096)));
    });
  });

  it('keeps VM members with roles, snapshots them together and deletes recursively', async () => {
    pool.createContainer({ name: 'vm', type: 'vm' });
    pool.createContainer({ name: 'vm-config', type: 'file' });
    pool.createContainer({ name: 'vm-disk0', type: 'vdisk', size: 8192 });
    pool.addMember('vm', 'config', 'vm-config');
    pool.addMember('vm', 'disk0', 'vm-disk0');
    assert.deepEqual(pool.describe('vm').members, { config: 'vm-config', disk0: 'vm-disk0' });
    const snap = pool.snapshot('vm', 'nightly');
    assert.deepEqual(Object.keys(snap.members).sort(), ['config', 'disk0']);
    assert.equal(pool.listSnapshots('vm-disk0')[0]!.vmSnapshot, snap.id);
    rejects(() => pool.deleteSnapshot('vm-disk0@nightly'), 'INVALID_ARGUMENT');
    rejects(() => pool.deleteContainer('vm'), 'HAS_DEPENDENTS');
    pool.deleteContainer('vm', { recursive: true });
    assert.deepEqual(pool.listContainers(), []);
    assert.deepEqual(pool.listSnapshots(), []);
    pool.reclaim();
    assert.equal(pool.info().usedBlocks, 0);
    assert.equal((await pool.fsck()).ok, true);
  });
});

describe('snapshots, sync, clone, revert, flatten', () => {
  let pool: Pool;
  beforeEach(() => {
    pool = Pool.create(tempDir(), { blockSize: 4096, capacityBytes: 1 << 26 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('sync gives the target the snapshot data, keeps its name/uuid/labels, and writes land in its new table', () => {
    pool.createContainer({ name: 'prod', type: 'vdisk', size: 8192, labels: { env: 'prod' } });
    pool.write('prod', 0, Buffer.from('production data'));
    pool.snapshot('prod', 'nightly');
    const staging = pool.createContainer({
      name: 'staging',
      type: 'vdisk',
      size: 4096,
      labels: { env: 'staging' },
    });
    pool.write('staging', 0, Buffer.from('old staging'));
    const result = pool.sync('staging', 'prod@nightly');
    const after = pool.describe('staging');
    assert.equal(after.uuid, staging.uuid);
    assert.deepEqual(after.labels, { env: 'staging' });
    assert.equal(after.size, 8192, 'the target takes the snapshot size');
    assert.deepEqual(after.parentSnapshot, { id: result.source.id, name: 'nightly', container: 'prod' });
    assert.equal(pool.read('staging', 0, 15).toString(), 'production data');
    pool.write('staging', 0, Buffer.from('STAGING'));
    assert.equal(pool.read('prod', 0, 15).toString(), 'production data');
    assert.equal(pool.readSnapshot('prod@nightly', 0, 15).toString(), 'production data');
    // The safety snapshot undoes the sync.
    assert.equal(result.safetySnapshot?.name, 'safety-g1');
    pool.revert('staging', 'safety-g1');
    assert.equal(pool.read('staging', 0, 11).toString(), 'old staging');
  });

  it('refuses a sync across types (TYPE_MISMATCH)', () => {
    pool.createContainer({ name: 'f', type: 'file' });
    pool.snapshot('f', 's');
    pool.createContainer({ name: 'd', type: 'vdisk', size: 4096 });
    rejects(() => pool.sync('d', 'f@s'), 'TYPE_MISMATCH');
  });

  it('syncs a VM member by member, by role, and a subset when asked', () => {
    for (const vm of ['prod', 'staging']) {
      pool.createContainer({ name: vm, type: 'vm' });
      pool.createContainer({ name: `${vm}-config`, type: 'file' });
      pool.createContainer({ name: `${vm}-disk0`, type: 'vdisk', size: 4096 });
      pool.createContainer({ name: `${vm}-disk1`, type: 'vdisk', size: 4096 });
      pool.addMember(vm, 'config', `${vm}-config`);
      pool.addMember(vm, 'disk0', `${vm}-disk0`);
      pool.addMember(vm, 'disk1', `${vm}-disk1`);
      for (const role of ['config', 'disk0', 'disk1'])
        pool.write(`${vm}-${role}`, 0, Buffer.from(`${vm}:${role}`));
    }
    pool.snapshot('prod', 'nightly');
    const result = pool.sync('staging', 'prod@nightly', { members: ['disk0'] });
    assert.deepEqual(result.members, [
      { role: 'disk0', container: 'staging-disk0', source: 'prod-disk0@nightly' },
    ]);
    assert.equal(pool.read('staging-disk0', 0, 10).toString(), 'prod:disk0');
    assert.equal(pool.read('staging-disk1', 0, 13).toString(), 'staging:disk1');
    pool.sync('staging', 'prod@nightly', { safetySnapshot: false });
    assert.equal(pool.read('staging-config', 0, 11).toString(), 'prod:config');
    assert.equal(pool.describe('staging').parentSnapshot?.name, 'nightly');
  });

  it('clone and revert are O(1) and independent of the source afterwards', () => {
    pool.createContainer({ name: 'golden', type: 'vdisk', size: 1 << 20 });
    pool.write('golden', 0, Buffer.alloc(1 << 20, 9));
    pool.snapshot('golden', 'v1');
    const before = pool.info().usedBlocks;
    pool.clone('golden@v1', 'dev1');
    assert.equal(pool.info().usedBlocks, before, 'a clone copies no data');
    pool.write('dev1', 0, Buffer.from('mine'));
    assert.equal(pool.read('golden', 0, 4)[0], 9);
    pool.write('golden', 0, Buffer.from('changed'));
    pool.revert('golden', 'v1');
    assert.equal(pool.read('golden', 0, 1)[0], 9);
  });

  it('flatten copies what the chain provides so deleting the snapshot frees nothing it needs', async () => {
    pool.createContainer({ name: 'a', type: 'vdisk', size: 64 * 4096 });
    pool.write('a', 0, Buffer.alloc(64 * 4096, 3));
    pool.snapshot('a', 's');
    pool.clone('a@s', 'b');
    const progress: number[] = [];
    await pool.flatten('b', { onProgress: (done) => progress.push(done) });
    assert.equal(pool.lineage('b').length, 1);
    assert.equal(progress.at(-1), 64);
    pool.deleteContainer('a', { recursive: true });
    pool.reclaim();
    assert.ok(pool.read('b', 0, 64 * 4096).equals(Buffer.alloc(64 * 4096, 3)));
    assert.equal((await pool.fsck()).ok, true);
  });

  it('hides a deleted snapshot others depend on and frees it with its last dependent', async () => {
    pool.createContainer({ name: 'a', type: 'vdisk', size: 8 * 4096 });
    pool.write('a', 0, Buffer.alloc(8 * 4096, 1));
    pool.snapshot('a', 's');
    pool.clone('a@s', 'b');
    pool.deleteSnapshot('a@s');
    assert.deepEqual(pool.listSnapshots('a'), []);
    assert.equal(pool.listSnapshots('a', { includeHidden: true })[0]?.hidden, true);
    assert.equal(pool.read('b', 0, 1)[0], 1);
    pool.snapshot('a', 's'); // the name is free again
    const hidden = () =>
      pool.listSnapshots(undefined, { includeHidden: true }).filter((s) => s.hidden).length;
    pool.deleteContainer('b');
    assert.equal(hidden(), 1, "a's own chain still reads through the hidden snapshot");
    pool.deleteContainer('a', { recursive: true });
    pool.reclaim();
    assert.equal(hidden(), 0);
    assert.equal(pool.info().usedBlocks, 0);
    assert.equal((await pool.fsck()).ok, true);
  });

  it('reports usage: logical, mapped, exclusive and shared bytes', () => {
    pool.createContainer({ name: 'a', type: 'vdisk', size: 16 * 4096 });
    pool.write('a', 0, Buffer.alloc(8 * 4096, 1));
    pool.snapshot('a', 's');
    pool.clone('a@s', 'b');
    pool.write('b', 0, Buffer.alloc(2 * 4096, 2));
    const usage = pool.usage('b');
    assert.deepEqual(usage, {
      container: 'b',
      logicalBytes: 16 * 4096,
      mappedBytes: 8 * 4096,
      exclusiveBytes: 2 * 4096,
      sharedBytes: 6 * 4096,
    });
  });

  it('a sync writes the same number of metadata entries for a 1 GiB and a 1 TiB disk, with or without a safety snapshot', () => {
    for (const safetySnapshot of [false, true]) {
      const entries: number[] = [];
      for (const [i, size] of [2 ** 30, 2 ** 40].entries()) {
        const [src, dst] = [`src${i}-${safetySnapshot}`, `dst${i}-${safetySnapshot}`];
        pool.createContainer({ name: src, type: 'vdisk', size });
        pool.createContainer({ name: dst, type: 'vdisk', size });
        // Many mapped blocks, spread over the whole disk, in both source and target.
        for (let k = 0; k < 2000; k++) {
          const offset = Math.floor((k / 2000) * (size / 4096)) * 4096;
          pool.write(src, offset, Buffer.alloc(4096, 1));
          pool.write(dst, offset, Buffer.alloc(4096, 2));
        }
        pool.snapshot(src, 's');
        entries.push(pool.sync(dst, `${src}@s`, { safetySnapshot }).metadataEntries);
      }
      assert.equal(entries[0], entries[1], `safetySnapshot: ${safetySnapshot}`);
      assert.ok(entries[0]! < 20, `a sync writes a handful of entries, not one per block (${entries[0]})`);
    }
  });

  it('rolls back a failed sync completely when the device fails mid-way', async () => {
    pool.createContainer({ name: 'a', type: 'vdisk', size: 8192 });
    pool.write('a', 0, Buffer.from('source'));
    pool.snapshot('a', 's');
    pool.createContainer({ name: 'b', type: 'vdisk', size: 8192 });
    pool.write('b', 0, Buffer.from('target'));
    await pool.flush();
    const hooks = {
      capture: () => null,
      restore: (ctx: { members: Array<{ view: { write(o: number, d: Buffer): void } }> }) => {
        ctx.members[0]!.view.write(0, Buffer.from('identity'));
        return null;
      },
    };
    pool.device.setFaultInjector((op) => {
      if (op === 'write') throw Object.assign(new Error('injected'), { code: 'EIO' });
    });
    rejects(() => pool.sync('b', 'a@s', { hooks }), 'IO_ERROR');
    pool.device.setFaultInjector(null);
    assert.equal(pool.read('b', 0, 6).toString(), 'target');
    assert.equal(pool.describe('b').generation, 0);
    assert.deepEqual(pool.listSnapshots('b'), []);
    assert.equal((await pool.fsck()).ok, true);
  });
});

describe('allocation map', () => {
  after(cleanupTempDirs);

  it('reports data, explicit zeros and holes through the chain, even on a sparse 1 TiB disk', async () => {
    const pool = Pool.create(tempDir(), { blockSize: 65536 });
    try {
      pool.createContainer({ name: 'big', type: 'vdisk', size: 2 ** 40 });
      pool.write('big', 2 ** 39, Buffer.alloc(65536 * 2, 1));
      pool.snapshot('big', 's');
      pool.writeZeroes('big', 2 ** 39, 65536);
      pool.write('big', 0, Buffer.alloc(100, 2));
      assert.deepEqual(pool.allocation('big', 0, 2 ** 40), [
        { offset: 0, length: 65536, state: 'data' },
        { offset: 65536, length: 2 ** 39 - 65536, state: 'hole' },
        { offset: 2 ** 39, length: 65536, state: 'zero' },
        { offset: 2 ** 39 + 65536, length: 65536, state: 'data' },
        { offset: 2 ** 39 + 2 * 65536, length: 2 ** 39 - 2 * 65536, state: 'hole' },
      ]);
      assert.deepEqual(pool.snapshotAllocation('big@s', 2 ** 39 - 4096, 8192), [
        { offset: 2 ** 39 - 4096, length: 4096, state: 'hole' },
        { offset: 2 ** 39, length: 4096, state: 'data' },
      ]);
    } finally {
      await pool.close();
    }
  });
});

describe('idempotency records', () => {
  after(cleanupTempDirs);

  it('store a mutation with its result, are found until they expire, and are pruned at open', async () => {
    const dir = tempDir();
    const pool = Pool.create(dir, { blockSize: 4096 });
    const idempotency = { key: 'k1', fingerprint: 'f', expiresAt: Date.now() + 60_000 };
    const created = pool.createContainer({ name: 'a', type: 'vdisk', size: 4096 }, { idempotency });
    assert.deepEqual(pool.idempotent('k1')?.result, JSON.parse(JSON.stringify(created)));
    pool.createContainer(
      { name: 'b', type: 'vdisk' },
      { idempotency: { key: 'old', fingerprint: 'f', expiresAt: Date.now() + 50 } },
    );
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(pool.idempotent('old'), undefined, 'expired');
    // A failed mutation stores nothing under its key.
    rejects(
      () =>
        pool.createContainer({ name: 'a', type: 'vdisk' }, { idempotency: { ...idempotency, key: 'k2' } }),
      'ALREADY_EXISTS',
    );
    assert.equal(pool.idempotent('k2'), undefined);
    await pool.close();
    const again = Pool.open(dir);
    assert.ok(again.idempotent('k1'));
    assert.equal(again.pruneIdempotency(), 0, 'the expired record was already pruned at open');
    await again.close();
  });
});
