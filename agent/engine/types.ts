/** Public shapes of the engine API: what the agent, the CLI and identity profiles see. */

import type {
  Container,
  ContainerType,
  PoolInfo,
  Snapshot,
  SnapshotRefInfo,
  Usage,
  Warning,
} from '../../schema/types.generated';

// One source for a type: the protocol schema (schema/protocol/ops.json, where each field is documented).
export type { ContainerType, PoolInfo, Usage, Warning };

/** A container as the engine describes it: the protocol's, without what the agent adds (NBD sessions, fences, a clone's report). */
export type ContainerInfo = Omit<Container, 'sessions' | 'fences' | 'identity'>;

/** File members: mode and owner. */
export type FileMeta = NonNullable<Container['file']>;

export type SnapshotRef = SnapshotRefInfo;

export type SnapshotInfo = Snapshot;

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
