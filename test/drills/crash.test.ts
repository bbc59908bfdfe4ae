import * as assert from 'node:assert/strict';
import { cleanupTempDirs } from '../helpers/tmp';
import { crashDrill } from './crash';

describe('drill: SIGKILL a loaded agent, restart, check', function () {
  this.timeout(1_800_000);
  after(cleanupTempDirs);

  it(`survives ${process.env.SNAPSYNC_DRILL_CRASH_CYCLES ?? 200} kills: fsck clean, no acknowledged write lost, no torn block, no partial sync`, async () => {
    const seed = Number(process.env.SNAPSYNC_DRILL_SEED ?? Date.now() % 2 ** 31);
    const cycles = Number(process.env.SNAPSYNC_DRILL_CRASH_CYCLES ?? 200);
    const result = await crashDrill(cycles, seed);
    assert.equal(result.cycles, cycles, `seed ${seed}`);
    assert.ok(result.flushedRecords > 0, 'the load did write and flush');
    assert.deepEqual(
      [result.fsckProblems, result.lostWrites, result.tornBlocks, result.partialSyncs],
      [0, 0, 0, 0],
      `seed ${seed}: ${JSON.stringify(result)}`,
    );
  });
});
