/**
 * A pool put back wrongly: `meta/` alone from an older backup (its map points
 * at blocks another container has written since), or `meta/` of another pool.
 * `serve` refuses both with CORRUPT naming what happened and the recovery,
 * and `fsck --pool` reports the same (exit 4) instead of "clean"; a whole
 * pool put back from one backup, and metadata newer than its data files'
 * stamp (a crash before the stamp), open as usual.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { stampDataGeneration } from '../../agent/engine/store/data-generation';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const MiB = 1 << 20;

/** As an operator backs up or restores a directory with the agent stopped (extended attributes kept). */
function copyTree(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  execFileSync('cp', ['-a', from, to]);
}

function serve(dir: string) {
  return runCli(['serve', '--pool', dir, '--listen', '127.0.0.1:0', '--insecure-no-auth', '--json']);
}

describe('a pool whose metadata was put back without its data files', function () {
  this.timeout(120_000);
  let dir: string;
  let backup: string;

  before(async () => {
    const root = tempDir();
    dir = path.join(root, 'pool');
    backup = path.join(root, 'backup');
    let pool = Pool.create(dir, { blockSize: BS, capacityBytes: 16 * MiB, dataFiles: 1 });
    pool.createContainer({ name: 'a', type: 'vdisk', size: MiB });
    pool.write('a', 0, Buffer.alloc(MiB, 0xaa));
    await pool.close();
    copyTree(dir, backup);
    // Later: a goes, b is written into its freed blocks.
    pool = Pool.open(dir);
    pool.deleteContainer('a');
    pool.reclaim();
    pool.createContainer({ name: 'b', type: 'vdisk', size: MiB });
    pool.write('b', 0, Buffer.alloc(MiB, 0xbb));
    await pool.close();
  });
  after(cleanupTempDirs);

  it('meta/ alone from the older backup: serve refuses it and fsck --pool reports it', () => {
    const damaged = path.join(tempDir(), 'pool');
    copyTree(dir, damaged);
    copyTree(path.join(backup, 'meta'), path.join(damaged, 'meta'));

    const fsck = runCli(['fsck', '--pool', damaged, '--json']);
    assert.equal(fsck.status, 4, fsck.out + fsck.err);
    const [problem] = JSON.parse(fsck.out).problems;
    assert.equal(problem.code, 'METADATA_OLDER_THAN_DATA');
    assert.equal(problem.details.path, path.join(damaged, 'data'));
    assert.ok(problem.details.metadataGeneration < problem.details.dataGeneration, fsck.out);

    const r = serve(damaged);
    assert.equal(r.status, 1, r.err);
    const { error } = JSON.parse(r.out);
    assert.equal(error.code, 'CORRUPT');
    assert.match(
      error.message,
      /the pool metadata is at commit \d+, older than data file \S+\/data \(written up to commit \d+\)/,
    );
    assert.match(error.message, /put back <pool>\/meta\/ together with the data files, all from one backup/);
    assert.match(error.message, /fsck --pool" reports it as METADATA_OLDER_THAN_DATA/);
  });

  it('the whole pool from the same backup opens, and reads what it held then', async () => {
    const restored = path.join(tempDir(), 'pool');
    copyTree(backup, restored);
    assert.equal(runCli(['fsck', '--pool', restored]).status, 0);
    const pool = Pool.open(restored);
    try {
      assert.ok(pool.read('a', 0, BS).equals(Buffer.alloc(BS, 0xaa)));
    } finally {
      await pool.close();
    }
  });

  it('metadata newer than the data files’ stamp (a crash before the stamp) opens as usual', async () => {
    const crashed = path.join(tempDir(), 'pool');
    copyTree(dir, crashed);
    let pool = Pool.open(crashed);
    const uuid = pool.info().uuid;
    await pool.close();
    stampDataGeneration(path.join(crashed, 'data'), uuid, 1);
    assert.equal(runCli(['fsck', '--pool', crashed]).status, 0);
    pool = Pool.open(crashed);
    await pool.close();
  });
});

describe('a pool whose metadata is another pool’s', function () {
  this.timeout(120_000);
  after(cleanupTempDirs);

  it('fsck --pool reports DATA_FILE_OTHER_POOL (exit 4) where serve refuses it as CORRUPT', async () => {
    const root = tempDir();
    const [pool, other] = [path.join(root, 'pool'), path.join(root, 'other')];
    for (const dir of [pool, other])
      await Pool.create(dir, { blockSize: BS, capacityBytes: 16 * MiB }).close();
    copyTree(path.join(other, 'meta'), path.join(pool, 'meta'));

    const fsck = runCli(['fsck', '--pool', pool]);
    assert.equal(fsck.status, 4, fsck.out + fsck.err);
    assert.match(fsck.out, /DATA_FILE_OTHER_POOL +data file \S+\/data belongs to pool \S+, not to this one/);

    const r = runCli(['serve', '--pool', pool, '--listen', '127.0.0.1:0', '--insecure-no-auth']);
    assert.equal(r.status, 1, r.err);
    assert.match(
      r.err,
      /\[CORRUPT\] data file \S+\/data belongs to pool \S+, not to this one .*DATA_FILE_OTHER_POOL/,
    );
  });
});
