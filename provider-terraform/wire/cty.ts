/**
 * Values as the plugin protocol carries them: cty values in msgpack
 * (DynamicValue.msgpack), typed by the schema. An unknown value ("known after
 * apply") is msgpack extension 0; objects carry every attribute of their type
 * (null when unset), so encoding needs the type.
 */
import { type Packable, pack, UNKNOWN_EXTENSION, unpack } from './msgpack';

export type CtyType =
  | 'string'
  | 'number'
  | 'bool'
  | ['list' | 'set' | 'map', CtyType]
  | ['object', { [attribute: string]: CtyType }];

/** The one unknown value (cty refinements, when a host sends them, are dropped: the provider never needs them). */
export class Unknown {
  static readonly value = new Unknown();
  private constructor() {}
  toJSON(): string {
    return '(known after apply)';
  }
}
export const UNKNOWN = Unknown.value;

export type CtyValue = null | Unknown | string | number | boolean | CtyValue[] | { [key: string]: CtyValue };

export class WireFormatError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path || 'value'}: ${message}`);
    this.name = 'WireFormatError';
  }
}

/** Brings a value into the exact shape of its type: every object attribute present, numbers as numbers. */
export function conform(value: unknown, type: CtyType, path = ''): CtyValue {
  if (value === null || value === undefined) return null;
  if (value instanceof Unknown || value === UNKNOWN_EXTENSION) return UNKNOWN;
  if (type === 'string') {
    if (typeof value !== 'string') throw new WireFormatError(path, `expected a string, got ${typeof value}`);
    return value;
  }
  if (type === 'number') {
    // cty sends numbers too large for an int64 or float64 as decimal strings.
    const n = typeof value === 'string' ? Number(value) : value;
    if (typeof n !== 'number' || Number.isNaN(n)) throw new WireFormatError(path, 'expected a number');
    return n;
  }
  if (type === 'bool') {
    if (typeof value !== 'boolean') throw new WireFormatError(path, 'expected a bool');
    return value;
  }
  const [kind, inner] = type;
  if (kind === 'list' || kind === 'set') {
    if (!Array.isArray(value)) throw new WireFormatError(path, `expected a ${kind}`);
    return value.map((v, i) => conform(v, inner as CtyType, `${path}[${i}]`));
  }
  if (typeof value !== 'object' || Array.isArray(value))
    throw new WireFormatError(path, `expected a ${kind}`);
  const record = value as Record<string, unknown>;
  if (kind === 'map') {
    return Object.fromEntries(
      Object.entries(record).map(([k, v]) => [
        k,
        conform(v, inner as CtyType, `${path}[${JSON.stringify(k)}]`),
      ]),
    );
  }
  const attributes = inner as Record<string, CtyType>;
  return Object.fromEntries(
    Object.entries(attributes).map(([k, t]) => [k, conform(record[k], t, path ? `${path}.${k}` : k)]),
  );
}

export function encode(value: unknown, type: CtyType): Buffer {
  return pack(toPackable(conform(value, type)));
}

/** An empty DynamicValue is a null value (the host sends none, e.g. no prior state on create). */
export function decode(bytes: Uint8Array | null | undefined, type: CtyType): CtyValue {
  if (!bytes || bytes.length === 0) return null;
  return conform(unpack(bytes), type);
}

/** State from a state file (UpgradeResourceState's RawState.json) in the current type. */
export function fromJson(json: Uint8Array, type: CtyType): CtyValue {
  return conform(JSON.parse(Buffer.from(json).toString('utf8')), type);
}

export const isUnknown = (v: unknown): v is Unknown => v instanceof Unknown;

/** True when the value or anything inside it is unknown. */
export function containsUnknown(v: unknown): boolean {
  if (v instanceof Unknown) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v && typeof v === 'object') return Object.values(v).some(containsUnknown);
  return false;
}

function toPackable(v: CtyValue): Packable {
  if (v instanceof Unknown) return UNKNOWN_EXTENSION;
  if (Array.isArray(v)) return v.map(toPackable);
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toPackable(x)]));
  return v;
}
