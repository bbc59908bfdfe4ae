import * as assert from 'node:assert/strict';
import { cleanupTempDirs } from '../helpers/tmp';
import { pathAttackDrill } from './path-attack';

describe('drill: path attacks on import and export', function () {
  this.timeout(600_000);
  after(cleanupTempDirs);

  it(`refuses every way out of the allowed directory (${process.env.SNAPSYNC_DRILL_PATH_RACES ?? 40} race rounds): 0 files outside touched, agent up`, async () => {
    const r = await pathAttackDrill(Number(process.env.SNAPSYNC_DRILL_PATH_RACES ?? 40));
    assert.deepEqual(r.wrong, [], JSON.stringify(r));
    assert.ok(r.attempts > 150, `attempts: ${r.attempts}`);
    assert.deepEqual(
      [r.held, r.raceHeld, r.outsideTouched, r.leftovers, r.agentUp],
      [r.attempts, r.raceAttempts, 0, 0, true],
      JSON.stringify(r),
    );
    assert.ok((r.outcomes.OK ?? 0) > 0, 'some race requests got through to the real files');
  });
});
