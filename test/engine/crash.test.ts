/**
 * Crash consistency: a child process writes, flushes, snapshots and syncs; it
 * is killed with SIGKILL at random moments. After each kill the pool opens
 * (the dead process's lock is taken over), fsck is clean, and every record
 * the child reported as flushed reads back exactly (or was overwritten by a
 * later record of the same slot).
 */
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const CYCLES = Number(process.env.SNAPSYNC_CRASH_CYCLES ?? 12);

function runUntilKilled(dir: string, start: number, afterMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'crash-worker.ts'), dir, String(start)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      err += d;
    });
    // Kill only once the child has flushed something, then at a random moment after.
    const timer = setInterval(() => {
      if (out.length > 0) {
        clearInterval(timer);
        setTimeout(() => child.kill('SIGKILL'), afterMs);
      }
    }, 5);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      if (signal === 'SIGKILL') resolve(out);
      else reject(new Error(`worker exited with ${code}: ${err}`));
    });
  });
}

describe('crash consistency (SIGKILL during writes, flushes, snapshots and syncs)', () => {
  after(cleanupTempDirs);

  // On 16 KiB blocks the 4 KiB records after a snapshot are sub-block writes (agent/engine/sub-block.ts).
  for (const blockSize of [BS, 4 * BS])
    it(`survives ${CYCLES} kills with fsck clean and no flushed write lost (${blockSize / 1024} KiB blocks)`, async () => {
      const dir = tempDir();
      const setup = Pool.create(dir, { blockSize, capacityBytes: 1 << 26 });
      setup.createContainer({ name: 'disk', type: 'vdisk', size: 64 * BS });
      setup.createContainer({ name: 'other', type: 'vdisk', size: 64 * BS });
      await setup.close();
      /** slot → the last flushed record */
      const flushed = new Map<number, { seq: number; hash: string }>();
      let next = 1;
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const out = await runUntilKilled(dir, next, Math.floor(Math.random() * 150));
        for (const line of out.split('\n')) {
          const [seq, slot, hash] = line.split(' ');
          if (!hash) continue; // a line cut by the kill was never complete, so never acknowledged
          flushed.set(Number(slot), { seq: Number(seq), hash });
          next = Math.max(next, Number(seq) + 1);
        }
        next += 1000; // records of the killed, unflushed batch may be on disk: keep sequence numbers unique
        next -= next % 40; // so the worker keeps reaching its snapshot/sync points
        const pool = Pool.open(dir);
        try {
          const report = await pool.fsck();
          assert.deepEqual(report.problems, [], `cycle ${cycle}: fsck`);
          for (const [slot, record] of flushed) {
            const data = pool.read('disk', slot * BS, BS);
            const seq = data.readUInt32LE(0);
            assert.ok(
              seq >= record.seq,
              `cycle ${cycle}: slot ${slot} went back from ${record.seq} to ${seq}`,
            );
            // Newer than the last flushed record (from a batch killed before its flush): still whole, never garbage.
            assert.ok(
              data.subarray(4).every((b) => b === (seq & 0xff)),
              `cycle ${cycle}: slot ${slot} holds a torn block`,
            );
            if (seq === record.seq) {
              assert.equal(
                createHash('sha256').update(data).digest('hex'),
                record.hash,
                `cycle ${cycle}: slot ${slot}`,
              );
            }
          }
        } finally {
          await pool.close();
        }
      }
      assert.ok(flushed.size > 0);
    });
});
