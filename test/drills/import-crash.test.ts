import * as assert from 'node:assert/strict';
import { cleanupTempDirs } from '../helpers/tmp';
import { importCrashDrill } from './import-crash';
import { importIntoDisconnectDrill, importIntoFaultDrill, importIntoKillDrill } from './import-into';

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

  it(`an import into an existing vdisk, killed ${process.env.SNAPSYNC_DRILL_IMPORT_KILLS ?? 6} times, leaves the old or the new image, never a mix; the retry succeeds`, async () => {
    const seed = Number(process.env.SNAPSYNC_DRILL_SEED ?? Date.now() % 2 ** 31);
    const cycles = Number(process.env.SNAPSYNC_DRILL_IMPORT_KILLS ?? 6);
    const r = await importIntoKillDrill(cycles, seed);
    assert.deepEqual(r.wrong, [], `seed ${seed}: ${JSON.stringify(r)}`);
    assert.equal(r.cycles, cycles);
    assert.ok(r.old > 0, `seed ${seed}: some kill landed mid-import (${JSON.stringify(r)})`);
    assert.deepEqual([r.mixed, r.identityChanged, r.fsckProblems, r.retryFailures], [0, 0, 0, 0]);
  });

  it('an import into an existing vdisk under device faults (EIO on a write or a sync) is undone whole', async () => {
    const seed = Number(process.env.SNAPSYNC_DRILL_SEED ?? Date.now() % 2 ** 31);
    const rounds = Number(process.env.SNAPSYNC_DRILL_IMPORT_FAULTS ?? 8);
    const r = await importIntoFaultDrill(rounds, seed);
    assert.deepEqual(r.wrong, [], `seed ${seed}: ${JSON.stringify(r)}`);
    assert.equal(r.cycles, rounds);
    assert.equal(r.old, rounds, 'every faulted import left the old image');
    assert.deepEqual([r.mixed, r.identityChanged, r.fsckProblems, r.retryFailures], [0, 0, 0, 0]);
  });

  it('an import into an existing vdisk whose client goes away completes whole; the retry gets its answer', async () => {
    const seed = Number(process.env.SNAPSYNC_DRILL_SEED ?? Date.now() % 2 ** 31);
    const r = await importIntoDisconnectDrill(3, seed);
    assert.deepEqual(r.wrong, [], `seed ${seed}: ${JSON.stringify(r)}`);
    assert.deepEqual([r.cycles, r.new, r.mixed, r.identityChanged], [3, 3, 0, 0]);
  });
});
