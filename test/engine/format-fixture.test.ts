/**
 * Every released on-disk format opens and reads exactly: a frozen fixture per
 * format (test/fixtures/pool-v<n>, never regenerated). A format-1 pool is
 * checked offline as it is (fsck --pool reads format 1 without changing it),
 * then migrated, by `migratePoolDir` or by opening it.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsckPoolDir, migratePoolDir, Pool } from '../../agent/engine';
import { CURRENT_FORMAT_VERSION } from '../../agent/engine/store/keys';
import { format1Entries, rewriteAsFormat1 } from '../helpers/format1-pool';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const FORMATS = [1, 2, 3, 4];
/** Map entries each fixture holds (format 4's 16 KiB blocks hold the same bytes in fewer). */
const MAP_ENTRIES: Record<number, number> = { 1: 5, 2: 5, 3: 5, 4: 3 };

function copyFixture(format: number): string {
  const dir = tempDir();
  fs.cpSync(path.join(__dirname, `../fixtures/pool-v${format}`), dir, { recursive: true });
  return dir;
}

/** The fixture contents (test/fixtures/pool-v1/README.md), read through an open pool. */
async function assertFixtureContents(pool: Pool): Promise<void> {
  assert.deepEqual(
    pool.listContainers().map((c) => c.name),
    ['vm', 'vm-config', 'vm-disk0', 'clone'],
  );
  assert.deepEqual(pool.describe('vm').members, { config: 'vm-config', disk0: 'vm-disk0' });
  assert.deepEqual(pool.describe('vm').labels, { env: 'fixture' });
  assert.deepEqual(pool.describe('vm-config').file, { mode: 0o600, uid: 1000, gid: 1000 });
  assert.equal(pool.read('vm-config', 0, 24).toString(), 'displayName = "fixture"\n');
  const disk = pool.read('vm-disk0', 0, 16 * BS);
  assert.ok(disk.subarray(0, BS).equals(Buffer.alloc(BS, 0xab)));
  assert.ok(disk.subarray(BS, 2 * BS).equals(Buffer.alloc(BS, 0xcd)));
  assert.ok(disk.subarray(2 * BS, 3 * BS).equals(Buffer.alloc(BS, 0xab)));
  assert.ok(disk.subarray(3 * BS).equals(Buffer.alloc(13 * BS)));
  assert.ok(pool.readSnapshot('vm-disk0@v1', 0, 3 * BS).equals(Buffer.alloc(3 * BS, 0xab)));
  assert.ok(pool.read('clone', 0, 3 * BS).equals(Buffer.alloc(3 * BS, 0xab)));
  assert.equal(pool.describe('clone').parentSnapshot?.name, 'v1');
  assert.deepEqual(
    pool.listSnapshots().map((s) => `${s.container}@${s.name}`),
    ['vm@v1', 'vm-config@v1', 'vm-disk0@v1', 'clone@safety-g1'],
  );
  assert.deepEqual((await pool.fsck()).problems, []);
}

describe('released on-disk formats', () => {
  after(cleanupTempDirs);

  for (const format of FORMATS) {
    const opened =
      format === CURRENT_FORMAT_VERSION ? 'opened' : `opened (migrated to ${CURRENT_FORMAT_VERSION})`;
    it(`the frozen format-${format} pool: fsck --pool clean as it is, then ${opened} it reads exactly and takes writes`, async () => {
      const dir = copyFixture(format);
      const offline = await fsckPoolDir(dir);
      assert.deepEqual(offline.problems, []);
      assert.equal(offline.checked.mapEntries, MAP_ENTRIES[format]);
      let pool = Pool.open(dir);
      try {
        assert.equal(pool.info().formatVersion, CURRENT_FORMAT_VERSION);
        assert.equal(pool.migratedFrom, format === CURRENT_FORMAT_VERSION ? null : format);
        // From format 3 the fixtures stripe their blocks over four files; an older pool keeps its one.
        assert.equal(pool.info().dataFiles.length, format >= 3 ? 4 : 1);
        await assertFixtureContents(pool);
        pool.write('clone', 0, Buffer.from('still writable'));
        await pool.flush();
      } finally {
        await pool.close();
      }
      assert.deepEqual((await fsckPoolDir(dir)).problems, []);
      pool = Pool.open(dir);
      try {
        assert.equal(pool.migratedFrom, null);
        assert.equal(pool.read('clone', 0, 14).toString(), 'still writable');
      } finally {
        await pool.close();
      }
    });
  }

  it('migrate --pool (migratePoolDir) migrates format 1 once, then has nothing to do', async () => {
    const dir = copyFixture(1);
    assert.deepEqual(await migratePoolDir(dir), { from: 1, to: CURRENT_FORMAT_VERSION, migrated: true });
    assert.deepEqual(await format1Entries(dir), [], 'no format-1 entry is left');
    assert.deepEqual((await fsckPoolDir(dir)).problems, []);
    assert.deepEqual(await migratePoolDir(dir), {
      from: CURRENT_FORMAT_VERSION,
      to: CURRENT_FORMAT_VERSION,
      migrated: false,
    });
    const pool = Pool.open(dir);
    try {
      assert.equal(pool.migratedFrom, null);
      await assertFixtureContents(pool);
    } finally {
      await pool.close();
    }
  });

  it('refuses to migrate a pool an agent has open (POOL_LOCKED), and changes nothing', async () => {
    const dir = copyFixture(2);
    const pool = Pool.open(dir);
    try {
      await assert.rejects(migratePoolDir(dir), { code: 'POOL_LOCKED' });
    } finally {
      await pool.close();
    }
  });

  it("the tests' format-1 writer (rewriteAsFormat1) lays out the format-2 fixture as the frozen format-1 one", async () => {
    const rewritten = copyFixture(2);
    await rewriteAsFormat1(rewritten);
    const frozen = copyFixture(1);
    assert.deepEqual(await format1Entries(rewritten), await format1Entries(frozen));
    assert.deepEqual((await fsckPoolDir(rewritten)).problems, []);
  });
});
