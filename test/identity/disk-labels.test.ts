/**
 * vdisk identity on real disk labels: images made by sgdisk, fdisk and sfdisk
 * with a real ext4 filesystem inside, imported into vdisks of a real pool,
 * the target synced to the source's snapshot, read back out to a file, and
 * checked with the same tools. The expected image is made by the tools too:
 * a copy of the source with the target's GUID set by sgdisk (fdisk, sfdisk).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { blocksInNewTables, exportImage, importImage } from './helpers/pool';
import {
  differences,
  e2fsckPartition,
  fdisk4k,
  gpt4k,
  gpt512,
  MiB,
  mbr,
  outside,
  run,
} from './helpers/tools';

const PROD_DISK = '5E1C0A11-7B2D-4C3E-9F40-A1B2C3D4E5F6';
const PROD_PART = '0D15EA5E-1234-4ABC-8DEF-00112233AA01';
const STG_DISK = '57A61A6E-0000-4111-8222-333344445555';
const STG_PART = '57A61A6E-9999-4888-8777-666655554444';

const field = (report: IdentityReport, p: string) => report.fields.find((f) => f.path === p);

/** The bytes a GPT disk-GUID change may touch: HeaderCRC32 and DiskGUID of both headers (and the array CRCs and partition GUIDs). */
function gptIdentityBytes(image: Buffer, sector: number, partitions: boolean): Array<[number, number]> {
  const primary = sector;
  const backup = Number(image.readBigUInt64LE(primary + 32)) * sector;
  const ranges: Array<[number, number]> = [];
  for (const h of [primary, backup]) {
    ranges.push([h + 16, h + 20], [h + 56, h + 72]);
    if (partitions) {
      const entries = Number(image.readBigUInt64LE(h + 72)) * sector;
      ranges.push([h + 88, h + 92], [entries + 16, entries + 32]);
    }
  }
  return ranges;
}

