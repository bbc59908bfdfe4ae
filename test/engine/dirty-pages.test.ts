/**
 * dirty-pages.ts: when the event loop may write into the page cache. The
 * kernel throttles writers past "freerun", halfway between its background and
 * foreground dirty limits; the agent writes on the event loop only below
 * that, less what a fast writer dirties between two samples, and, in a
 * memory-limited cgroup v2 (whose limits the kernel does not publish), below
 * half of the cgroup's estimated freerun.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type DirtyInputs,
  DirtyPages,
  dirtyHeadroom,
  readDirtyInputs,
} from '../../agent/engine/store/dirty-pages';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const host = (over: Partial<DirtyInputs> = {}): DirtyInputs => ({
  dirty: 0,
  writeback: 0,
  threshold: 4 * GiB,
  backgroundThreshold: 2 * GiB,
  cgroupLimit: null,
  cgroupDirty: 0,
  ratio: 20,
  backgroundRatio: 10,
  bytes: 0,
  backgroundBytes: 0,
  ...over,
});

describe('dirty pages: may the event loop write?', () => {
  after(cleanupTempDirs);

  it("the kernel's own limits: headroom is freerun less an eighth of it, less dirty and writeback", () => {
    // freerun = (4 GiB + 2 GiB) / 2 = 3 GiB; margin 384 MiB.
    assert.equal(dirtyHeadroom(host()), 3 * GiB - 384 * MiB);
    assert.equal(dirtyHeadroom(host({ dirty: GiB, writeback: GiB })), GiB - 384 * MiB);
    assert.ok(
      dirtyHeadroom(host({ dirty: 2 * GiB, writeback: 0.7 * GiB })) < 0,
      'within the margin of freerun: not low',
    );
  });

  it('small limits keep a margin of at least 256 MiB', () => {
    const small = host({ threshold: 400 * MiB, backgroundThreshold: 200 * MiB });
    assert.equal(dirtyHeadroom(small), 300 * MiB - 256 * MiB);
    assert.ok(dirtyHeadroom({ ...small, dirty: 50 * MiB }) < 0);
  });

  it("a cgroup v2 memory limit: the cgroup's dirty pages stay below half of its estimated freerun", () => {
    // 2 GiB limit: 20% and 10% of it, freerun 307 MiB, half of it about 154 MiB.
    const limited = host({ cgroupLimit: 2 * GiB });
    assert.ok(Math.abs(dirtyHeadroom(limited) - 0.075 * 2 * GiB) < 1);
    assert.ok(dirtyHeadroom({ ...limited, cgroupDirty: 160 * MiB }) < 0, "past half of the cgroup's freerun");
    // vm.dirty_bytes set: the cgroup's limits are those bytes.
    assert.equal(
      dirtyHeadroom(host({ cgroupLimit: 2 * GiB, bytes: 400 * MiB, backgroundBytes: 200 * MiB })),
      150 * MiB,
    );
  });

  it("a limit on an ancestor cgroup counts, with that cgroup's dirty pages", () => {
    // slice (2 GiB) / service (1 GiB) / agent (no limit); the root has no memory.max.
    const root = tempDir();
    const slice = path.join(root, 'slice');
    const service = path.join(slice, 'service');
    const agent = path.join(service, 'agent');
    fs.mkdirSync(agent, { recursive: true });
    const stat = (dirty: number) => `anon 0\nfile_dirty ${dirty}\nfile_writeback 4096\n`;
    fs.writeFileSync(path.join(slice, 'memory.max'), `${2 * GiB}\n`);
    fs.writeFileSync(path.join(slice, 'memory.stat'), stat(8192));
    fs.writeFileSync(path.join(service, 'memory.max'), `${GiB}\n`);
    fs.writeFileSync(path.join(service, 'memory.stat'), stat(4096));
    fs.writeFileSync(path.join(agent, 'memory.max'), 'max\n');
    fs.writeFileSync(path.join(agent, 'memory.stat'), stat(0));
    const inputs = readDirtyInputs(agent);
    assert.equal(inputs.cgroupLimit, GiB, 'the least limit on the way up');
    assert.equal(inputs.cgroupDirty, 8192, "the service's dirty and writeback bytes");
    fs.writeFileSync(path.join(service, 'memory.max'), 'max\n');
    fs.writeFileSync(path.join(slice, 'memory.max'), 'max\n');
    assert.equal(readDirtyInputs(agent).cgroupLimit, null, 'no limit anywhere');
  });

  it('reads this host, and says "not low" when /proc cannot be read', () => {
    const inputs = readDirtyInputs();
    assert.ok(
      inputs.threshold > inputs.backgroundThreshold && inputs.backgroundThreshold > 0,
      JSON.stringify(inputs),
    );
    assert.ok(inputs.threshold % 4096 === 0, 'whole pages');
    const failing = new DirtyPages(() => {
      throw new Error('no /proc');
    });
    assert.equal(failing.low, false);
    assert.equal(new DirtyPages(() => host()).low, true);
    assert.equal(new DirtyPages(() => host({ dirty: 5 * GiB })).low, false);
  });
});
