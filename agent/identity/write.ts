/** Writes only what differs, so a restore touches as few blocks as it can. */
import type { ContainerView } from '../engine';

/** Runs closer than this are written as one (same block, fewer calls). */
const MERGE_GAP = 32;

/** Byte runs [start, end) where `next` differs from `old` (bytes past `old`'s end always differ). */
export function changedRuns(old: Uint8Array, next: Uint8Array): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let i = 0; i < next.length; i++) {
    if (i < old.length && old[i] === next[i]) continue;
    const last = runs[runs.length - 1];
    if (last && i - last[1] <= MERGE_GAP) last[1] = i + 1;
    else runs.push([i, i + 1]);
  }
  return runs;
}

/** Writes `next` over `old` (both at `offset`) through the view, changed runs only. */
export function writeChanged(view: ContainerView, offset: number, old: Buffer, next: Buffer): void {
  for (const [start, end] of changedRuns(old, next)) view.write(offset + start, next.subarray(start, end));
}

/**
 * A file's new content: the changed runs (for a value of another length, that is
 * from its first byte to the end, as everything after it shifts), then the length.
 */
export function rewriteFile(view: ContainerView, old: Buffer, next: Buffer): void {
  writeChanged(view, 0, old, next);
  if (next.length < old.length) view.truncate(next.length);
}
