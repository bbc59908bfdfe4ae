/**
 * `snapsync-agent grow` as an operator runs it: a pool on a data file that
 * filled up (writes refused OUT_OF_SPACE) takes writes again once the file is
 * extended and `grow` run through the running agent; `grow --pool` does the
 * same on a stopped pool, and is refused (POOL_LOCKED) while an agent has it.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs, sparseFile, tempDir } from '../helpers/tmp';

const MiB = 1 << 20;

describe('snapsync-agent grow', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  after(cleanupTempDirs);

  it('a full pool takes writes again after its data file is extended and grow is run through the agent, then offline with --pool', async () => {
    const dir = tempDir('snapsync-grow-cli-');
    const device = sparseFile(path.join(dir, 'device.img'), 2 * MiB);
    const poolDir = path.join(dir, 'pool');
    await Pool.create(poolDir, { blockSize: 4096, dataPath: device }).close();
    const chunk = path.join(dir, 'chunk');
    fs.writeFileSync(chunk, Buffer.alloc(MiB, 0x5a));

    const agent = await startAgentProcess({ poolDir });
    const cli = (...args: string[]) => runCli(args, agent);
    try {
      assert.equal(cli('create', 'disk', '--type', 'vdisk', '--size', '8M').status, 0);
      for (const at of ['0', String(MiB)]) assert.equal(cli('write', 'disk', at, '--file', chunk).status, 0);
      const full = cli('write', 'disk', String(2 * MiB), '--file', chunk, '--json');
      assert.equal(full.status, 1);
      assert.equal(JSON.parse(full.out).error.code, 'OUT_OF_SPACE');

      const same = cli('grow');
      assert.equal(same.status, 0, same.err);
      assert.equal(same.out, 'capacity is already 2.0 MiB: nothing to do\n');

      fs.truncateSync(device, 4 * MiB);
      const grown = cli('grow');
      assert.equal(grown.status, 0, grown.err);
      assert.equal(grown.out, 'grew the pool from 2.0 MiB to 4.0 MiB (2.0 MiB free)\n');
      assert.equal(cli('write', 'disk', String(2 * MiB), '--file', chunk).status, 0, 'writes go on');
      assert.equal(JSON.parse(cli('info', '--json').out).capacityBlocks, 1024);

      const smaller = cli('grow', '--capacity', '1M', '--json');
      assert.equal(smaller.status, 1);
      assert.equal(JSON.parse(smaller.out).error.code, 'INVALID_ARGUMENT');
      const locked = runCli(['grow', '--pool', poolDir, '--json']);
      assert.equal(locked.status, 1);
      assert.equal(JSON.parse(locked.out).error.code, 'POOL_LOCKED');
    } finally {
      assert.equal(await agent.stop(), 0);
    }

    fs.truncateSync(device, 6 * MiB);
    const offline = runCli(['grow', '--pool', poolDir, '--json']);
    assert.equal(offline.status, 0, offline.out + offline.err);
    const outcome = JSON.parse(offline.out);
    assert.deepEqual([outcome.before.capacityBlocks, outcome.after.capacityBlocks], [1024, 1536]);
    const fsck = runCli(['fsck', '--pool', poolDir]);
    assert.equal(fsck.status, 0, fsck.out + fsck.err);
    const pool = Pool.open(poolDir);
    try {
      assert.ok(pool.read('disk', 0, 3 * MiB).equals(Buffer.alloc(3 * MiB, 0x5a)), 'every write kept');
    } finally {
      await pool.close();
    }
  });
});
