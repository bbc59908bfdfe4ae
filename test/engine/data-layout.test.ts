import * as assert from 'node:assert/strict';
import { DataLayout, dataFilePaths, sliceParts } from '../../agent/engine/store/data-layout';

const BS = 4096;

describe('data layout: blocks striped over data files', () => {
  it('puts block p in file (p - 1) mod n at block (p - 1) div n; one file is the format-2 layout', () => {
    const four = new DataLayout(4, BS);
    assert.deepEqual(four.locate(1), { file: 0, position: 0 });
    assert.deepEqual(four.locate(4), { file: 3, position: 0 });
    assert.deepEqual(four.locate(5, 10), { file: 0, position: BS + 10 });
    assert.deepEqual(four.locate(4_000_000_001), { file: 0, position: 1_000_000_000 * BS });
    assert.deepEqual(new DataLayout(1, BS).locate(7, 3), { file: 0, position: 6 * BS + 3 });
  });

  it('cuts a request at block edges into ranges that cover it once, in order, each inside one block of one file', () => {
    const layout = new DataLayout(3, BS);
    for (const [block, offset, length] of [
      [1, 0, 1],
      [2, BS - 1, 2],
      [5, 100, 7 * BS],
      [9, 2 * BS + 5, BS],
    ] as const) {
      const segments = layout.segments(block, offset, length);
      let at = 0;
      for (const s of segments) {
        assert.equal(s.at, at, 'back to back in the request');
        const byte = (block - 1) * BS + offset + s.at; // the byte's place in one long device
        const p = Math.floor(byte / BS) + 1;
        assert.deepEqual({ file: s.file, position: s.position }, layout.locate(p, byte % BS));
        assert.ok((s.position % BS) + s.length <= BS, 'inside one block');
        at += s.length;
      }
      assert.equal(at, length);
    }
    assert.deepEqual(new DataLayout(1, BS).segments(3, 5, 3 * BS), [
      { file: 0, position: 2 * BS + 5, at: 0, length: 3 * BS },
    ]);
  });

  it('groups a run per file: 8 blocks over 4 files are 2 contiguous blocks in each', () => {
    const shares = new DataLayout(4, BS).shares(5, 0, 8 * BS);
    assert.deepEqual(
      shares.map((s) => [s.file, s.position, s.length, s.segments.map((g) => g.at)]),
      [
        [0, BS, 2 * BS, [0, 4 * BS]],
        [1, BS, 2 * BS, [BS, 5 * BS]],
        [2, BS, 2 * BS, [2 * BS, 6 * BS]],
        [3, BS, 2 * BS, [3 * BS, 7 * BS]],
      ],
    );
  });

  it('names the files data, data.1, ... and refuses 0 or more than 64 of them', () => {
    assert.deepEqual(dataFilePaths('/p/data', 3), ['/p/data', '/p/data.1', '/p/data.2']);
    for (const n of [0, 65, 2.5]) assert.throws(() => new DataLayout(n, BS), RangeError);
  });

  it('slices byte ranges out of a write given in several buffers, as views', () => {
    const parts = [Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ij')];
    const text = (from: number, length: number) => Buffer.concat(sliceParts(parts, from, length)).toString();
    assert.equal(text(0, 10), 'abcdefghij');
    assert.equal(text(2, 4), 'cdef');
    assert.equal(text(8, 2), 'ij');
    assert.equal(text(3, 5), 'defgh');
    const view = sliceParts(parts, 4, 1)[0]!;
    view[0] = 0x45;
    assert.equal(parts[1]!.toString(), 'dEfgh', 'a view, not a copy');
  });
});
