/**
 * What a sync does to a disk's filesystem identity, checked with blkid,
 * debugfs and e2fsck on the result: the filesystem UUIDs and labels (ext4,
 * swap) and the partition GUIDs are the source's, because the guest's
 * /etc/fstab and boot loader come from the source and name the source's
 * values; only the GPT disk GUID (which nothing in the guest mounts by) is the
 * target's. So every UUID=, LABEL= and PARTUUID= the synced fstab names
 * exists on the synced disk.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { createIdentityHooks, type IdentityReport } from '../../agent/identity';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { exportImage, importImage } from './helpers/pool';
import { MiB, run } from './helpers/tools';

interface Side {
  disk: string;
  part1: string;
  part2: string;
  rootUuid: string;
  rootLabel: string;
  swapUuid: string;
  swapLabel: string;
}

const PROD: Side = {
  disk: 'AAAAAAAA-0000-4000-8000-000000000001',
  part1: 'AAAAAAAA-1111-4000-8000-000000000001',
  part2: 'AAAAAAAA-2222-4000-8000-000000000001',
  rootUuid: 'a1a1a1a1-0000-4000-8000-000000000001',
  rootLabel: 'prod-root',
  swapUuid: 'a2a2a2a2-0000-4000-8000-000000000001',
  swapLabel: 'prod-swap',
};
const STAGING: Side = {
  disk: 'BBBBBBBB-0000-4000-8000-000000000002',
  part1: 'BBBBBBBB-1111-4000-8000-000000000002',
  part2: 'BBBBBBBB-2222-4000-8000-000000000002',
  rootUuid: 'b1b1b1b1-0000-4000-8000-000000000002',
  rootLabel: 'stg-root',
  swapUuid: 'b2b2b2b2-0000-4000-8000-000000000002',
  swapLabel: 'stg-swap',
};

const P1 = { offset: 2048 * 512, length: 40 * MiB };
const P2_START = 2048 + (40 * MiB) / 512;

/** GPT: partition 1 ext4 (root, with an /etc/fstab naming its filesystems every way), partition 2 swap. */
function image(dir: string, name: string, side: Side): string {
  const file = path.join(dir, `${name}.img`);
  fs.writeFileSync(file, Buffer.alloc(0));
  fs.truncateSync(file, 64 * MiB);
  run('sgdisk', [
    '-o',
    '-n',
    `1:2048:${P2_START - 1}`,
    '-t',
    '1:8300',
    '-u',
    `1:${side.part1}`,
    '-n',
    `2:${P2_START}:0`,
    '-t',
    '2:8200',
    '-u',
    `2:${side.part2}`,
    '-U',
    side.disk,
    file,
  ]);
  const root = fs.mkdtempSync(path.join(dir, 'root-'));
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(
    path.join(root, 'etc', 'fstab'),
    [
      `UUID=${side.rootUuid} / ext4 defaults 0 1`,
      `LABEL=${side.rootLabel} /mnt/by-label ext4 defaults 0 2`,
      `PARTUUID=${side.part1.toLowerCase()} /mnt/by-partuuid ext4 defaults 0 2`,
      `UUID=${side.swapUuid} none swap sw 0 0`,
      '',
    ].join('\n'),
  );
  run('mkfs.ext4', [
    '-q',
    '-F',
    '-b',
    '4096',
    '-U',
    side.rootUuid,
    '-L',
    side.rootLabel,
    '-d',
    root,
    '-E',
    `offset=${P1.offset}`,
    file,
    String(P1.length / 4096),
  ]);
  // mkswap has no offset option: make the swap area alone, then put it in partition 2.
  const swap = path.join(dir, `${name}-swap.img`);
  fs.writeFileSync(swap, Buffer.alloc(0));
  fs.truncateSync(swap, 16 * MiB);
  run('mkswap', ['-U', side.swapUuid, '-L', side.swapLabel, swap]);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, fs.readFileSync(swap).subarray(0, 64 * 1024), 0, 64 * 1024, P2_START * 512);
  fs.closeSync(fd);
  return file;
}

/** blkid's view of the filesystem at a byte offset: UUID, LABEL, TYPE. */
function probe(file: string, offset: number): Record<string, string> {
  const out = run('blkid', ['-p', '-O', String(offset), '-o', 'export', file]).stdout;
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
}

describe('identity: filesystem UUIDs and labels after a sync', function () {
  this.timeout(120_000);
  let pool: Pool;
  let dir: string;
  beforeEach(() => {
    dir = tempDir('snapsync-fs-identity-');
    pool = Pool.create(path.join(dir, 'pool'), { blockSize: 4096 });
  });
  afterEach(() => pool.close());
  after(cleanupTempDirs);

  it("ext4 and swap UUIDs and labels are the source's, as the synced fstab names them; the disk GUID is the target's", () => {
    importImage(pool, 'prod-disk', image(dir, 'prod', PROD));
    importImage(pool, 'stg-disk', image(dir, 'stg', STAGING));
    pool.snapshot('prod-disk', 'nightly');
    const report = pool.sync('stg-disk', 'prod-disk@nightly', { hooks: createIdentityHooks() })
      .identity as IdentityReport;
    assert.deepEqual(report.warnings, []);
    assert.deepEqual(
      report.fields.filter((f) => f.status === 'restored').map((f) => f.path),
      ['gpt.diskGuid'],
    );
    const out = path.join(dir, 'out.img');
    exportImage(pool, 'stg-disk', out);

    const ext4 = probe(out, P1.offset);
    assert.equal(ext4.TYPE, 'ext4');
    assert.equal(ext4.UUID, PROD.rootUuid);
    assert.equal(ext4.LABEL, PROD.rootLabel);
    const swap = probe(out, P2_START * 512);
    assert.equal(swap.TYPE, 'swap');
    assert.equal(swap.UUID, PROD.swapUuid);
    assert.equal(swap.LABEL, PROD.swapLabel);
    assert.match(run('sgdisk', ['-v', out]).stdout, /No problems found/);
    assert.match(
      run('sgdisk', ['-p', out]).stdout,
      new RegExp(`Disk identifier \\(GUID\\): ${STAGING.disk}`),
    );
    const partuuid = /Partition unique GUID: (\S+)/.exec(run('sgdisk', ['-i', '1', out]).stdout)![1]!;

    // The guest's fstab (production's) names only what exists on the synced disk.
    const p1 = path.join(dir, 'p1.img');
    fs.writeFileSync(p1, fs.readFileSync(out).subarray(P1.offset, P1.offset + P1.length));
    run('e2fsck', ['-fn', p1]);
    const fstab = run('debugfs', ['-R', 'cat /etc/fstab', p1]).stdout;
    const present = {
      UUID: [ext4.UUID, swap.UUID],
      LABEL: [ext4.LABEL, swap.LABEL],
      PARTUUID: [partuuid.toLowerCase()],
    };
    const named = [...fstab.matchAll(/^(UUID|LABEL|PARTUUID)=(\S+)/gm)];
    assert.equal(named.length, 4);
    for (const [, kind, value] of named)
      assert.ok(present[kind as keyof typeof present].includes(value!), `fstab's ${kind}=${value} exists`);
  });
});
