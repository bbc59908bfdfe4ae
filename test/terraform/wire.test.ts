/**
 * The values of the plugin protocol: msgpack round trips of every schema
 * type, unknowns (msgpack extension 0, as cty writes them) at any depth, and
 * the exact bytes of the forms cty reads and writes.
 */
import * as assert from 'node:assert/strict';
import { providerSchema } from '../../provider-terraform/config';
import { DATA_SOURCES } from '../../provider-terraform/data-sources/data-sources';
import { containerBinding } from '../../provider-terraform/resources/container';
import { snapshotBinding } from '../../provider-terraform/resources/snapshot';
import { syncFromSnapshotBinding } from '../../provider-terraform/resources/sync-from-snapshot';
import { objectType } from '../../provider-terraform/schema';
import {
  type CtyType,
  decode,
  encode,
  fromJson,
  UNKNOWN,
  WireFormatError,
} from '../../provider-terraform/wire/cty';
import { MsgpackError, pack, UNKNOWN_EXTENSION, unpack } from '../../provider-terraform/wire/msgpack';

const roundTrip = (value: unknown, type: CtyType) => decode(encode(value, type), type);

describe('terraform wire format (msgpack DynamicValues)', () => {
  it('round-trips every primitive type, null and unknown', () => {
    for (const [value, type] of [
      ['', 'string'],
      ['héllo ✓', 'string'],
      ['x'.repeat(40), 'string'],
      ['y'.repeat(300), 'string'],
      ['z'.repeat(70_000), 'string'],
      [0, 'number'],
      [127, 'number'],
      [128, 'number'],
      [-1, 'number'],
      [-33, 'number'],
      [1.5, 'number'],
      [2 ** 40, 'number'],
      [-(2 ** 50), 'number'],
      [true, 'bool'],
      [false, 'bool'],
    ] as Array<[unknown, CtyType]>) {
      assert.deepEqual(roundTrip(value, type), value, `${type} ${String(value).slice(0, 20)}`);
      assert.equal(roundTrip(null, type), null);
      assert.equal(roundTrip(UNKNOWN, type), UNKNOWN);
    }
  });

  it('round-trips lists, sets, maps and objects, with unknowns inside them', () => {
    const type: CtyType = [
      'object',
      {
        list: ['list', 'string'],
        set: ['set', 'number'],
        map: ['map', 'string'],
        nested: ['map', ['object', { token: 'string', on: 'bool' }]],
        missing: 'string',
      },
    ];
    const big = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, `v${i}`]));
    const value = {
      list: ['a', UNKNOWN, 'c'],
      set: Array.from({ length: 17 }, (_, i) => i * 1.25),
      map: { ...big, later: UNKNOWN },
      nested: { 'ws://a': { token: 's3cret', on: UNKNOWN } },
    };
    assert.deepEqual(roundTrip(value, type), { ...value, missing: null });
    assert.deepEqual(roundTrip(UNKNOWN, type), UNKNOWN);
  });

  it('writes an unknown as cty does (fixext1 type 0) and reads every extension-0 form cty writes', () => {
    assert.deepEqual(encode(UNKNOWN, 'string'), Buffer.from([0xd4, 0x00, 0x00]));
    // ext8 of length 0, and a refined unknown (fixext with a msgpack map of refinements): both unknown.
    assert.equal(decode(Buffer.from([0xc7, 0x00, 0x00]), 'string'), UNKNOWN);
    assert.equal(decode(Buffer.from([0xc7, 0x03, 0x00, 0x81, 0x01, 0xc2]), 'string'), UNKNOWN);
    assert.throws(() => unpack(Buffer.from([0xd4, 0x05, 0x00])), MsgpackError);
  });

  it('reads a refined unknown as cty writes it (extension 12, refinements map): unknown', () => {
    // tofu sends these for values such as "${each.key}-config" while validating a for_each resource:
    // ext8, length 3, type 12, {1: false} (not null).
    assert.equal(decode(Buffer.from([0xc7, 0x03, 0x0c, 0x81, 0x01, 0xc2]), 'string'), UNKNOWN);
    assert.equal(decode(Buffer.from([0xd4, 0x0c, 0x00]), 'string'), UNKNOWN);
  });

  it('encodes an object with every attribute of its type, in msgpack cty reads', () => {
    const bytes = encode({ a: 'x' }, ['object', { a: 'string', b: 'number' }]);
    // fixmap(2) "a" "x" "b" nil
    assert.deepEqual(bytes, Buffer.from([0x82, 0xa1, 0x61, 0xa1, 0x78, 0xa1, 0x62, 0xc0]));
  });

  it('reads numbers in every msgpack width cty may use, and large numbers sent as strings', () => {
    const cases: Array<[number[], number]> = [
      [[0xcc, 0xff], 255],
      [[0xcd, 0x01, 0x00], 256],
      [[0xce, 0x00, 0x01, 0x00, 0x00], 65536],
      [[0xcf, 0, 0, 0, 1, 0, 0, 0, 0], 2 ** 32],
      [[0xd0, 0x80], -128],
      [[0xd1, 0xff, 0x00], -256],
      [[0xd2, 0xff, 0xff, 0x00, 0x00], -65536],
      [[0xca, 0x3f, 0xc0, 0x00, 0x00], 1.5],
    ];
    for (const [b, n] of cases) assert.equal(decode(Buffer.from(b), 'number'), n);
    assert.equal(decode(pack('1099511627776'), 'number'), 1099511627776);
  });

  it('rejects a value of the wrong type with the attribute path', () => {
    assert.throws(
      () => decode(pack({ name: 5 }), ['object', { name: 'string' }]),
      (err: unknown) => err instanceof WireFormatError && err.path === 'name',
    );
    assert.throws(() => unpack(Buffer.from([0x92, 0x01])), MsgpackError); // truncated array
    assert.throws(() => unpack(Buffer.from([0x01, 0x02])), MsgpackError); // trailing bytes
  });

  it('round-trips the provider, resource and data source schemas, fully unknown and fully null', () => {
    for (const block of [
      providerSchema,
      containerBinding.schema,
      snapshotBinding.schema,
      syncFromSnapshotBinding.schema,
      ...DATA_SOURCES.map((d) => d.schema),
    ]) {
      const type = objectType(block);
      const attributes = Object.keys((type as ['object', Record<string, CtyType>])[1]);
      const unknowns = Object.fromEntries(attributes.map((a) => [a, UNKNOWN]));
      assert.deepEqual(roundTrip(unknowns, type), unknowns);
      assert.deepEqual(roundTrip({}, type), Object.fromEntries(attributes.map((a) => [a, null])));
    }
  });

  it('reads a state file JSON (UpgradeResourceState) into the current type', () => {
    const type = objectType(containerBinding.schema);
    const state = fromJson(Buffer.from(JSON.stringify({ name: 'db', type: 'vdisk', size: 1048576 })), type);
    assert.equal((state as Record<string, unknown>).size, 1048576);
    assert.equal((state as Record<string, unknown>).uuid, null);
    assert.equal(unpack(pack(UNKNOWN_EXTENSION)), UNKNOWN_EXTENSION);
  });
});
