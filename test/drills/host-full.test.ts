import * as assert from 'node:assert/strict';
import { cleanupTempDirs } from '../helpers/tmp';
import { hostFullDrill } from './host-full';

describe('drill: the host filesystem under the pool fills up', function () {
  this.timeout(600_000);
  after(cleanupTempDirs);

  it('answers OUT_OF_SPACE, keeps snapshotting, checking and deleting, writes again after a delete, stops with exit 0 and restarts', async () => {
    const r = await hostFullDrill(Number(process.env.SNAPSYNC_DRILL_HOST_FULL_ROUNDS ?? 2));
    assert.deepEqual(r.wrong, [], JSON.stringify(r));
    assert.equal(r.writesRefused, 2 * r.rounds + 1, JSON.stringify(r));
    assert.equal(r.metadataOpsOk, r.metadataOps, JSON.stringify(r));
    for (const [i, filled] of r.filledMiB.entries()) {
      assert.ok(filled >= 8, `round ${i}: ${filled} MiB written before the host was full`);
      assert.ok(
        r.rewrittenMiB[i]! >= filled - 1,
        `round ${i}: ${r.rewrittenMiB[i]} MiB rewritten after the delete`,
      );
    }
    assert.deepEqual(r.sigtermExits, [0, 0]);
    assert.equal(r.fsckClean, true);
  });
});
