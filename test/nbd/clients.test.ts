/**
 * Real NBD clients from Debian (qemu-utils, libnbd-bin) against the engine's
 * vdisks and snapshots. The server runs in this process, so clients run async.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { parseMap, patternBytes, run, runOk, type ServedPool, servePool } from './helpers/served-pool';

const MiB = 1024 * 1024;
const STATE_TYPE = { data: 0, zero: 2, hole: 3 } as const;

/** Engine allocation in the shape nbdinfo --map prints (neighbours with equal type merged). */
function engineMap(extents: Array<{ offset: number; length: number; state: 'data' | 'zero' | 'hole' }>) {
  const out: Array<{ offset: number; length: number; type: number }> = [];
  for (const e of extents) {
    const type = STATE_TYPE[e.state];
    const last = out[out.length - 1];
    if (last && last.type === type) last.length += e.length;
    else out.push({ offset: e.offset, length: e.length, type });
  }
  return out;
}

/** A local raw image: data at some places, holes elsewhere. */
function sparseImage(file: string, size: number): Buffer {
  const content = Buffer.alloc(size);
  patternBytes(3 * MiB, 11).copy(content, 1 * MiB);
  patternBytes(512 * 1024 + 123, 12).copy(content, 9 * MiB + 777);
  content.fill(0x42, size - 64 * 1024);
  fs.writeFileSync(file, Buffer.alloc(0));
  fs.truncateSync(file, size);
  const fd = fs.openSync(file, 'r+');
  for (const [start, end] of [
    [1 * MiB, 4 * MiB],
    [9 * MiB, 10 * MiB],
    [size - 64 * 1024, size],
  ] as const) {
    fs.writeSync(fd, content, start, end - start, start);
  }
  fs.closeSync(fd);
  return content;
}

