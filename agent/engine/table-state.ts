/** In-memory state of one mapping table. */
import { PresenceSet } from './presence';
import type { TableOwner, TableRecord } from './store/records';

export class TableState {
  readonly presence = new PresenceSet();
  /**
   * Groups of 1024 blocks where an entry of this table may own only some
   * sub-blocks (sub-block.ts): only there is its mask looked up. A superset:
   * added when a partial entry is staged, dropped only at the next load.
   */
  readonly maskedGroups = new Set<number>();
  /** Tables whose parent is this one (derived at load, never stored). */
  dependents = 0;
  /** Readers pinning this snapshot table (in memory, never stored): it is kept, hidden if deleted, while any reads. */
  readers = 0;
  /** Entries the table held when it froze (fsck proves a frozen table never changed); null: not frozen, or frozen before this was recorded. */
  frozenEntries: number | null = null;

  constructor(
    readonly id: number,
    public parent: TableState | null,
    public frozen: boolean,
    public owner: TableOwner,
  ) {}

  record(): TableRecord {
    const record: TableRecord = {
      v: 1,
      id: this.id,
      parent: this.parent?.id ?? null,
      frozen: this.frozen,
      owner: this.owner,
    };
    if (this.frozenEntries !== null) record.frozenEntries = this.frozenEntries;
    return record;
  }
}
