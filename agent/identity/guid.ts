/**
 * GPT GUIDs. On disk the first three fields are little-endian and the last
 * two big-endian ("mixed-endian"), so the text form is not the byte order.
 */
import { INVALID_ARGUMENT } from '../engine/errors';

const GUID = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i;

export const isGuid = (text: string): boolean => GUID.test(text);

/** The 16 on-disk bytes as the upper-case text form sgdisk and fdisk print. */
export function guidToString(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw INVALID_ARGUMENT('a GUID is 16 bytes', { length: bytes.length });
  const hex = (from: number, to: number, reverse: boolean) => {
    const part = [...bytes.subarray(from, to)];
    if (reverse) part.reverse();
    return part.map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`.toUpperCase();
}

export function guidFromString(text: string): Buffer {
  const match = GUID.exec(text.trim());
  if (!match) throw INVALID_ARGUMENT(`not a GUID: ${text}`, { value: text });
  const le = (hex: string) => Buffer.from(hex, 'hex').reverse();
  return Buffer.concat([
    le(match[1]!),
    le(match[2]!),
    le(match[3]!),
    Buffer.from(match[4]! + match[5]!, 'hex'),
  ]);
}
