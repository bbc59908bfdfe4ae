/**
 * The end-to-end scenario over NBD: a GPT disk with ext4 is written
 * into a vdisk by qemu-img, snapshotted; a staging vdisk with its own
 * identity is synced to that snapshot; read back through NBD, staging differs
 * from the snapshot only in its identity bytes.
 * The sync runs the real identity profiles (agent/identity): staging keeps
 * its GPT disk GUID, and the two GPT headers (GUID + CRC) are the only bytes
 * that differ from production's snapshot.
 */
import * as assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createIdentityHooks, type IdentityReport } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { run, runOk, type ServedPool, servePool } from './helpers/served-pool';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const PART_START = 1 * MiB;
const SECTOR = 512;

/** The bytes that carry a GPT disk's identity: HeaderCRC32 and DiskGUID of the primary and the backup header. */
const IDENTITY: Array<[number, number]> = [SECTOR, SIZE - SECTOR].flatMap(
  (h): Array<[number, number]> => [
    [h + 16, h + 20],
    [h + 56, h + 72],
  ],
);

/** A GPT disk with one Linux partition holding ext4 (4 KiB blocks: one group, no backup superblocks). */
async function makeDisk(file: string, content: string): Promise<void> {
  fs.writeFileSync(file, Buffer.alloc(0));
  fs.truncateSync(file, SIZE);
  // Explicit GUIDs: the disk identity this scenario is about.
  await runOk('sgdisk', [
    '-o',
    '-n',
    `1:${PART_START / SECTOR}:+60M`,
    '-t',
    '1:8300',
    '-U',
    randomUUID(),
    '-u',
    `1:${randomUUID()}`,
    file,
  ]);
  const root = tempDir('snapsync-ext4-root-');
  fs.writeFileSync(path.join(root, 'hello.txt'), content);
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc', 'app.conf'), `db=${content}\n`.repeat(1000));
  await runOk('mkfs.ext4', [
    '-q',
    '-F',
    '-b',
    '4096',
    '-E',
    `offset=${PART_START}`,
    '-d',
    root,
    file,
    `${60 * 1024}k`,
  ]);
}

function differingRanges(a: Buffer, b: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const last = out[out.length - 1];
    if (last && last[1] === i) last[1] = i + 1;
    else out.push([i, i + 1]);
  }
  return out;
}

describe('nbd: GPT + ext4 disk, snapshot, sync, read back', function () {
  this.timeout(120_000);
  let s: ServedPool;
  let work: string;

  before(async () => {
    s = await servePool();
    work = tempDir('snapsync-gpt-');
  });
  after(async () => {
    await s.close();
    cleanupTempDirs();
  });

  it('staging differs from the production snapshot only in its identity bytes', async () => {
    const prodImg = path.join(work, 'prod.img');
    const stagingImg = path.join(work, 'staging.img');
    await makeDisk(prodImg, 'production data');
    await makeDisk(stagingImg, 'staging leftovers');
    for (const [name, img] of [
      ['prod', prodImg],
      ['staging', stagingImg],
    ] as const) {
      s.pool.createContainer({ name, type: 'vdisk', size: SIZE });
      await runOk('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', img, s.url(name)]);
      await runOk('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', img, s.url(name)]);
    }
    s.pool.snapshot('prod', 'golden');
    // Production moves on after the snapshot; staging must get the snapshot, not this.
    await runOk('qemu-io', ['-f', 'raw', '-c', `write -P 0x99 ${PART_START + 8 * MiB} 64k`, s.url('prod')]);

    const result = s.pool.sync('staging', 'prod@golden', { hooks: createIdentityHooks() });
    const report = result.identity as IdentityReport;
    assert.equal(report.fields.find((f) => f.path === 'gpt.diskGuid')?.status, 'restored');
    assert.equal(report.blocksWritten, 2);

    const cmp = await run('qemu-img', [
      'compare',
      '-f',
      'raw',
      '-F',
      'raw',
      s.url('prod@golden'),
      s.url('staging'),
    ]);
    assert.equal(cmp.code, 1, cmp.stdout + cmp.stderr);
    const at = Number(/Content mismatch at offset (\d+)!/.exec(cmp.stdout)?.[1]);
    assert.ok(
      IDENTITY.some(([a, b]) => at >= a - SECTOR && at < b),
      `first mismatch at ${at}`,
    );

    const golden = path.join(work, 'golden.out');
    const staging = path.join(work, 'staging.out');
    await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', s.url('prod@golden'), golden]);
    await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', s.url('staging'), staging]);
    const g = fs.readFileSync(golden);
    const t = fs.readFileSync(staging);
    assert.ok(g.equals(fs.readFileSync(prodImg)), 'the snapshot export is the disk written in');
    const diffs = differingRanges(g, t);
    assert.ok(diffs.length > 0);
    for (const [a, b] of diffs) {
      assert.ok(
        IDENTITY.some(([x, y]) => a >= x && b <= y),
        `bytes ${a}..${b} differ outside the identity regions`,
      );
    }
    // The differing bytes are staging's own GUID and the CRCs that cover it.
    const stagingOrig = fs.readFileSync(stagingImg);
    assert.ok(t.subarray(SECTOR + 56, SECTOR + 72).equals(stagingOrig.subarray(SECTOR + 56, SECTOR + 72)));
    assert.match(await runOk('sgdisk', ['-v', staging]), /No problems found/);
    const gpt = await runOk('sgdisk', ['-p', staging]);
    const stagingGpt = await runOk('sgdisk', ['-p', stagingImg]);
    assert.equal(
      /Disk identifier \(GUID\): (\S+)/.exec(gpt)?.[1],
      /Disk identifier \(GUID\): (\S+)/.exec(stagingGpt)?.[1],
    );
  });
});
