import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsckPoolDir, Pool, SnapsyncError } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { garbleRecord, openedUnder, patchRecord } from './helpers/corrupt-records';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof SnapsyncError ? err.code : String(err);
  }
};

/** lmdb closes an environment on a later tick: give it a few. */
async function settled(dir: string): Promise<string[]> {
  for (let i = 0; i < 20 && openedUnder(dir).length > 0; i++) await new Promise((r) => setImmediate(r));
  return openedUnder(dir);
}

async function poolWithData(): Promise<string> {
  const dir = fs.realpathSync(tempDir());
  const pool = Pool.create(dir, { blockSize: 4096, capacityBytes: 1 << 24 });
  pool.createContainer({ name: 'd', type: 'vdisk', size: 1 << 20 });
  pool.write('d', 0, Buffer.from('kept'));
  pool.snapshot('d', 's1');
  await pool.close();
  return dir;
}

describe('a pool the agent cannot open', () => {
  after(cleanupTempDirs);

  it('a failed open releases LMDB, the data file and the lock; the next open in the same process works', async () => {
    const dir = await poolWithData();
    await patchRecord(dir, 'containers', 1, { v: 2 });
    assert.equal(
      codeOf(() => Pool.open(dir)),
      'CORRUPT',
    );
    assert.deepEqual(await settled(dir), [], 'nothing of the pool stays open after the failed open');
    await patchRecord(dir, 'containers', 1, { v: 1 });
    const pool = Pool.open(dir);
    assert.equal(pool.read('d', 0, 4).toString(), 'kept');
    await pool.close();
    assert.deepEqual(await settled(dir), []);
  });

  it('a close whose last commit fails (a full disk) still releases the pool, and says so', async () => {
    const dir = await poolWithData();
    const pool = Pool.open(dir);
    pool.write('d', 0, Buffer.from('lost'));
    pool.device.setFaultInjector((op) => {
      if (op === 'sync') throw Object.assign(new Error('injected'), { code: 'ENOSPC' });
    });
    await assert.rejects(pool.close(), (err: unknown) => (err as SnapsyncError).code === 'OUT_OF_SPACE');
    assert.deepEqual(await settled(dir), []);
    const again = Pool.open(dir);
    assert.equal(
      again.read('d', 0, 4).toString(),
      'kept',
      'the unflushed write is lost, the flushed data is not',
    );
    await again.close();
  });

  it('fsck of the directory reports a record of an unknown version (RECORD_INVALID), where open says CORRUPT', async () => {
    const dir = await poolWithData();
    await patchRecord(dir, 'tables', 1, { v: 2 });
    assert.equal(
      codeOf(() => Pool.open(dir)),
      'CORRUPT',
    );
    const report = await fsckPoolDir(dir);
    assert.equal(report.ok, false);
    assert.ok(
      report.problems.some((p) => p.code === 'RECORD_INVALID' && p.details.table === 1),
      JSON.stringify(report),
    );
    assert.deepEqual(await settled(dir), []);
  });

  it('fsck of the directory reports a record that does not decode', async () => {
    const dir = await poolWithData();
    await garbleRecord(dir, 'snapshots', 1);
    assert.notEqual(
      codeOf(() => Pool.open(dir)),
      'ok',
    );
    const report = await fsckPoolDir(dir);
    assert.ok(
      report.problems.some((p) => p.code === 'RECORD_INVALID' && p.details.snapshot === 1),
      JSON.stringify(report),
    );
  });

  it('fsck of the directory reads a consistent committed state while another process has the pool open', async () => {
    const dir = await poolWithData();
    const script = `const p = require(${JSON.stringify(path.resolve('agent/engine/index.ts'))}).Pool.open(${JSON.stringify(dir)});
      let i = 0; setInterval(() => { p.createContainer({ name: 'c' + i++, type: 'file' }); }, 1); console.log('open');`;
    const holder = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise((resolve) => holder.stdout!.once('data', resolve));
      assert.equal(
        codeOf(() => Pool.open(dir)),
        'POOL_LOCKED',
      );
      for (let i = 0; i < 5; i++) {
        const report = await fsckPoolDir(dir);
        assert.deepEqual(report.problems, []);
        assert.ok(report.checked.containers >= 1);
      }
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('refuses a pool of an unknown format version with UNSUPPORTED_VERSION, also read-only', async () => {
    const dir = await poolWithData();
    await patchRecord(dir, 'meta', 'pool', { formatVersion: 99 });
    assert.equal(
      codeOf(() => Pool.open(dir)),
      'UNSUPPORTED_VERSION',
    );
    await assert.rejects(
      fsckPoolDir(dir),
      (err: unknown) => (err as SnapsyncError).code === 'UNSUPPORTED_VERSION',
    );
    assert.deepEqual(await settled(dir), []);
  });
});
