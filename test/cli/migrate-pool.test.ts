/**
 * `snapsync-agent migrate --pool DIR`, and `serve` on a format-1 pool: the
 * real CLI and agent processes on a copy of the frozen format-1 fixture.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
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
    assert.equal(first.out, `migrated ${dir} from format 1 to format 3\n`);
    const again = migratePool(dir);
    assert.equal(again.status, 0, again.err);
    assert.deepEqual(JSON.parse(again.out), { from: 3, to: 3, migrated: false });

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
      assert.equal(cli('info').formatVersion, 3);
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
      assert.deepEqual({ from, to }, { from: 1, to: 3 });
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });
});
