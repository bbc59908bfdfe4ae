/** Public shapes of the engine API: what the agent, the CLI and identity profiles see. */

export type ContainerType = 'vm' | 'vdisk' | 'file';

export interface PoolInfo {
  uuid: string;
  formatVersion: number;
  blockSize: number;
  /** Capacity of the data area, in blocks. */
  capacityBlocks: number;
  /** Blocks referenced by live or not-yet-reclaimed tables. */
  usedBlocks: number;
  freeBlocks: number;
  /** The data file or device (the first data file of a striped pool). */
  dataPath: string;
  /** Every data file the blocks are striped over, the first being `dataPath`. */
  dataFiles: string[];
  containers: number;
  snapshots: number;
}

export interface FileMeta {
  mode: number;
  uid: number;
  gid: number;
}

export interface ContainerInfo {
  id: number;
  uuid: string;
  name: string;
  type: ContainerType;
  /** Logical size in bytes (a VM: 0). */
  size: number;
  labels: Record<string, string>;
  /** VM only: role/slot → member container name. */
  members: Record<string, string>;
  /** VM only, present when there are any: the roles whose member a sync created (the VM lacked the role). */
  syncCreatedMembers?: string[];
  /** Member only: the VM it belongs to and its role there. */
  memberOf: { vm: string; role: string } | null;
  /** File only. */
  file: FileMeta | null;
  createdAt: string;
  /** Snapshot this container's current table points at, if any (after clone/sync/revert). */
  parentSnapshot: SnapshotRef | null;
  /** Bumped by every sync/revert/clone that gives the container a new base. */
  generation: number;
}

export interface SnapshotRef {
  id: number;
  name: string;
  container: string;
}

export interface SnapshotInfo {
  id: number;
  uuid: string;
  name: string;
  /** Name of the container it was taken of (as it was named at the time the snapshot is read). */
  container: string;
  containerType: ContainerType;
  size: number;
  createdAt: string;
  labels: Record<string, string>;
  /** Hidden: deleted by a user but kept because other tables still read through it. */
  hidden: boolean;
  /** VM snapshot: role → member snapshot id. */
  members: Record<string, number>;
  /** Member snapshot: the VM snapshot that owns it. */
  vmSnapshot: number | null;
  /** Safety snapshot taken by a sync. */
  kind: 'user' | 'safety';
}

export interface Usage {
  container: string;
  logicalBytes: number;
  /** Bytes that read non-zero data, wherever they live in the chain. */
  mappedBytes: number;
  /** Bytes freed by deleting the container and its snapshots. */
  exclusiveBytes: number;
  /** Mapped bytes that live in tables other containers also read. */
  sharedBytes: number;
}

/** A byte-addressed view of one container, as identity profiles see it. */
export interface ContainerView {
  readonly name: string;
  readonly type: ContainerType;
  size(): number;
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Buffer): void;
  /** Files only: set the byte length (grows with zeros, shrinks by trimming). */
  truncate(length: number): void;
  /** Distinct logical blocks written through this view (counts restore cost). */
  blocksWritten(): number;
}
