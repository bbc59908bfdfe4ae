/**
 * Format 2's block-map record (store/group-record.ts): any set of entries of
 * a group encodes to one record (sparse below 64 entries, dense from 64) that
 * decodes and looks up to exactly those entries; a record of any other length
 * does not decode.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeGroup,
  encodeGroup,
  GROUP_BLOCKS,
  groupEntryCount,
  groupLookup,
  MAX_PHYSICAL_BLOCK,
} from '../../agent/engine/store/group-record';

const groups = fc
  .oneof(
    fc.uniqueArray(fc.integer({ min: 0, max: GROUP_BLOCKS - 1 }), { maxLength: 80 }),
    fc.uniqueArray(fc.integer({ min: 0, max: GROUP_BLOCKS - 1 }), { maxLength: GROUP_BLOCKS }),
  )
  .chain((offsets) =>
    fc.tuple(
      fc.constant(offsets),
      fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: MAX_PHYSICAL_BLOCK })), {
        minLength: offsets.length,
        maxLength: offsets.length,
      }),
    ),
  );

describe('format-2 map group records', () => {
  it('round-trip every set of entries, sparse and dense, and look each offset up', () => {
    fc.assert(
      fc.property(groups, ([offsets, physicals]) => {
        const slots = new Array<number>(GROUP_BLOCKS).fill(-1);
        offsets.forEach((offset, i) => {
          slots[offset] = physicals[i]!;
        });
        const record = encodeGroup(slots);
        if (offsets.length === 0) return record === undefined;
        assert.ok(record);
        const sparse = 6 * offsets.length;
        const dense = GROUP_BLOCKS / 8 + 4 * offsets.length;
        assert.equal(record.length, Math.min(sparse, dense), 'the smaller encoding');
        assert.equal(groupEntryCount(record), offsets.length);
        const expected = offsets.map((o) => [o, slots[o]!]).sort((a, b) => a[0]! - b[0]!);
        assert.deepEqual([...decodeGroup(record)], expected);
        for (let offset = 0; offset < GROUP_BLOCKS; offset++)
          assert.equal(groupLookup(record, offset), slots[offset]! < 0 ? undefined : slots[offset]);
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it('a record of another length, or with unordered sparse offsets, does not decode', () => {
    const sparse = encodeGroup(Object.assign(new Array<number>(GROUP_BLOCKS).fill(-1), { 3: 7, 9: 0 }))!;
    assert.equal(groupEntryCount(sparse), 2);
    assert.equal(groupEntryCount(Buffer.alloc(0)), -1);
    assert.equal(groupEntryCount(Buffer.concat([sparse, Buffer.alloc(1)])), -1);
    assert.equal(groupEntryCount(Buffer.concat([sparse.subarray(6), sparse.subarray(0, 6)])), -1);
    assert.equal(groupEntryCount(Buffer.from([0xff, 0xff, 0, 0, 0, 1])), -1, 'an offset past the group');
    const dense = encodeGroup(new Array<number>(GROUP_BLOCKS).fill(1))!;
    assert.equal(groupEntryCount(dense), GROUP_BLOCKS);
    assert.equal(groupEntryCount(dense.subarray(0, dense.length - 4)), -1);
  });
});
