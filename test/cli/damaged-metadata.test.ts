/**
 * A pool whose metadata file (meta/data.mdb) is damaged: `fsck --pool` and
 * `serve` exit 1 with CORRUPT naming the damage, never die on a signal, and
 * leave the file as it was (see engine/store/metadata-file-check.ts).
 */
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const PAGE = 4096; // the page size LMDB picked for these pools (the OS page size)

/** Byte offsets in an LMDB meta page (liblmdb/mdb.c, MDB_page_header then MDB_meta). */
const META = { mainRoot: 136, txnid: 152 } as const;

/** Offset of the meta page LMDB uses: the one with the higher txnid. */
function newestMeta(file: Buffer): number {
  return file.readBigUInt64LE(META.txnid) >= file.readBigUInt64LE(PAGE + META.txnid) ? 0 : PAGE;
}

const DAMAGE: Record<string, { damage: (file: string) => void; says: RegExp }> = {
  zeroed: {
    damage: (f) => fs.writeFileSync(f, Buffer.alloc(1 << 20)),
    says: /page 0 is not an LMDB meta page/,
  },
  random: {
    // Random bytes with page 0's meta flag set, so the check past it (the magic number) is what refuses them.
    damage: (f) => fs.writeFileSync(f, randomBytes(1 << 20).fill(8, 18, 19)),
    says: /meta page 0 has no LMDB magic number/,
  },
  empty: { damage: (f) => fs.truncateSync(f, 0), says: /the file is empty/ },
  'one page': { damage: (f) => fs.truncateSync(f, PAGE), says: /shorter than its two meta pages/ },
  'main root past the end': {
    damage: (f) => {
      const bytes = fs.readFileSync(f);
      bytes.writeBigUInt64LE(1_000_000n, newestMeta(bytes) + META.mainRoot);
      fs.writeFileSync(f, bytes);
    },
    says: /the main tree's root, page 1000000, is outside the file's \d+ pages/,
  },
  'main root page zeroed': {
    damage: (f) => {
      const bytes = fs.readFileSync(f);
      const root = Number(bytes.readBigUInt64LE(newestMeta(bytes) + META.mainRoot));
      bytes.fill(0, root * PAGE, (root + 1) * PAGE);
      fs.writeFileSync(f, bytes);
    },
    says: /the main tree's root, page \d+, is not a B-tree page/,
  },
};

describe('a pool whose metadata file is damaged', function () {
  this.timeout(300_000);
  let healthy: string;

  before(async () => {
    healthy = path.join(tempDir(), 'pool');
    const pool = Pool.create(healthy, { blockSize: 4096, capacityBytes: 1 << 24 });
    pool.createContainer({ name: 'd', type: 'vdisk', size: 1 << 20 });
    pool.write('d', 0, Buffer.from('x'));
    await pool.close();
  });
  after(cleanupTempDirs);

  /** A copy of the healthy pool with its metadata file damaged; returns the pool and the file. */
  function damaged(kind: string): { dir: string; file: string } {
    const dir = path.join(tempDir(), 'pool');
    fs.cpSync(healthy, dir, { recursive: true });
    const file = path.join(dir, 'meta', 'data.mdb');
    DAMAGE[kind].damage(file);
    return { dir, file };
  }

  for (const kind of Object.keys(DAMAGE)) {
    it(`fsck --pool exits 1 with CORRUPT naming the damage (${kind}), not on a signal`, () => {
      const { dir, file } = damaged(kind);
      const before = fs.readFileSync(file);
      const json = runCli(['fsck', '--pool', dir, '--json']);
      assert.equal(json.signal, null, `killed by ${json.signal}: ${json.err}`);
      assert.equal(json.status, 1, json.err);
      const { error } = JSON.parse(json.out);
      assert.equal(error.code, 'CORRUPT');
      assert.match(error.message, DAMAGE[kind].says);
      assert.equal(error.details.path, file);

      const human = runCli(['fsck', '--pool', dir]);
      assert.equal(human.status, 1, human.err);
      assert.match(human.err, /^error: \[CORRUPT\] pool metadata .*data\.mdb is damaged: /);
      assert.ok(fs.readFileSync(file).equals(before), 'fsck changed the file');
    });
  }

  for (const kind of ['zeroed', 'empty', 'one page']) {
    it(`serve exits 1 with CORRUPT (${kind}), not on a signal, and leaves the file as it was`, () => {
      const { dir, file } = damaged(kind);
      const before = fs.readFileSync(file);
      const r = runCli(['serve', '--pool', dir, '--listen', '127.0.0.1:0', '--insecure-no-auth']);
      assert.equal(r.signal, null, `killed by ${r.signal}: ${r.err}`);
      assert.equal(r.status, 1, r.err);
      assert.match(r.err, /error: \[CORRUPT\] pool metadata .*data\.mdb is damaged: /);
      assert.match(r.err, DAMAGE[kind].says);
      // An empty file in particular is not made a new, empty store.
      assert.ok(fs.readFileSync(file).equals(before), 'serve changed the file');
    });
  }
});
