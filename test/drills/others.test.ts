import * as assert from 'node:assert/strict';
import { cleanupTempDirs } from '../helpers/tmp';
import { faultDrill } from './faults';
import { loadDrill } from './load';
import { securityDrill } from './security';

describe('drills: faults, load, security', function () {
  this.timeout(600_000);
  after(cleanupTempDirs);

  it('survives injected device faults: each operation fails with the right code (or a short write completes), fsck clean, nothing flushed lost', async () => {
    const seed = Number(process.env.SNAPSYNC_DRILL_SEED ?? Date.now() % 2 ** 31);
    const rounds = Number(process.env.SNAPSYNC_DRILL_FAULTS ?? 150);
    const r = await faultDrill(rounds, seed);
    assert.equal(r.injected, rounds, `seed ${seed}`);
    for (const fault of ['EIO', 'ENOSPC', 'short write', 'stalled write'] as const)
      assert.ok(
        (r.byFault[fault] ?? 0) > 0,
        `seed ${seed}: some ${fault} was injected (${JSON.stringify(r)})`,
      );
    assert.deepEqual(
      [r.survived, r.fsckProblems, r.lostWrites],
      [r.injected, 0, 0],
      `seed ${seed}: ${JSON.stringify(r)}`,
    );
  });

  it('serves concurrent clients with no errors and no lost writes', async () => {
    const clients = Number(process.env.SNAPSYNC_DRILL_CLIENTS ?? 8);
    const r = await loadDrill(clients, Number(process.env.SNAPSYNC_DRILL_SECONDS ?? 5), 70);
    assert.ok(r.operations >= clients * 70, JSON.stringify(r));
    assert.deepEqual([r.errors, r.lostWrites], [0, 0], JSON.stringify(r));
  });

  it('refuses every way in without credentials, and logs no token', async () => {
    const r = await securityDrill(Number(process.env.SNAPSYNC_DRILL_FLOOD ?? 10));
    assert.deepEqual(r.wrong, []);
    assert.equal(r.refused, r.attempts, JSON.stringify(r));
    assert.equal(r.tokenInLogs, false);
  });
});
