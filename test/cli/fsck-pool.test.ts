import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { patchRecord } from '../engine/helpers/corrupt-records';
import { killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

function fsckPool(dir: string, json = true): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, 'fsck', '--pool', dir, ...(json ? ['--json'] : [])], {
    encoding: 'utf8',
    env: { ...process.env, SNAPSYNC_URL: 'ws://127.0.0.1:1' }, // no agent there: --pool must not need one
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('snapsync-agent fsck --pool DIR (no agent)', () => {
  killAgentsTestsLeave();
  after(cleanupTempDirs);

  it('exits 0 on a clean pool, 4 with the problems on a record the agent cannot open, 1 on an unknown format', async () => {
    const dir = path.join(tempDir(), 'pool');
    const pool = Pool.create(dir, { blockSize: 4096, capacityBytes: 1 << 24 });
    pool.createContainer({ name: 'd', type: 'vdisk', size: 1 << 20 });
    pool.write('d', 0, Buffer.from('x'));
    await pool.close();

    const clean = fsckPool(dir, false);
    assert.equal(clean.status, 0, clean.err);
    assert.match(clean.out, /^clean: 1 containers/);

    await patchRecord(dir, 'containers', 1, { v: 2 });
    const bad = fsckPool(dir);
    assert.equal(bad.status, 4, bad.err);
    const report = JSON.parse(bad.out);
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((p: { code: string }) => p.code === 'RECORD_INVALID'));

    await patchRecord(dir, 'containers', 1, { v: 1 });
    await patchRecord(dir, 'meta', 'pool', { formatVersion: 99 });
    const newer = fsckPool(dir);
    assert.equal(newer.status, 1);
    assert.equal(JSON.parse(newer.out).error.code, 'UNSUPPORTED_VERSION');
  });

  it('exits 4 naming a data file that is missing or ends within or before blocks mapped in it', async () => {
    const dir = path.join(tempDir(), 'pool');
    const pool = Pool.create(dir, { blockSize: 4096, capacityBytes: 1 << 24, dataFiles: 2 });
    pool.createContainer({ name: 'd', type: 'vdisk', size: 1 << 20 });
    pool.write('d', 0, Buffer.alloc(4 * 4096, 7)); // blocks 1-4: two in data, two in data.1
    await pool.close();
    fs.rmSync(path.join(dir, 'data.1'));
    // Cut 512 bytes into block 3 (the second block of `data`): its tail reads as zeros.
    fs.truncateSync(path.join(dir, 'data'), 4096 + 512);

    const r = fsckPool(dir);
    assert.equal(r.status, 4, r.err);
    const short = JSON.parse(r.out).problems.filter((p: { code: string }) => p.code === 'DATA_FILE_SHORT');
    assert.deepEqual(
      short.map((p: { details: unknown }) => p.details),
      [
        { path: path.join(dir, 'data'), bytes: 4096 + 512, blocks: 1, firstBlock: 3 },
        { path: path.join(dir, 'data.1'), bytes: -1, blocks: 2, firstBlock: 2 },
      ],
    );
    assert.match(short[1].message, /data\.1 is missing: 2 mapped block\(s\)/);
  });

  it('checks the committed state of a pool an agent is serving, without stopping it', async () => {
    const agent = await startAgentProcess();
    try {
      const r = fsckPool(agent.poolDir);
      assert.equal(r.status, 0, r.err);
      assert.equal(JSON.parse(r.out).ok, true);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });
});
