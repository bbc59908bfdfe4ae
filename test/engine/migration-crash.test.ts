/**
 * A migration killed at any point (SIGKILL of the process running
 * `migrate --pool`'s engine call) leaves the pool whole in format 1 or whole in
 * format 2 or 3: fsck --pool is clean, and the pool opens (migrating what is left)
 * and reads exactly what it held.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsckPoolDir, Pool } from '../../agent/engine';
import { format1Entries, rewriteAsFormat1 } from '../helpers/format1-pool';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const BS = 4096;
const BLOCKS = 8192;
const KILLS = 6;

/** Block b of `d` after the writes below (its snapshot `s` reads `b & 0xff || 1` everywhere). */
const expected = (b: number) => (b % 3 === 0 ? 0xee : 0);

/** A closed format-1 pool with ~3 × BLOCKS map entries over three tables (most of them explicit zeros, no data). */
async function makeFormat1Pool(): Promise<string> {
  const dir = tempDir();
  const pool = Pool.create(dir, { blockSize: BS, capacityBytes: 2 * BLOCKS * BS, dataFiles: 1 });
  pool.createContainer({ name: 'd', type: 'vdisk', size: BLOCKS * BS });
  const block = Buffer.alloc(BS);
  for (let b = 0; b < BLOCKS; b++) pool.write('d', b * BS, block.fill(b & 0xff || 1));
  pool.snapshot('d', 's');
  pool.writeZeroes('d', 0, BLOCKS * BS);
  pool.snapshot('d', 'zeroed');
  for (let b = 0; b < BLOCKS; b += 3) pool.write('d', b * BS, block.fill(0xee));
  await pool.flush();
  await pool.close();
  await rewriteAsFormat1(dir);
  return dir;
}

/** Runs the worker on `dir`, killing it `killAfter` ms after it starts migrating (never if null). */
function migrateIn(dir: string, killAfter: number | null): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'migrate-worker.ts'), dir],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
      if (killAfter !== null && out.startsWith('start\n') && !child.killed)
        setTimeout(() => child.kill('SIGKILL'), killAfter);
    });
    child.on('error', reject);
    child.on('exit', () => {
      const done = /done ([\d.]+)/.exec(out);
      resolve(done ? Number(done[1]) : null);
    });
  });
}

async function assertWhole(dir: string): Promise<'format 1' | 'format 2 or 3'> {
  const left = (await format1Entries(dir)).length;
  assert.deepEqual((await fsckPoolDir(dir)).problems, []);
  const pool = Pool.open(dir);
  try {
    const d = pool.read('d', 0, BLOCKS * BS);
    const s = pool.readSnapshot('d@s', 0, BLOCKS * BS);
    for (let b = 0; b < BLOCKS; b++) {
      assert.equal(d[b * BS], expected(b), `d block ${b}`);
      assert.equal(s[b * BS + BS - 1], b & 0xff || 1, `d@s block ${b}`);
    }
    assert.ok(pool.readSnapshot('d@zeroed', 0, BLOCKS * BS).equals(Buffer.alloc(BLOCKS * BS)));
    assert.deepEqual((await pool.fsck()).problems, []);
  } finally {
    await pool.close();
  }
  // 1 → 2 and 2 → 3 are a transaction each: a kill between them leaves format 2, which opens as well.
  return left > 0 ? 'format 1' : 'format 2 or 3';
}

describe('a migration killed at any point', () => {
  after(cleanupTempDirs);

  it(`leaves format 1, 2 or 3, whole (${KILLS} SIGKILLs during migrate --pool)`, async function () {
    this.timeout(600_000);
    const template = await makeFormat1Pool();
    assert.ok((await format1Entries(template)).length > 2 * BLOCKS);
    const calibrate = tempDir();
    fs.cpSync(template, calibrate, { recursive: true });
    const duration = await migrateIn(calibrate, null);
    assert.ok(duration !== null, 'an undisturbed migration completes');
    assert.equal(await assertWhole(calibrate), 'format 2 or 3');
    const outcomes: string[] = [];
    for (let i = 0; i < KILLS; i++) {
      const dir = tempDir();
      fs.cpSync(template, dir, { recursive: true });
      // Spread over the migration (and a little past it): start-up of the child is not counted.
      await migrateIn(dir, Math.floor((duration! * 1.2 * (i + 0.5)) / KILLS));
      outcomes.push(await assertWhole(dir));
    }
    console.log(`      migration ${duration!.toFixed(0)} ms; after each kill: ${outcomes.join(', ')}`);
  });
});