describe('nbd: real clients against engine exports', function () {
  this.timeout(120_000);
  let s: ServedPool;
  let work: string;

  before(async () => {
    s = await servePool();
    work = tempDir('snapsync-nbd-files-');
  });
  after(async () => {
    await s.close();
    cleanupTempDirs();
  });
  afterEach(() => assert.deepEqual(s.errors, [], 'server reported unexpected errors'));

  it('qemu-img info sees a raw disk of the vdisk size', async () => {
    s.pool.createContainer({ name: 'info', type: 'vdisk', size: 32 * MiB });
    const out = JSON.parse(await runOk('qemu-img', ['info', '--output=json', '-f', 'raw', s.url('info')]));
    assert.equal(out['virtual-size'], 32 * MiB);
    assert.equal(out.format, 'raw');
  });

  it('qemu-io writes, reads and verifies patterns (aligned and unaligned)', async () => {
    s.pool.createContainer({ name: 'io', type: 'vdisk', size: 16 * MiB });
    const out = await runOk('qemu-io', [
      '-f',
      'raw',
      '-c',
      'write -P 0xab 0 1M',
      '-c',
      'read -P 0xab 0 1M',
      '-c',
      'write -P 0x5a 4097 5000',
      '-c',
      'read -P 0x5a 4097 5000',
      '-c',
      'read -P 0xab 0 4097',
      '-c',
      'read -P 0x00 2M 1M',
      '-c',
      'write -z 512K 64K',
      '-c',
      'read -P 0 512K 64K',
      '-c',
      'flush',
      s.url('io'),
    ]);
    assert.doesNotMatch(out, /Pattern verification failed|error/i);
    const data = s.pool.read('io', 0, 1 * MiB);
    assert.equal(data[0], 0xab);
    assert.equal(data[4097], 0x5a);
    assert.equal(data[4097 + 4999], 0x5a);
    assert.equal(data[4097 + 5000], 0xab);
    assert.ok(data.subarray(512 * 1024, 576 * 1024).every((b) => b === 0));
    // A pattern mismatch is reported by the client, so verification really runs.
    const bad = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0xcd 0 4k', s.url('io')]);
    assert.match(bad.stdout + bad.stderr, /Pattern verification failed/);
  });

  it('qemu-img convert in and out, and compare, match the engine byte for byte', async () => {
    const size = 24 * MiB;
    const local = path.join(work, 'in.img');
    const content = sparseImage(local, size);
    s.pool.createContainer({ name: 'conv', type: 'vdisk', size });
    s.pool.write('conv', 5 * MiB, Buffer.alloc(MiB, 0x77)); // stale data convert must zero
    await runOk('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', local, s.url('conv')]);
    assert.ok(s.pool.read('conv', 0, size).equals(content), 'engine content equals the source image');
    await runOk('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', local, s.url('conv')]);

    const out = path.join(work, 'out.img');
    await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', s.url('conv'), out]);
    assert.ok(fs.readFileSync(out).equals(content), 'converted out equals the source image');
    // Holes came out as holes: the output file is sparse.
    assert.ok(fs.statSync(out).blocks * 512 < size / 2);

    s.pool.write('conv', 9 * MiB + 1000, Buffer.from([0xee]));
    const diff = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', local, s.url('conv')]);
    assert.equal(diff.code, 1);
    assert.match(diff.stdout, /Content mismatch at offset 9437696!/);
  });

  it('nbdinfo --map equals the engine allocation, for a vdisk and a snapshot', async () => {
    const bs = s.pool.blockSize;
    s.pool.createContainer({ name: 'map', type: 'vdisk', size: 64 * MiB });
    s.pool.write('map', 0, patternBytes(4 * bs, 3));
    s.pool.write('map', 20 * MiB, patternBytes(3 * MiB, 4));
    s.pool.snapshot('map', 'base');
    s.pool.writeZeroes('map', 20 * MiB + bs, 2 * bs); // explicit zeros over snapshot data
    s.pool.write('map', 40 * MiB + 100, Buffer.alloc(10, 1));
    for (const [name, allocation] of [
      ['map', s.pool.allocation('map', 0, 64 * MiB)],
      ['map@base', s.pool.snapshotAllocation('map@base', 0, 64 * MiB)],
    ] as const) {
      const map = parseMap(await runOk('nbdinfo', ['--map', s.url(name)]));
      assert.deepEqual(map, engineMap(allocation), `map of ${name}`);
    }
    assert.ok(engineMap(s.pool.allocation('map', 0, 64 * MiB)).some((e) => e.type === STATE_TYPE.zero));
  });

  it('nbdcopy copies into a vdisk and back out', async () => {
    const size = 16 * MiB;
    const local = path.join(work, 'copy-in.img');
    const content = sparseImage(local, size);
    s.pool.createContainer({ name: 'copy', type: 'vdisk', size });
    await runOk('nbdcopy', [local, s.url('copy')]);
    assert.ok(s.pool.read('copy', 0, size).equals(content));
    const out = path.join(work, 'copy-out.img');
    fs.writeFileSync(out, Buffer.alloc(0));
    fs.truncateSync(out, size);
    await runOk('nbdcopy', [s.url('copy'), out]);
    assert.ok(fs.readFileSync(out).equals(content));
    // Snapshot exports allow several connections (multi-conn): nbdcopy uses them.
    s.pool.snapshot('copy', 'frozen');
    const out2 = path.join(work, 'copy-snap.img');
    fs.writeFileSync(out2, Buffer.alloc(0));
    fs.truncateSync(out2, size);
    await runOk('nbdcopy', ['--connections=4', s.url('copy@frozen'), out2]);
    assert.ok(fs.readFileSync(out2).equals(content));
  });

  it('lists vdisks and snapshots; snapshots are read-only', async () => {
    s.pool.createContainer({ name: 'ro', type: 'vdisk', size: 4 * MiB });
    s.pool.write('ro', 0, Buffer.alloc(4096, 9));
    s.pool.snapshot('ro', 'snap');
    const list = await runOk('nbdinfo', ['--list', '--json', s.url('')]);
    const names = (JSON.parse(list).exports as Array<{ 'export-name': string }>).map((e) => e['export-name']);
    assert.ok(names.includes('ro') && names.includes('ro@snap'), names.join(','));
    const info = JSON.parse(await runOk('nbdinfo', ['--json', s.url('ro@snap')]));
    assert.equal(info.exports[0].is_read_only, true);
    const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4k', s.url('ro@snap')]);
    assert.notEqual(w.code, 0);
    await runOk('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 9 0 4k', s.url('ro@snap')]);
  });
});
