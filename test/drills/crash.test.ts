import * as assert from 'node:assert/strict';
import { cleanupTempDirs } from '../helpers/tmp';
import { crashDrill, diskProblems, type FlushedLog, logEntry, record } from './crash';

describe('drill: SIGKILL a loaded agent, restart, check', function () {
  this.timeout(1_800_000);
  after(cleanupTempDirs);

  it('its disk check sees a write lost to the starting data, an older record and a torn block', () => {
    const BS = 4096;
    const disk = Buffer.alloc(32 * BS, 0x50);
    const flushed: FlushedLog = new Map([
      [0, logEntry(7)],
      [1, logEntry(9)],
      [2, logEntry(11)],
    ]);
    record(5).copy(disk, 1 * BS); // older than the flushed #9
    record(11).copy(disk, 2 * BS);
    disk.fill(0, 2 * BS + 100, 2 * BS + 200); // #11, torn
    record(20).copy(disk, 3 * BS); // a newer write whose flush the kill cut off: fine
    const problems = diskProblems(disk, flushed).map((p) => p.split(' ').slice(0, 3).join(' '));
    assert.deepEqual(problems, ['lost: slot 0', 'lost: slot 1', 'torn: slot 2', 'lost: slot 2']);
    assert.deepEqual(diskProblems(disk.fill(0x50), new Map()), [], 'the untouched disk is fine');
  });

  it(`survives ${process.env.SNAPSYNC_DRILL_CRASH_CYCLES ?? 200} kills: fsck clean, no acknowledged write lost, no torn block, no partial sync`, async () => {
    const seed = Number(process.env.SNAPSYNC_DRILL_SEED ?? Date.now() % 2 ** 31);
    const cycles = Number(process.env.SNAPSYNC_DRILL_CRASH_CYCLES ?? 200);
    const result = await crashDrill(cycles, seed);
    assert.equal(result.cycles, cycles, `seed ${seed}`);
    assert.ok(result.flushedRecords > 0, 'the load did write and flush');
    assert.ok((result.operations['vm sync'] ?? 0) > 0, `seed ${seed}: the load synced the VM`);
    assert.ok((result.operations['forced sync'] ?? 0) > 0, `seed ${seed}: a forced sync drained a writer`);
    assert.deepEqual(
      [
        result.failedCycles,
        result.fsckProblems,
        result.lostWrites,
        result.tornBlocks,
        result.partialSyncs,
        result.attachedProblems,
      ],
      [0, 0, 0, 0, 0, 0],
      `seed ${seed}: ${JSON.stringify(result)}`,
    );
  });
});