describe('identity: disk labels on real images', function () {
  this.timeout(120_000);
  let dir: string;
  let pool: Pool;
  beforeEach(() => {
    dir = tempDir('snapsync-identity-');
    pool = Pool.create(path.join(dir, 'pool'), { blockSize: 65536 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  const file = (name: string) => path.join(dir, name);
  const sync = (target: string, source: string, preserve?: Parameters<typeof createIdentityHooks>[0]) => {
    pool.snapshot(source, 'nightly');
    return pool.sync(target, `${source}@nightly`, { hooks: createIdentityHooks(preserve) });
  };

  it('GPT (512-byte sectors) + ext4: the target keeps its disk GUID; sgdisk, sfdisk and e2fsck are content', () => {
    const src = gpt512(file('prod.img'), 64, PROD_DISK, PROD_PART, 'prod');
    gpt512(file('stg.img'), 40, STG_DISK, STG_PART, 'staging');
    importImage(pool, 'prod-disk', src.file);
    importImage(pool, 'stg-disk', file('stg.img'));
    const staging = pool.describe('stg-disk');

    const result = sync('stg-disk', 'prod-disk');
    const report = result.identity as IdentityReport;
    assert.deepEqual(report.warnings, []);
    assert.deepEqual(report.fields.slice(0, 2), [
      { path: 'name', value: 'stg-disk', status: 'unchanged' },
      { path: 'uuid', value: staging.uuid, status: 'unchanged' },
    ]);
    assert.deepEqual(field(report, 'gpt.diskGuid'), {
      path: 'gpt.diskGuid',
      value: STG_DISK,
      status: 'restored',
      sourceValue: PROD_DISK,
    });
    assert.equal(field(report, 'mbr.signature'), undefined, 'the MBR signature is opt-in');
    assert.equal(field(report, 'gpt.partition1.uniqueGuid'), undefined, 'partition GUIDs are opt-in');
    assert.equal(report.blocksWritten, 2, "the primary header's block and the backup header's block");
    assert.equal(result.target.size, 64 * MiB, "the target now has the source's size");

    const out = exportImage(pool, 'stg-disk', file('out.img'));
    assert.match(run('sgdisk', ['-v', file('out.img')]).stdout, /No problems found/);
    assert.match(run('sfdisk', ['-V', file('out.img')]).stdout, /No errors detected/);
    assert.match(
      run('sgdisk', ['-p', file('out.img')]).stdout,
      new RegExp(`Disk identifier \\(GUID\\): ${STG_DISK}`),
    );
    assert.match(
      run('sgdisk', ['-i', '1', file('out.img')]).stdout,
      new RegExp(`Partition unique GUID: ${PROD_PART}`),
    );

    // What sgdisk itself writes when asked to give the source disk the target's GUID: the same bytes.
    fs.copyFileSync(src.file, file('expected.img'));
    run('sgdisk', ['-U', STG_DISK, file('expected.img')]);
    assert.ok(
      out.equals(fs.readFileSync(file('expected.img'))),
      'the target equals the source with sgdisk -U <its GUID>',
    );

    const prod = fs.readFileSync(src.file);
    const diffs = differences(prod, out);
    assert.ok(diffs.length > 0);
    assert.deepEqual(
      outside(diffs, gptIdentityBytes(prod, 512, false)),
      [],
      'no byte outside the GUID and CRC fields differs',
    );
    assert.match(e2fsckPartition(out, src, dir), /clean|files/);
    const hostname = file('p1.img');
    fs.writeFileSync(
      hostname,
      out.subarray(src.partition.offset, src.partition.offset + src.partition.length),
    );
    assert.equal(
      run('debugfs', ['-R', 'cat /etc/hostname', hostname]).stdout,
      'prod\n',
      "the filesystem is production's",
    );
    assert.equal(
      blocksInNewTables(pool, result),
      2,
      "the pool's own count: the two header blocks, nothing else",
    );
  });

  it('GPT partition unique GUIDs are kept only when asked for by name or glob', () => {
    const src = gpt512(file('prod.img'), 32, PROD_DISK, PROD_PART, 'prod');
    gpt512(file('a.img'), 32, STG_DISK, STG_PART, 'a');
    importImage(pool, 'prod-disk', src.file);
    importImage(pool, 'a', file('a.img'));
    importImage(pool, 'b', file('a.img'));
    pool.snapshot('prod-disk', 'nightly');

    const byDefault = pool.sync('a', 'prod-disk@nightly', { hooks: createIdentityHooks('default') })
      .identity as IdentityReport;
    assert.equal(field(byDefault, 'gpt.partition1.uniqueGuid'), undefined);
    exportImage(pool, 'a', file('a-out.img'));
    assert.match(
      run('sgdisk', ['-i', '1', file('a-out.img')]).stdout,
      new RegExp(`Partition unique GUID: ${PROD_PART}`),
    );

    const askedResult = pool.sync('b', 'prod-disk@nightly', { hooks: createIdentityHooks(['gpt.*']) });
    const asked = askedResult.identity as IdentityReport;
    assert.deepEqual(field(asked, 'gpt.partition1.uniqueGuid'), {
      path: 'gpt.partition1.uniqueGuid',
      value: STG_PART,
      status: 'restored',
      sourceValue: PROD_PART,
    });
    assert.equal(
      asked.blocksWritten,
      2,
      'primary header + entries share a block, backup entries + header another',
    );
    const out = exportImage(pool, 'b', file('b-out.img'));
    assert.match(run('sgdisk', ['-v', file('b-out.img')]).stdout, /No problems found/);
    assert.match(
      run('sgdisk', ['-i', '1', file('b-out.img')]).stdout,
      new RegExp(`Partition unique GUID: ${STG_PART}`),
    );
    fs.copyFileSync(src.file, file('expected.img'));
    run('sgdisk', ['-U', STG_DISK, '-u', `1:${STG_PART}`, file('expected.img')]);
    assert.ok(
      out.equals(fs.readFileSync(file('expected.img'))),
      'the same bytes as sgdisk -U -u on the source',
    );
    assert.deepEqual(
      outside(differences(fs.readFileSync(src.file), out), gptIdentityBytes(out, 512, true)),
      [],
    );
    e2fsckPartition(out, src, dir);
    assert.equal(blocksInNewTables(pool, askedResult), 2);
  });

  it('GPT with 4096-byte logical sectors (made and checked by fdisk -b 4096) + ext4', () => {
    const src = gpt4k(file('prod4k.img'), 64, PROD_DISK, PROD_PART, 'prod');
    gpt4k(file('stg4k.img'), 48, STG_DISK, STG_PART, 'staging');
    importImage(pool, 'prod-4k', src.file);
    importImage(pool, 'stg-4k', file('stg4k.img'));
    const result = sync('stg-4k', 'prod-4k', ['gpt.diskGuid', 'gpt.partition1.uniqueGuid']);
    const report = result.identity as IdentityReport;
    assert.deepEqual(report.warnings, []);
    assert.equal(field(report, 'gpt.diskGuid')?.status, 'restored');
    assert.equal(field(report, 'gpt.partition1.uniqueGuid')?.value, STG_PART);

    const out = exportImage(pool, 'stg-4k', file('out4k.img'));
    const listed = fdisk4k(file('out4k.img'));
    assert.match(listed.stdout, new RegExp(`Disk identifier: ${STG_DISK}`));
    assert.match(listed.stdout, new RegExp(`out4k.img1\\s+\\d+\\s+\\d+\\s+${STG_PART}`));
    assert.doesNotMatch(listed.stderr, /corrupt|mismatch|invalid/i);
    // fdisk's check can fail: the same image with a broken backup header does.
    const broken = Buffer.from(out);
    broken.write('XX', broken.length - 4096 + 60);
    fs.writeFileSync(file('broken4k.img'), broken);
    assert.match(fdisk4k(file('broken4k.img')).stderr, /backup GPT table is corrupt/);

    fs.copyFileSync(src.file, file('expected4k.img'));
    run('fdisk', ['-b', '4096', file('expected4k.img')], `x\ni\n${STG_DISK}\nu\n${STG_PART}\nr\nw\n`);
    assert.ok(
      out.equals(fs.readFileSync(file('expected4k.img'))),
      'the same bytes as fdisk setting the GUIDs on the source',
    );
    assert.deepEqual(
      outside(differences(fs.readFileSync(src.file), out), gptIdentityBytes(out, 4096, true)),
      [],
    );
    e2fsckPartition(out, src, dir);
    // Primary header and entries at the start, backup entries and header at the end: two 64 KiB blocks.
    assert.equal(report.blocksWritten, 2);
    assert.equal(blocksInNewTables(pool, result), 2);
  });

  it("MBR (sfdisk) + ext4: the disk signature stays the source's by default (PARTUUIDs are made of it)", () => {
    const src = mbr(file('mbr-prod.img'), 16, '1a2b3c4d', 'prod');
    mbr(file('mbr-stg.img'), 16, 'deadbeef', 'staging');
    importImage(pool, 'mbr-prod', src.file);
    importImage(pool, 'mbr-stg', file('mbr-stg.img'));
    const result = sync('mbr-stg', 'mbr-prod');
    const report = result.identity as IdentityReport;
    assert.deepEqual(report.warnings, []);
    assert.equal(field(report, 'mbr.signature'), undefined);
    assert.equal(report.blocksWritten, 0);
    exportImage(pool, 'mbr-stg', file('out.img'));
    assert.match(run('blkid', ['-p', '-o', 'export', file('out.img')]).stdout, /^PTUUID=1a2b3c4d$/m);
  });

  it('MBR (sfdisk) + ext4: the target keeps its disk signature when preserve names it; one block written', () => {
    const src = mbr(file('mbr-prod.img'), 16, '1a2b3c4d', 'prod');
    mbr(file('mbr-stg.img'), 16, 'deadbeef', 'staging');
    importImage(pool, 'mbr-prod', src.file);
    importImage(pool, 'mbr-stg', file('mbr-stg.img'));
    const result = sync('mbr-stg', 'mbr-prod', ['mbr.signature']);
    const report = result.identity as IdentityReport;
    assert.deepEqual(field(report, 'mbr.signature'), {
      path: 'mbr.signature',
      value: 'deadbeef',
      status: 'restored',
      sourceValue: '1a2b3c4d',
    });
    assert.equal(field(report, 'gpt.diskGuid'), undefined);
    assert.equal(report.blocksWritten, 1);
    const out = exportImage(pool, 'mbr-stg', file('out.img'));
    assert.match(run('sfdisk', ['-d', file('out.img')]).stdout, /label-id: 0xdeadbeef/);
    assert.match(run('sfdisk', ['-V', file('out.img')]).stdout, /No errors detected/);
    fs.copyFileSync(src.file, file('expected.img'));
    run('sfdisk', ['--disk-id', file('expected.img'), '0xdeadbeef']);
    assert.ok(
      out.equals(fs.readFileSync(file('expected.img'))),
      'the same bytes as sfdisk --disk-id on the source',
    );
    assert.deepEqual(differences(fs.readFileSync(src.file), out), [[440, 444]]);
    e2fsckPartition(out, src, dir);
    assert.equal(blocksInNewTables(pool, result), 1);
  });

  it("a target label that does not verify is not kept: a warning, and the target reads as the source's", () => {
    gpt512(file('prod.img'), 16, PROD_DISK, PROD_PART, 'prod');
    gpt512(file('stg.img'), 16, STG_DISK, STG_PART, 'staging');
    importImage(pool, 'prod-disk', file('prod.img'));
    importImage(pool, 'stg-disk', file('stg.img'));
    pool.write('stg-disk', 512 + 20, Buffer.from('garbage!')); // the primary header no longer matches its CRC
    const result = sync('stg-disk', 'prod-disk');
    const report = result.identity as IdentityReport;
    assert.deepEqual(
      report.warnings.map((w) => [w.path, w.code]),
      [['gpt.diskGuid', 'IDENTITY_UNPARSABLE']],
    );
    assert.match(report.warnings[0]!.message, /primary GPT header: HeaderCRC32 does not match/);
    assert.equal(report.blocksWritten, 0);
    assert.equal(blocksInNewTables(pool, result), 0);
    const out = exportImage(pool, 'stg-disk', file('out.img'));
    assert.ok(out.equals(fs.readFileSync(file('prod.img'))));
  });

  it("a source label that does not verify is never written into: the target's GUID is reported as not kept", () => {
    const src = gpt512(file('prod.img'), 16, PROD_DISK, PROD_PART, 'prod');
    gpt512(file('stg.img'), 16, STG_DISK, STG_PART, 'staging');
    importImage(pool, 'prod-disk', src.file);
    importImage(pool, 'stg-disk', file('stg.img'));
    pool.write('prod-disk', 16 * MiB - 512 + 60, Buffer.from('XX')); // the backup header's GUID, CRC not updated
    const report = sync('stg-disk', 'prod-disk').identity as IdentityReport;
    const warning = report.warnings.find((w) => w.path === 'gpt.diskGuid');
    assert.equal(warning?.code, 'IDENTITY_UNPARSABLE');
    assert.match(warning!.message, /backup GPT header: HeaderCRC32 does not match/);
    assert.match(warning!.message, new RegExp(STG_DISK));
    assert.equal(field(report, 'gpt.diskGuid'), undefined);
    const out = exportImage(pool, 'stg-disk', file('out.img'));
    assert.deepEqual(differences(pool.readSnapshot('prod-disk@nightly', 0, 16 * MiB), out), []);
  });

  it("a label that disappears is warned about; a disk GUID that appears is made the target's own", () => {
    gpt512(file('labelled.img'), 16, STG_DISK, STG_PART, 'labelled');
    // A disk that is one bare ext4 filesystem: no partition table.
    fs.writeFileSync(file('bare.img'), Buffer.alloc(0));
    fs.truncateSync(file('bare.img'), 16 * MiB);
    run('mkfs.ext4', ['-q', '-F', '-b', '4096', file('bare.img')]);
    importImage(pool, 'labelled', file('labelled.img'));
    importImage(pool, 'bare', file('bare.img'));
    importImage(pool, 'labelled-src', file('labelled.img'));
    importImage(pool, 'bare-tgt', file('bare.img'));

    const lostResult = sync('labelled', 'bare');
    const lost = lostResult.identity as IdentityReport;
    assert.deepEqual(
      lost.warnings.map((w) => [w.path, w.code]),
      [['gpt.diskGuid', 'IDENTITY_FIELD_MISSING']],
    );
    assert.equal(lost.blocksWritten, 0);
    assert.equal(blocksInNewTables(pool, lostResult), 0);
    exportImage(pool, 'labelled', file('lost.img'));
    run('e2fsck', ['-fn', file('lost.img')]);

    const gainedResult = sync('bare-tgt', 'labelled-src');
    const gained = gainedResult.identity as IdentityReport;
    // Not the source's GUID (two disks with one GUID on a host): a fresh one, the same at every refresh.
    assert.deepEqual(gained.warnings, []);
    const made = field(gained, 'gpt.diskGuid');
    assert.equal(made?.status, 'generated');
    assert.equal(made?.sourceValue, STG_DISK);
    assert.match(made!.value, /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
    assert.notEqual(made!.value, STG_DISK);
    assert.equal(gained.blocksWritten, 2, 'both GPT headers');
    exportImage(pool, 'bare-tgt', file('gained.img'));
    assert.match(run('sgdisk', ['-v', file('gained.img')]).stdout, /No problems found/);
    assert.match(
      run('sgdisk', ['-p', file('gained.img')]).stdout,
      new RegExp(`Disk identifier \\(GUID\\): ${made!.value}`),
    );
    assert.match(run('sgdisk', ['-i', '1', file('gained.img')]).stdout, new RegExp(STG_PART));
  });
});
