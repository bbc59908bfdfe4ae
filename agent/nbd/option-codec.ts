/**
 * Handshake-phase wire formats: the greeting, option replies, and the
 * payloads of the options that carry structure (INFO/GO, *_META_CONTEXT).
 * Parsers return null for a malformed payload (answered NBD_REP_ERR_INVALID).
 */
import {
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  INFO,
  MAX_STRING,
  NBDMAGIC,
  OPTION_REPLY_MAGIC,
} from './constants';

export function greeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  return b;
}

export function optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.allocUnsafe(20 + data.length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, 20);
  return b;
}

/** Error replies carry a human-readable message. */
export function optionError(option: number, type: number, message: string): Buffer {
  return optionReply(option, type, Buffer.from(message, 'utf8').subarray(0, MAX_STRING));
}

export function serverEntry(name: string, description: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const d = Buffer.from(description, 'utf8');
  const b = Buffer.allocUnsafe(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return b;
}

export function infoExport(size: number, flags: number): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt16BE(INFO.EXPORT, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

export function infoString(type: number, text: string): Buffer {
  const t = Buffer.from(text, 'utf8').subarray(0, MAX_STRING);
  const b = Buffer.allocUnsafe(2 + t.length);
  b.writeUInt16BE(type, 0);
  t.copy(b, 2);
  return b;
}

export function infoBlockSize(minimum: number, preferred: number, maximum: number): Buffer {
  const b = Buffer.allocUnsafe(14);
  b.writeUInt16BE(INFO.BLOCK_SIZE, 0);
  b.writeUInt32BE(minimum, 2);
  b.writeUInt32BE(preferred, 6);
  b.writeUInt32BE(maximum, 10);
  return b;
}

/** Reply to EXPORT_NAME: size, flags, and 124 zero bytes unless the client opted out. */
export function exportNameReply(size: number, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(BigInt(size), 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

export function metaContextReply(id: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.allocUnsafe(4 + n.length);
  b.writeUInt32BE(id, 0);
  n.copy(b, 4);
  return b;
}

/** A UTF-8 string that the spec allows: no NUL, at most 4096 bytes, valid encoding. */
function decodeString(bytes: Buffer): string | null {
  if (bytes.length > MAX_STRING || bytes.includes(0)) return null;
  const text = bytes.toString('utf8');
  return Buffer.byteLength(text, 'utf8') === bytes.length && !text.includes('\ufffd') ? text : null;
}

export function parseName(data: Buffer): string | null {
  return decodeString(data);
}

export interface InfoRequest {
  name: string;
  requests: number[];
}

/** NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 count, u16 × count. */
export function parseInfoRequest(data: Buffer): InfoRequest | null {
  if (data.length < 6) return null;
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 6) return null;
  const name = decodeString(data.subarray(4, 4 + nameLength));
  if (name === null) return null;
  const count = data.readUInt16BE(4 + nameLength);
  if (data.length !== 6 + nameLength + 2 * count) return null;
  const requests: number[] = [];
  for (let i = 0; i < count; i++) requests.push(data.readUInt16BE(6 + nameLength + 2 * i));
  return { name, requests };
}

export interface MetaContextRequest {
  name: string;
  queries: string[];
}

/** *_META_CONTEXT: u32 name length, name, u32 count, (u32 length, query) × count. */
export function parseMetaContextRequest(data: Buffer): MetaContextRequest | null {
  let at = 0;
  const u32 = (): number | null => {
    if (at + 4 > data.length) return null;
    const v = data.readUInt32BE(at);
    at += 4;
    return v;
  };
  const str = (): string | null => {
    const length = u32();
    if (length === null || length > data.length - at) return null;
    const s = decodeString(data.subarray(at, at + length));
    at += length;
    return s;
  };
  const name = str();
  if (name === null) return null;
  const count = u32();
  if (count === null || count > (data.length - at) / 4) return null;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    const q = str();
    if (q === null) return null;
    queries.push(q);
  }
  return at === data.length ? { name, queries } : null;
}
