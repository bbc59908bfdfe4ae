import * as assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool, SnapsyncError } from '../../agent/engine';
import { PoolLock } from '../../agent/engine/store/pool-lock';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const RACER = path.resolve(__dirname, 'helpers/lock-racer.ts');
const ROUNDS = 100;

function startRacer(dir: string): Promise<ChildProcess> {
  const child = fork(RACER, [dir], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`racer exited with ${code}`)));
  });
}

function next<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve) => child.once('message', (m) => resolve(m as T)));
}

describe('pool lock: one process per pool, by the kernel', () => {
  after(cleanupTempDirs);

  it(`lets exactly one of two racing processes take the lock, ${ROUNDS} rounds`, async () => {
    const dir = tempDir();
    const lockFile = path.join(dir, 'pool.lock');
    const racers = await Promise.all([startRacer(dir), startRacer(dir)]);
    const outcomes: string[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        // Every other round starts from a lock file a dead process left behind.
        if (round % 2 === 0) fs.writeFileSync(lockFile, JSON.stringify({ pid: 999999, start: '1' }));
        const at = Date.now() + 30;
        const answers = racers.map((r) => next<{ won: boolean; code?: string }>(r));
        for (const r of racers) r.send({ round, at });
        const results = await Promise.all(answers);
        const winners = results.filter((x) => x.won).length;
        outcomes.push(`${winners}`);
        assert.equal(
          winners,
          1,
          `round ${round}: ${winners} processes hold the lock (${JSON.stringify(results)})`,
        );
        assert.equal(results.find((x) => !x.won)?.code, 'POOL_LOCKED');
        await Promise.all(racers.map((r) => Promise.all([next(r), r.send('release')])));
      }
    } finally {
      for (const r of racers) r.kill('SIGKILL');
    }
    assert.equal(outcomes.length, ROUNDS);
  });

  it('frees the lock of a SIGKILLed holder at once, and refuses while it lives', async () => {
    const dir = tempDir();
    await Pool.create(dir).close();
    const holder = await startRacer(dir);
    try {
      const won = next<{ won: boolean }>(holder);
      holder.send({ round: 0, at: 0 });
      assert.equal((await won).won, true);
      assert.throws(
        () => Pool.open(dir),
        (err: unknown) =>
          err instanceof SnapsyncError &&
          err.code === 'POOL_LOCKED' &&
          err.message.includes(`pid ${holder.pid}`),
      );
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      holder.kill('SIGKILL');
      await exited;
      const pool = Pool.open(dir);
      await pool.close();
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('refuses a second lock in the same process and frees it on release', () => {
    const dir = tempDir();
    const lock = PoolLock.acquire(dir);
    assert.throws(
      () => PoolLock.acquire(dir),
      (err: unknown) => (err as SnapsyncError).code === 'POOL_LOCKED',
    );
    lock.release();
    PoolLock.acquire(dir).release();
  });
});
