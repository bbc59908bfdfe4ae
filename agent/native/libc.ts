/**
 * libc functions Node does not offer (getsockopt(SO_PEERCRED), setsockopt,
 * preadv2), called through koffi: an optional dependency with prebuilt
 * binaries, required lazily so a host without it still runs (each caller
 * then keeps its portable behaviour) and `--version` does not load it.
 *
 * Contract: `libcFunction` returns the same function for the same signature,
 * or null where koffi or libc cannot be loaded (not Linux, package missing).
 * Cost: the first call loads koffi and libc (a few ms); later calls are a Map lookup.
 */

type Koffi = typeof import('koffi');
// biome-ignore lint/suspicious/noExplicitAny: koffi functions are typed by their C signature, not by TypeScript.
export type NativeFunction = (...args: any[]) => any;

let libc: { koffi: Koffi; lib: ReturnType<Koffi['load']> } | null | undefined;
const functions = new Map<string, NativeFunction | null>();

function loadLibc() {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== 'linux') return null;
  try {
    const koffi = require('koffi') as Koffi;
    libc = { koffi, lib: koffi.load('libc.so.6') };
  } catch {
    libc = null;
  }
  return libc;
}

/** The libc function declared by `signature` (koffi's C-like syntax), or null where it cannot be loaded. */
export function libcFunction(signature: string): NativeFunction | null {
  const known = functions.get(signature);
  if (known !== undefined) return known;
  const loaded = loadLibc();
  let fn: NativeFunction | null = null;
  try {
    fn = loaded ? (loaded.lib.func(signature) as NativeFunction) : null;
  } catch {
    fn = null;
  }
  functions.set(signature, fn);
  return fn;
}

/**
 * The address of `buffer`'s first byte (its view's, offset included), for a
 * pointer inside a struct a call takes (an iovec). Valid only while the
 * caller holds `buffer`; never keep it. Null without koffi.
 */
export function bufferAddress(buffer: Buffer): bigint | null {
  return loadLibc()?.koffi.address(buffer) ?? null;
}

/** getsockopt(2): `length` is in-out (the option's size in bytes). */
export type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: number[]) => number;

/** getsockopt(2) from libc, or null where it cannot be loaded. */
export function getSockOpt(): GetSockOpt | null {
  return libcFunction('int getsockopt(int, int, int, void *, _Inout_ uint32_t *)') as GetSockOpt | null;
}

/** errno after the last native call on this thread (0 without koffi). */
export function lastErrno(): number {
  return libc ? libc.koffi.errno() : 0;
}
