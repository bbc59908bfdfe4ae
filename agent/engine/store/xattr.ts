/**
 * A file's user extended attributes, through libc (Node has no API for
 * them): what the pool writes on its data files (data-owner.ts,
 * data-generation.ts). Each call is one system call; null / false where the
 * filesystem or host cannot keep them (no koffi, no user attributes).
 */
import { libcFunction } from '../../native/libc';

/** Room for any value of ours: a longer one is not ours. */
const MAX_VALUE = 128;

type GetXattr = (path: string, name: string, value: Buffer, size: number) => number;
type SetXattr = (path: string, name: string, value: Buffer, size: number, flags: number) => number;
type RemoveXattr = (path: string, name: string) => number;

/** The attribute's value, or null: not written (ENODATA), no support, or too long to be ours. */
export function readAttribute(file: string, name: string): string | null {
  const get = libcFunction(
    'intptr_t getxattr(const char *, const char *, _Out_ uint8_t *, size_t)',
  ) as GetXattr | null;
  if (!get) return null;
  const value = Buffer.alloc(MAX_VALUE);
  const n = get(file, name, value, value.length);
  return n < 0 ? null : value.subarray(0, n).toString('utf8');
}

/** Writes the attribute; false where it cannot be kept. */
export function writeAttribute(file: string, name: string, value: string): boolean {
  const set = libcFunction(
    'int setxattr(const char *, const char *, const uint8_t *, size_t, int)',
  ) as SetXattr | null;
  if (!set) return false;
  const bytes = Buffer.from(value, 'utf8');
  return set(file, name, bytes, bytes.length, 0) === 0;
}

export function removeAttribute(file: string, name: string): void {
  const remove = libcFunction('int removexattr(const char *, const char *)') as RemoveXattr | null;
  remove?.(file, name);
}
