/**
 * A map entry that names a physical block the pool never handed out (at or
 * past the high-water mark): a damaged map record, which the open-time page
 * check cannot see (fsck reports it as BLOCK_OUT_OF_RANGE). Reads and writes
 * through it fail with CORRUPT instead of reading zeros or writing outside
 * the pool; each such entry is reported once (`onDamage`, the agent's log).
 */
import { CORRUPT, type SnapsyncError } from './errors';

/** Entries reported at most: a pool damaged everywhere does not grow the set without bound. */
const MAX_REPORTED = 1024;

export class DamagedPointers {
  private readonly reported = new Set<string>();
  /** Called once per damaged entry met (the first CORRUPT of it). */
  onDamage: (err: SnapsyncError) => void = () => {};

  /** The CORRUPT error for `table`'s entry for `block` naming `physical`; the first one of an entry is reported. */
  refuse(table: number, block: number, physical: number, hwm: number): SnapsyncError {
    const err = CORRUPT(
      `table ${table} block ${block} → physical ${physical} outside 1..${hwm - 1}: the map record is damaged (run fsck)`,
      { table, block, physical },
    );
    const key = `${table}:${block}`;
    if (this.reported.size < MAX_REPORTED && !this.reported.has(key)) {
      this.reported.add(key);
      this.onDamage(err);
    }
    return err;
  }
}
