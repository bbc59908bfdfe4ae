import * as assert from 'node:assert/strict';
import { cleanupTempDirs } from '../helpers/tmp';
import { importCrashDrill } from './import-crash';

describe('drill: SIGKILL during import --create, restart, retry', function () {
  this.timeout(600_000);
  after(cleanupTempDirs);

  it(`leaves no partial container in ${process.env.SNAPSYNC_DRILL_IMPORT_KILLS ?? 6} kills; fsck clean; the retry with the same key succeeds`, async () => {
    const seed = Number(process.env.SNAPSYNC_DRILL_SEED ?? Date.now() % 2 ** 31);
    const cycles = Number(process.env.SNAPSYNC_DRILL_IMPORT_KILLS ?? 6);
    const r = await importCrashDrill(cycles, seed);
    assert.deepEqual(r.wrong, [], `seed ${seed}: ${JSON.stringify(r)}`);
    assert.equal(r.cycles, cycles);
    assert.ok(r.killedMidway > 0, `seed ${seed}: some kill landed mid-import (${JSON.stringify(r)})`);
    assert.deepEqual([r.partialContainers, r.fsckProblems, r.retryFailures], [0, 0, 0]);
  });
});
