import * as assert from 'node:assert/strict';
import { cleanupTempDirs } from '../helpers/tmp';
import { hostileDrill } from './hostile';

describe('drill: hostile input at the agent and the NBD port', function () {
  this.timeout(600_000);
  after(cleanupTempDirs);

  it('refuses every malformed frame, stays up, and changes nothing', async () => {
    const seed = Number(process.env.SNAPSYNC_DRILL_SEED ?? Date.now() % 2 ** 31);
    const result = await hostileDrill(Number(process.env.SNAPSYNC_DRILL_FRAMES ?? 400), seed);
    assert.equal(result.accepted, 0, `seed ${seed}`);
    assert.deepEqual(result.unanswered, [], `seed ${seed}`);
    assert.equal(
      result.refused,
      result.tried,
      `seed ${seed}: every frame got an error or a close (${JSON.stringify(result)})`,
    );
    assert.ok(
      result.agentUp && result.stateUnchanged && result.nbdServerUp,
      `seed ${seed}: ${JSON.stringify(result)}`,
    );
  });
});
