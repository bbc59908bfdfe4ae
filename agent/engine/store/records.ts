/** On-disk record shapes. Each carries `v`; bump it (and keep a reader) when a shape changes. */
import type { ContainerType, FileMeta } from '../types';

export interface PoolRecord {
  v: 1;
  format: string;
  formatVersion: number;
  uuid: string;
  blockSize: number;
  capacityBlocks: number;
  /** Data file or device: absolute, or relative to the pool directory (the default `data`). */
  dataPath: string;
  /**
   * Format 3: data files the blocks are striped over (data-layout.ts):
   * `dataPath`, `<dataPath>.1`, …; absent: 1 (every pool of format 1 or 2).
   */
  dataFiles?: number;
  createdAt: string;
}

export interface SequenceRecord {
  v: 1;
  container: number;
  snapshot: number;
  table: number;
}

export interface ContainerRecord {
  v: 1;
  id: number;
  uuid: string;
  name: string;
  type: ContainerType;
  size: number;
  labels: Record<string, string>;
  /** VM only: role → member container id. */
  members: Record<string, number>;
  memberOf: { vm: number; role: string } | null;
  file: FileMeta | null;
  /** Current mapping table (null for a VM, which has no data of its own). */
  table: number | null;
  createdAt: string;
  generation: number;
  /**
   * Set while an import creates it (absent otherwise): invisible to every
   * lookup by name, and removed when the pool opens (an interrupted import).
   */
  incomplete?: true;
  /**
   * Set while an import writes into this existing container (absent
   * otherwise): the id of the hidden snapshot holding its content from before
   * the import. The import's last commit drops it; the pool, opening with it
   * still set, reverts the container to that snapshot (import-in-place.ts).
   * A compatible, optional addition to version 1.
   */
  importUndo?: number;
  /**
   * A VM member a sync created because the VM lacked the role (absent
   * otherwise): it belongs to the VM's syncs, not to whoever declared the VM's
   * members, and goes with the VM. Cleared when it is taken out of the VM.
   * A compatible, optional addition to version 1.
   */
  createdBySync?: true;
}

export interface SnapshotRecord {
  v: 1;
  id: number;
  uuid: string;
  name: string;
  container: number;
  /** The container's name when the snapshot was taken, kept for hidden snapshots of deleted containers. */
  containerName: string;
  containerType: ContainerType;
  size: number;
  /** Frozen table (null for a VM snapshot). */
  table: number | null;
  members: Record<string, number>;
  vmSnapshot: number | null;
  createdAt: string;
  labels: Record<string, string>;
  hidden: boolean;
  kind: 'user' | 'safety';
  /**
   * Hidden and kept only because an NBD reader had it open (reader pins live
   * in memory, never stored): the next open frees it. Absent otherwise, and in
   * records written by older builds (a compatible addition to version 1).
   */
  heldByReader?: true;
  /**
   * A VM safety snapshot: the members its sync created (role → container id),
   * which a revert to it (or to an earlier snapshot) deletes, so the VM gets
   * back the member set it had. Absent otherwise, and in records written by
   * older builds (a compatible addition to version 1).
   */
  createdMembers?: Record<string, number>;
}

export type TableOwner =
  | { kind: 'container'; id: number }
  | { kind: 'snapshot'; id: number }
  /** Discarded: waiting for the reclaimer to free its blocks. */
  | { kind: 'garbage' };

export interface TableRecord {
  v: 1;
  id: number;
  parent: number | null;
  frozen: boolean;
  owner: TableOwner;
  /** Map entries the table held when it froze (absent in tables frozen by older builds). */
  frozenEntries?: number;
}

export interface IdempotencyRecord {
  v: 1;
  fingerprint: string;
  result: unknown;
  expiresAt: number;
}
