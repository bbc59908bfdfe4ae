import * as assert from 'node:assert/strict';
import { cleanupTempDirs } from '../helpers/tmp';
import { type HostileDrillResult, hostileDrill } from './hostile';

describe('drill: hostile input at the agent and the NBD port', function () {
  this.timeout(600_000);
  const seed = Number(process.env.SNAPSYNC_DRILL_SEED ?? Date.now() % 2 ** 31);
  let result: HostileDrillResult;
  before(async () => {
    result = await hostileDrill(Number(process.env.SNAPSYNC_DRILL_FRAMES ?? 400), seed);
  });
  after(cleanupTempDirs);

  it('refuses every malformed frame, stays up, and changes nothing', () => {
    assert.equal(result.accepted, 0, `seed ${seed}`);
    assert.deepEqual(result.unanswered, [], `seed ${seed}`);
    assert.equal(
      result.refused,
      result.tried,
      `seed ${seed}: every frame got an error or a close (${JSON.stringify(result)})`,
    );
    assert.ok(result.agentUp && result.stateUnchanged, `seed ${seed}: ${JSON.stringify(result)}`);
  });

  it('answers every hostile NBD command with the right error or a drop, stays up, and changes nothing', () => {
    assert.deepEqual(result.nbdWrong, [], `seed ${seed}`);
    assert.ok(result.nbdCommands >= 100, `seed ${seed}: ${result.nbdCommands} NBD inputs tried`);
    assert.equal(result.nbdRefused, result.nbdCommands, `seed ${seed}`);
    assert.ok(result.nbdServerUp && result.nbdUnchanged, `seed ${seed}: ${JSON.stringify(result)}`);
  });
});
