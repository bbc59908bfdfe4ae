/**
 * dirty-pages.ts: when the event loop may write into the page cache. The
 * kernel throttles writers past halfway between its background and foreground
 * dirty limits; the agent writes on the event loop only below half of that.
 */
import * as assert from 'node:assert/strict';
import {
  type DirtyInputs,
  DirtyPages,
  dirtyHeadroom,
  readDirtyInputs,
} from '../../agent/engine/store/dirty-pages';

const GiB = 1024 ** 3;
const host = (over: Partial<DirtyInputs> = {}): DirtyInputs => ({
  dirty: 0,
  writeback: 0,
  available: 20 * GiB,
  ratio: 20,
  backgroundRatio: 10,
  bytes: 0,
  backgroundBytes: 0,
  ...over,
});

describe('dirty pages: may the event loop write?', () => {
  it('ratios: headroom is half of freerun (halfway between 10% and 20% of available memory), less dirty and writeback', () => {
    // freerun = (4 GiB + 2 GiB) / 2 = 3 GiB; half of it 1.5 GiB.
    assert.equal(dirtyHeadroom(host()), 1.5 * GiB);
    assert.equal(dirtyHeadroom(host({ dirty: GiB, writeback: 0.25 * GiB })), 0.25 * GiB);
    assert.ok(dirtyHeadroom(host({ dirty: GiB, writeback: GiB })) < 0, 'past half of freerun: not low');
  });

  it('vm.dirty_bytes / dirty_background_bytes win over the ratios when set', () => {
    const small = host({ bytes: 400 * 1024 ** 2, backgroundBytes: 200 * 1024 ** 2 });
    assert.equal(dirtyHeadroom(small), 150 * 1024 ** 2);
    assert.ok(dirtyHeadroom({ ...small, dirty: 160 * 1024 ** 2 }) < 0);
  });

  it('reads this host, and says "not low" when /proc cannot be read', () => {
    const inputs = readDirtyInputs();
    assert.ok(inputs.available > 0 && inputs.ratio + inputs.bytes > 0, JSON.stringify(inputs));
    const failing = new DirtyPages(() => {
      throw new Error('no /proc');
    });
    assert.equal(failing.low, false);
    assert.equal(new DirtyPages(() => host()).low, true);
    assert.equal(new DirtyPages(() => host({ dirty: 5 * GiB })).low, false);
  });
});
