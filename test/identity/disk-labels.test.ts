/**
 * vdisk identity on real disk labels made by sgdisk and sfdisk, with ext4
 * inside: after a sync the target reads the source's disk except its own
 * GUID / signature, sgdisk and e2fsck find nothing wrong, and only the
 * blocks holding identity were written.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { crc32, createIdentityHooks, guidFromString, type IdentityReport } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { differences, exportImage, gptDiskWithExt4, importImage, run } from './helpers';

const MiB = 1024 * 1024;

describe('identity: disk labels', function () {
  this.timeout(120_000);
  let dir: string;
  let pool: Pool;
  beforeEach(() => {
    dir = tempDir('snapsync-identity-');
    pool = Pool.create(path.join(dir, 'pool'), { blockSize: 65536 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it('GPT + ext4: the target keeps its disk GUID, both headers verify, ext4 is clean, nothing else differs', () => {
    const source = gptDiskWithExt4(path.join(dir, 'src.img'), 64, 'prod');
    const target = gptDiskWithExt4(path.join(dir, 'dst.img'), 32, 'staging');
    assert.notEqual(source.diskGuid, target.diskGuid);
    importImage(pool, 'prod-disk', path.join(dir, 'src.img'));
    importImage(pool, 'staging-disk', path.join(dir, 'dst.img'));
    pool.snapshot('prod-disk', 'nightly');
    const result = pool.sync('staging-disk', 'prod-disk@nightly', { hooks: createIdentityHooks('default') });
    const report = result.identity as IdentityReport;
    assert.deepEqual(
      report.fields.find((f) => f.path === 'gpt.diskGuid'),
      { path: 'gpt.diskGuid', value: target.diskGuid, status: 'restored', sourceValue: source.diskGuid },
    );
    assert.equal(
      report.fields.find((f) => f.path === 'mbr.signature')?.status,
      'unchanged',
      'both protective MBRs have signature 0',
    );
    assert.equal(
      report.fields.find((f) => f.path === 'gpt.partition1.uniqueGuid'),
      undefined,
      'partition GUIDs are opt-in',
    );
    assert.deepEqual(report.warnings, []);
    assert.equal(
      report.blocksWritten,
      2,
      'the block of the primary header and the block of the backup header',
    );

    const out = exportImage(pool, 'staging-disk', path.join(dir, 'out.img'));
    const src = fs.readFileSync(path.join(dir, 'src.img'));
    assert.match(run('sgdisk', ['-v', path.join(dir, 'out.img')]), /No problems found/);
    assert.match(
      run('sgdisk', ['-p', path.join(dir, 'out.img')]),
      new RegExp(`Disk identifier \\(GUID\\): ${target.diskGuid}`),
    );
    const backup = src.length - 512;
    assert.deepEqual(
      differences(src, out).filter(([a]) => a < 1024 || a >= backup).length,
      differences(src, out).length,
    );
    for (const [start, end] of differences(src, out)) {
      const inHeader = (base: number) =>
        (start >= base + 16 && end <= base + 20) || (start >= base + 56 && end <= base + 72);
      assert.ok(
        inHeader(512) || inHeader(backup),
        `bytes ${start}-${end} differ outside the GUID and CRC fields`,
      );
    }
    fs.writeFileSync(path.join(dir, 'part.img'), out.subarray(2048 * 512, out.length - 33 * 512));
    run('e2fsck', ['-fn', path.join(dir, 'part.img')]);
  });

  it('GPT partition unique GUIDs only when asked by name or glob', () => {
    const source = gptDiskWithExt4(path.join(dir, 'src.img'), 16, 'a');
    const target = gptDiskWithExt4(path.join(dir, 'dst.img'), 16, 'b');
    importImage(pool, 'a', path.join(dir, 'src.img'));
    importImage(pool, 'b', path.join(dir, 'dst.img'));
    pool.snapshot('a', 's');
    const report = pool.sync('b', 'a@s', { hooks: createIdentityHooks(['gpt.*']) })
      .identity as IdentityReport;
    assert.equal(report.fields.find((f) => f.path === 'gpt.partition1.uniqueGuid')?.value, target.partGuid);
    exportImage(pool, 'b', path.join(dir, 'out.img'));
    assert.match(run('sgdisk', ['-v', path.join(dir, 'out.img')]), /No problems found/);
    assert.match(
      run('sgdisk', ['-i', '1', path.join(dir, 'out.img')]),
      new RegExp(`Partition unique GUID: ${target.partGuid}`),
    );
    assert.notEqual(source.partGuid, target.partGuid);
  });

  it('MBR (sfdisk): the target keeps its disk signature', () => {
    for (const [name, id] of [
      ['mbr-src', '0x1a2b3c4d'],
      ['mbr-dst', '0xdeadbeef'],
    ]) {
      const file = path.join(dir, `${name}.img`);
      fs.writeFileSync(file, Buffer.alloc(0));
      fs.truncateSync(file, 8 * MiB);
      run('sfdisk', ['-q', file], `label: dos\nlabel-id: ${id}\n,,83\n`);
      importImage(pool, name!, file);
    }
    pool.snapshot('mbr-src', 's');
    const report = pool.sync('mbr-dst', 'mbr-src@s', { hooks: createIdentityHooks() })
      .identity as IdentityReport;
    assert.deepEqual(
      report.fields.find((f) => f.path === 'mbr.signature'),
      {
        path: 'mbr.signature',
        value: 'deadbeef',
        status: 'restored',
        sourceValue: '1a2b3c4d',
      },
    );
    exportImage(pool, 'mbr-dst', path.join(dir, 'out.img'));
    assert.match(run('sfdisk', ['-d', path.join(dir, 'out.img')]), /label-id: 0xdeadbeef/);
    assert.equal(report.blocksWritten, 1);
  });

  it('4096-byte logical sectors (a GPT built by hand: sgdisk cannot make one on a plain file)', () => {
    const build = (guid: string) => {
      const sector = 4096;
      const lbas = 256;
      const disk = Buffer.alloc(sector * lbas);
      disk[510] = 0x55;
      disk[511] = 0xaa;
      const entries = Buffer.alloc(128 * 128);
      guidFromString('0FC63DAF-8483-4772-8E79-3D69D8477DE4').copy(entries, 0);
      guidFromString('11111111-2222-3333-4444-555555555555').copy(entries, 16);
      entries.writeBigUInt64LE(6n, 32);
      entries.writeBigUInt64LE(BigInt(lbas - 6), 40);
      const header = (lba: number, alternate: number, entriesLba: number) => {
        const h = Buffer.alloc(92);
        h.write('EFI PART', 0, 'ascii');
        h.writeUInt32LE(0x00010000, 8);
        h.writeUInt32LE(92, 12);
        h.writeBigUInt64LE(BigInt(lba), 24);
        h.writeBigUInt64LE(BigInt(alternate), 32);
        h.writeBigUInt64LE(6n, 40);
        h.writeBigUInt64LE(BigInt(lbas - 6), 48);
        guidFromString(guid).copy(h, 56);
        h.writeBigUInt64LE(BigInt(entriesLba), 72);
        h.writeUInt32LE(128, 80);
        h.writeUInt32LE(128, 84);
        h.writeUInt32LE(crc32(entries), 88);
        h.writeUInt32LE(crc32(h), 16);
        return h;
      };
      header(1, lbas - 1, 2).copy(disk, sector);
      entries.copy(disk, 2 * sector);
      entries.copy(disk, (lbas - 5) * sector);
      header(lbas - 1, 1, lbas - 5).copy(disk, (lbas - 1) * sector);
      return disk;
    };
    const src = build('AAAAAAAA-0000-4000-8000-000000000001');
    const dst = build('BBBBBBBB-0000-4000-8000-000000000002');
    for (const [name, disk] of [
      ['4k-src', src],
      ['4k-dst', dst],
    ] as const) {
      pool.createContainer({ name, type: 'vdisk', size: disk.length });
      pool.write(name, 0, disk);
    }
    pool.snapshot('4k-src', 's');
    const report = pool.sync('4k-dst', '4k-src@s', { hooks: createIdentityHooks() })
      .identity as IdentityReport;
    assert.equal(report.fields.find((f) => f.path === 'gpt.diskGuid')?.status, 'restored');
    const out = pool.read('4k-dst', 0, dst.length);
    for (const offset of [4096, dst.length - 4096]) {
      const h = Buffer.from(out.subarray(offset, offset + 92));
      assert.equal(
        h.subarray(56, 72).toString('hex'),
        guidFromString('BBBBBBBB-0000-4000-8000-000000000002').toString('hex'),
      );
      const crc = h.readUInt32LE(16);
      h.writeUInt32LE(0, 16);
      assert.equal(crc32(h), crc, `header at ${offset} has a valid CRC`);
    }
    for (const [start, end] of differences(src, out)) {
      const inHeader = (base: number) =>
        (start >= base + 16 && end <= base + 20) || (start >= base + 56 && end <= base + 72);
      assert.ok(
        inHeader(4096) || inHeader(dst.length - 4096),
        `bytes ${start}-${end} differ outside the GUID and CRC fields`,
      );
    }
  });

  it('a corrupt label is never written: the sync carries a warning instead', () => {
    gptDiskWithExt4(path.join(dir, 'src.img'), 16, 'ok');
    gptDiskWithExt4(path.join(dir, 'dst.img'), 16, 'dst');
    importImage(pool, 'good', path.join(dir, 'src.img'));
    importImage(pool, 'broken', path.join(dir, 'dst.img'));
    pool.write('broken', 512 + 20, Buffer.from('garbage!')); // primary header no longer matches its CRC
    pool.snapshot('good', 's');
    const report = pool.sync('broken', 'good@s', { hooks: createIdentityHooks() }).identity as IdentityReport;
    assert.equal(report.warnings[0]?.code, 'IDENTITY_UNPARSABLE');
    assert.equal(report.warnings[0]?.path, 'gpt.diskGuid');
    assert.ok(
      pool.read('broken', 0, 2 * MiB).equals(pool.readSnapshot('good@s', 0, 2 * MiB)),
      'the source disk, untouched',
    );
  });
});
