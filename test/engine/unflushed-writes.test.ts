/**
 * Writes no client ever flushes (nbdcopy without --flush, dd without conv=fsync) are committed
 * within the pool's commit interval all the same, so an agent killed later loses none of them;
 * with the interval off (0), only a flush or a full batch commits, and a kill loses them.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { BLOCKS, BS } from './unflushed-worker';

/** Runs the worker, waits `waitMs` after it wrote, kills it (SIGKILL). */
function writeThenKill(dir: string, intervalMs: number, value: number, waitMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(__dirname, 'unflushed-worker.ts'),
        dir,
        String(intervalMs),
        String(value),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.stdout.on('data', (d) => {
      if (String(d).includes('written')) setTimeout(() => child.kill('SIGKILL'), waitMs);
    });
    child.on('exit', (code, signal) =>
      signal === 'SIGKILL' ? resolve() : reject(new Error(`worker exited ${code}: ${err}`)),
    );
  });
}

async function blocksHolding(dir: string, value: number): Promise<number> {
  const pool = Pool.open(dir);
  try {
    assert.deepEqual((await pool.fsck()).problems, []);
    const data = pool.read('disk', 0, BLOCKS * BS);
    let n = 0;
    for (let b = 0; b < BLOCKS; b++) if (data[b * BS] === value && data[(b + 1) * BS - 1] === value) n++;
    return n;
  } finally {
    await pool.close();
  }
}

describe('engine: writes never flushed are committed within the commit interval', () => {
  after(cleanupTempDirs);

  async function freshPool(): Promise<string> {
    const dir = path.join(tempDir('snapsync-unflushed-'), 'pool');
    const pool = Pool.create(dir);
    pool.createContainer({ name: 'disk', type: 'vdisk', size: BLOCKS * BS });
    await pool.close();
    return dir;
  }

  it('a kill well after the interval loses none of them, and the pool is clean', async () => {
    const dir = await freshPool();
    await writeThenKill(dir, 200, 0x5a, 1500);
    assert.equal(await blocksHolding(dir, 0x5a), BLOCKS);
  });

  it('with the interval off, the same kill loses them (only a flush commits)', async () => {
    const dir = await freshPool();
    await writeThenKill(dir, 0, 0x5a, 1500);
    assert.equal(await blocksHolding(dir, 0x5a), 0);
  });
});
