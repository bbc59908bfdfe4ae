/**
 * The space map's release: a run from a damaged map record (a block never handed out) is never
 * made free, or the allocator would hand out blocks past the pool's end.
 */
import * as assert from 'node:assert/strict';
import { SpaceMap } from '../../agent/engine/space-map';

describe('space map: releasing blocks', () => {
  it('frees what was handed out, and nothing at or past the high-water mark or below block 1', () => {
    const space = new SpaceMap(1, 100, []);
    assert.deepEqual(space.allocate(10), [{ start: 1, count: 10 }]);
    space
      .planRelease([
        { start: 3, count: 2 },
        { start: 9, count: 5 }, // 11..13 were never handed out
        { start: 1_073_742_287, count: 1 }, // a damaged record's block
        { start: 0, count: 1 },
      ])
      .apply();
    assert.equal(space.usedBlocks, 6, '3, 4, 9 and 10 freed; nothing else');
    // Everything the allocator hands out is inside the pool, never the damaged block.
    const runs = space.allocate(space.freeBlocks);
    assert.ok(
      runs.every((r) => r.start >= 1 && r.start + r.count - 1 <= 100),
      JSON.stringify(runs),
    );
    assert.equal(space.freeBlocks, 0);
  });
});
