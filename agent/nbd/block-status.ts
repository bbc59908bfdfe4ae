/**
 * base:allocation answers: backend extents → BLOCK_STATUS descriptors.
 */
import type { NbdExtent } from './backend';
import { STATE_HOLE, STATE_ZERO } from './constants';

/** Longest range one BLOCK_STATUS looks up (the spec lets a server answer less than asked). */
export const MAX_STATUS_QUERY = 1024 * 1024 * 1024;
/** Most descriptors in one reply. */
const MAX_DESCRIPTORS = 65536;

export interface StatusDescriptor {
  length: number;
  flags: number;
}

export function extentFlags(e: NbdExtent): number {
  return (e.hole ? STATE_HOLE : 0) | (e.zero || e.hole ? STATE_ZERO : 0);
}

/** Merges neighbours with equal flags; with `reqOne`, only the first, clipped to the request. */
export function toDescriptors(
  extents: NbdExtent[],
  requestLength: number,
  reqOne: boolean,
): StatusDescriptor[] {
  const out: StatusDescriptor[] = [];
  for (const e of extents) {
    if (e.length === 0) continue;
    const flags = extentFlags(e);
    const last = out[out.length - 1];
    if (last && last.flags === flags) last.length += e.length;
    else {
      if (out.length === MAX_DESCRIPTORS) break;
      out.push({ length: e.length, flags });
    }
  }
  if (reqOne && out.length > 0)
    return [{ length: Math.min(out[0]!.length, requestLength), flags: out[0]!.flags }];
  return out;
}
