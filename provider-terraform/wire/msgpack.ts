/**
 * The msgpack subset cty values use (nil, bool, int, float64, str, array, map,
 * bin read as str, and extensions 0 and 12 = unknown), written here rather than taken
 * from a general library: general libraries either reserve extension 0 or
 * register extensions process-wide, and this codec must not touch anyone else's.
 */

/** Decoded extension 0: cty's unknown value (its payload, refinements, is not needed). */
export const UNKNOWN_EXTENSION: unique symbol = Symbol('msgpack extension 0');

export type Packable =
  | null
  | boolean
  | number
  | string
  | typeof UNKNOWN_EXTENSION
  | Packable[]
  | { [key: string]: Packable };

export class MsgpackError extends Error {
  override name = 'MsgpackError';
}

const bytes = (...b: number[]) => Buffer.from(b);

function withUint(lead: number, n: number, size: 2 | 4): Buffer {
  const b = Buffer.alloc(1 + size);
  b[0] = lead;
  if (size === 2) b.writeUInt16BE(n, 1);
  else b.writeUInt32BE(n, 1);
  return b;
}

function numberBytes(v: number): Buffer {
  if (Number.isSafeInteger(v)) {
    if (v >= 0 && v < 128) return bytes(v);
    if (v < 0 && v >= -32) return bytes(0x100 + v);
    const b = Buffer.alloc(9);
    b[0] = 0xd3;
    b.writeBigInt64BE(BigInt(v), 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0xcb;
  b.writeDoubleBE(v, 1);
  return b;
}

function stringBytes(v: string): Buffer {
  const s = Buffer.from(v, 'utf8');
  const n = s.length;
  const head =
    n < 32
      ? bytes(0xa0 | n)
      : n < 0x100
        ? bytes(0xd9, n)
        : n < 0x10000
          ? withUint(0xda, n, 2)
          : withUint(0xdb, n, 4);
  return Buffer.concat([head, s]);
}

function lengthHeader(n: number, fix: number, lead16: number): Buffer {
  return n < 16 ? bytes(fix | n) : n < 0x10000 ? withUint(lead16, n, 2) : withUint(lead16 + 1, n, 4);
}

export function pack(value: Packable): Buffer {
  const parts: Buffer[] = [];
  const write = (v: Packable): void => {
    if (v === null) parts.push(bytes(0xc0));
    else if (v === UNKNOWN_EXTENSION)
      parts.push(bytes(0xd4, 0x00, 0x00)); // fixext1, type 0: what cty writes
    else if (typeof v === 'boolean') parts.push(bytes(v ? 0xc3 : 0xc2));
    else if (typeof v === 'number') parts.push(numberBytes(v));
    else if (typeof v === 'string') parts.push(stringBytes(v));
    else if (Array.isArray(v)) {
      parts.push(lengthHeader(v.length, 0x90, 0xdc));
      for (const item of v) write(item);
    } else {
      const entries = Object.entries(v);
      parts.push(lengthHeader(entries.length, 0x80, 0xde));
      for (const [k, item] of entries) {
        parts.push(stringBytes(k));
        write(item);
      }
    }
  };
  write(value);
  return Buffer.concat(parts);
}

export function unpack(bytes: Uint8Array): Packable {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  /** Claims the next n bytes and returns where they start. */
  const take = (n: number): number => {
    if (at + n > buf.length) throw new MsgpackError(`truncated msgpack at byte ${at}`);
    at += n;
    return at - n;
  };
  const u8 = () => buf[take(1)]!;
  const u16 = () => buf.readUInt16BE(take(2));
  const u32 = () => buf.readUInt32BE(take(4));
  const str = (n: number) => {
    const from = take(n);
    return buf.toString('utf8', from, from + n);
  };
  const array = (n: number) => Array.from({ length: n }, () => read());
  const map = (n: number) => {
    const out: Record<string, Packable> = {};
    for (let i = 0; i < n; i++) {
      const key = read();
      if (typeof key !== 'string') throw new MsgpackError(`map key at byte ${at} is not a string`);
      out[key] = read();
    }
    return out;
  };
  const extension = (n: number): typeof UNKNOWN_EXTENSION => {
    const type = buf.readInt8(take(1));
    take(n);
    // 0: unknown; 12: unknown with refinements (cty 1.13+; OpenTofu sends them, e.g. for each.key).
    if (type !== 0 && type !== 12) throw new MsgpackError(`unexpected msgpack extension type ${type}`);
    return UNKNOWN_EXTENSION;
  };
  const read = (): Packable => {
    const t = u8();
    if (t < 0x80) return t;
    if (t >= 0xe0) return t - 0x100;
    if ((t & 0xf0) === 0x80) return map(t & 0x0f);
    if ((t & 0xf0) === 0x90) return array(t & 0x0f);
    if ((t & 0xe0) === 0xa0) return str(t & 0x1f);
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return str(u8());
      case 0xc5:
        return str(u16());
      case 0xc6:
        return str(u32());
      case 0xc7:
        return extension(u8());
      case 0xc8:
        return extension(u16());
      case 0xc9:
        return extension(u32());
      case 0xca:
        return buf.readFloatBE(take(4));
      case 0xcb:
        return buf.readDoubleBE(take(8));
      case 0xcc:
        return u8();
      case 0xcd:
        return u16();
      case 0xce:
        return u32();
      case 0xcf:
        return Number(buf.readBigUInt64BE(take(8)));
      case 0xd0:
        return buf.readInt8(take(1));
      case 0xd1:
        return buf.readInt16BE(take(2));
      case 0xd2:
        return buf.readInt32BE(take(4));
      case 0xd3:
        return Number(buf.readBigInt64BE(take(8)));
      case 0xd4:
        return extension(1);
      case 0xd5:
        return extension(2);
      case 0xd6:
        return extension(4);
      case 0xd7:
        return extension(8);
      case 0xd8:
        return extension(16);
      case 0xd9:
        return str(u8());
      case 0xda:
        return str(u16());
      case 0xdb:
        return str(u32());
      case 0xdc:
        return array(u16());
      case 0xdd:
        return array(u32());
      case 0xde:
        return map(u16());
      case 0xdf:
        return map(u32());
      default:
        throw new MsgpackError(`unsupported msgpack type 0x${t.toString(16)} at byte ${at - 1}`);
    }
  };
  const value = read();
  if (at !== buf.length) throw new MsgpackError(`${buf.length - at} bytes after the msgpack value`);
  return value;
}
