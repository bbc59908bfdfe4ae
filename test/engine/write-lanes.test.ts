/**
 * write-lanes.ts: at most N threadpool writes of the data file at once, the
 * rest in arrival order, a lane freed whether the write succeeds or fails;
 * and through BlockDevice, many concurrent writes of one file all land.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlockDevice } from '../../agent/engine/store/block-device';
import { WriteLanes } from '../../agent/engine/store/write-lanes';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

function deferred() {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('write lanes', () => {
  after(cleanupTempDirs);

  it('runs at most two at once, the others in arrival order, and a failed write frees its lane', async () => {
    const lanes = new WriteLanes(2);
    const gates = Array.from({ length: 5 }, deferred);
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const runs = gates.map((gate, i) =>
      lanes
        .run(async () => {
          started.push(i);
          running++;
          most = Math.max(most, running);
          try {
            await gate.promise;
          } finally {
            running--;
          }
        })
        .catch(() => 'failed'),
    );
    await turn();
    assert.deepEqual(started, [0, 1]);
    assert.equal(lanes.queued, 3);
    gates[1]!.reject(new Error('EIO'));
    await turn();
    assert.deepEqual(started, [0, 1, 2], 'the failed write gave its lane to the first waiting');
    gates[0]!.resolve();
    gates[2]!.resolve();
    await turn();
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    gates[3]!.resolve();
    gates[4]!.resolve();
    assert.deepEqual(await Promise.all(runs), [undefined, 'failed', undefined, undefined, undefined]);
    assert.equal(most, 2);
    assert.equal(lanes.queued, 0);
  });

  it('many concurrent writes of one data file all land, byte for byte', async () => {
    const file = path.join(tempDir(), 'data');
    fs.writeFileSync(file, '');
    const device = new BlockDevice(file, 4096);
    try {
      const blocks = Array.from({ length: 32 }, (_, i) => Buffer.alloc(4096, i + 1));
      await Promise.all(
        blocks.map((b, i) => device.writeAsync(i + 1, 0, [b.subarray(0, 2048), b.subarray(2048)])),
      );
      const back = Buffer.alloc(4096);
      for (let i = 0; i < 32; i++) {
        device.read(i + 1, 0, 4096, back, 0);
        assert.ok(back.equals(blocks[i]!), `block ${i + 1}`);
      }
    } finally {
      device.close();
    }
  });
});
