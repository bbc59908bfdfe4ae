/** In-memory state of one mapping table. */
import { PresenceSet } from './presence';
import type { TableOwner, TableRecord } from './store/records';

export class TableState {
  readonly presence = new PresenceSet();
  /** Tables whose parent is this one (derived at load, never stored). */
  dependents = 0;

  constructor(
    readonly id: number,
    public parent: TableState | null,
    public frozen: boolean,
    public owner: TableOwner,
  ) {}

  record(): TableRecord {
    return { v: 1, id: this.id, parent: this.parent?.id ?? null, frozen: this.frozen, owner: this.owner };
  }
}
