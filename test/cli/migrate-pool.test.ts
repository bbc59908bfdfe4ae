/**
 * `snapsync-agent migrate --pool DIR`, and `serve` on a format-1 pool: the
 * real CLI and agent processes on a copy of the frozen format-1 fixture.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { DB } from '../../agent/engine/store/keys';
import { MetadataStore } from '../../agent/engine/store/metadata-store';
import { patchRecord } from '../engine/helpers/corrupt-records';
import { agentCli, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

function migratePool(dir: string, json = true): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, 'migrate', '--pool', dir, ...(json ? ['--json'] : [])], {
    encoding: 'utf8',
    env: { ...process.env, SNAPSYNC_URL: 'ws://127.0.0.1:1' }, // no agent there: --pool must not need one
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/** Every record of the pool's metadata, read-only (what a refusal must leave as it was). */
async function metadataRecords(dir: string): Promise<string> {
  const store = MetadataStore.openReadOnly(path.join(dir, 'meta'));
  try {
    const records = Object.values(DB).map((db) => [db, [...store.entries(db)]]);
    return JSON.stringify(records, (_key, value) =>
      value?.type === 'Buffer' ? Buffer.from(value.data).toString('hex') : value,
    );
  } finally {
    await store.close();
  }
}

function formatOnePool(): string {
  const dir = path.join(tempDir(), 'pool');
  fs.cpSync(path.join(__dirname, '../fixtures/pool-v1'), dir, { recursive: true });
  return dir;
}

describe('snapsync-agent migrate --pool DIR (no agent)', () => {
  killAgentsTestsLeave();
  after(cleanupTempDirs);

  it('migrates a format-1 pool once (exit 0), then says there is nothing to do; an unknown format is refused (exit 1)', async () => {
    const dir = formatOnePool();
    const first = migratePool(dir, false);
    assert.equal(first.status, 0, first.err);
    assert.equal(first.out, `migrated ${dir} from format 1 to format 4\n`);
    const again = migratePool(dir);
    assert.equal(again.status, 0, again.err);
    assert.deepEqual(JSON.parse(again.out), { from: 4, to: 4, migrated: false });

    await patchRecord(dir, 'meta', 'pool', { formatVersion: 99 });
    const newer = migratePool(dir);
    assert.equal(newer.status, 1);
    assert.equal(JSON.parse(newer.out).error.code, 'UNSUPPORTED_VERSION');
  });

  it('serve migrates a format-1 pool at open, logs it, and serves its data; migrate then finds the pool locked', async () => {
    const dir = formatOnePool();
    const agent = await startAgentProcess({ poolDir: dir });
    try {
      const cli = agentCli(agent);
      assert.equal(cli('info').formatVersion, 4);
      assert.deepEqual(
        cli('ls').map((c: { name: string }) => c.name),
        ['vm', 'vm-config', 'vm-disk0', 'clone'],
      );
      const locked = migratePool(dir);
      assert.equal(locked.status, 1);
      assert.equal(JSON.parse(locked.out).error.code, 'POOL_LOCKED');
      const line = agent
        .logs()
        .split('\n')
        .find((l) => l.includes('on-disk format'));
      assert.ok(line, agent.logs());
      const { from, to } = JSON.parse(line);
      assert.deepEqual({ from, to }, { from: 1, to: 4 });
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });

  for (const writes of [5, 0]) {
    it(`format-1 meta/ put back beside data files written since (${writes} writes after the migration): migrate and serve refuse it and leave it as it was`, async () => {
      const dir = formatOnePool();
      const saved = path.join(tempDir(), 'meta-v1');
      execFileSync('cp', ['-a', path.join(dir, 'meta'), saved]);
      // The pool is migrated (its data files stamped with the migration's commits), then written.
      const pool = Pool.open(dir);
      for (let i = 1; i <= writes; i++) {
        pool.write('vm-disk0', i * 4096, Buffer.from(`after migration ${i}`));
        await pool.flush();
      }
      await pool.close();
      // The operator puts back the format-1 metadata alone (the data files stay as they are now).
      fs.rmSync(path.join(dir, 'meta'), { recursive: true });
      execFileSync('cp', ['-a', saved, path.join(dir, 'meta')]);
      const before = await metadataRecords(dir);
      assert.match(before, /"formatVersion":1/);

      const migrated = migratePool(dir);
      assert.equal(migrated.status, 1, migrated.out + migrated.err);
      const { error } = JSON.parse(migrated.out);
      assert.equal(error.code, 'CORRUPT');
      assert.match(error.message, /the pool metadata is at commit 0, older than data file \S+\/data/);
      assert.match(error.message, /reports it as METADATA_OLDER_THAN_DATA/);
      assert.equal(await metadataRecords(dir), before, 'migrate changed metadata it refused');

      const served = spawnSync(
        process.execPath,
        [BIN, 'serve', '--pool', dir, '--listen', '127.0.0.1:0', '--insecure-no-auth', '--json'],
        { encoding: 'utf8' },
      );
      assert.equal(served.status, 1, served.stdout + served.stderr);
      assert.equal(JSON.parse(served.stdout).error.code, 'CORRUPT');
      assert.equal(await metadataRecords(dir), before, 'serve migrated metadata it then refused');

      // fsck still sees it as it was: format 1, older than its data.
      const fsck = spawnSync(process.execPath, [BIN, 'fsck', '--pool', dir, '--json'], { encoding: 'utf8' });
      assert.equal(fsck.status, 4, fsck.stdout + fsck.stderr);
      assert.deepEqual(
        JSON.parse(fsck.stdout).problems.map((p: { code: string }) => p.code),
        ['METADATA_OLDER_THAN_DATA'],
      );
    });
  }
});
