/**
 * What the provider needs from an agent: the narrow, typed set of calls the
 * resources make. `agent-connection.ts` implements it over the WebSocket
 * protocol in schema/; nothing else in provider/ knows about the wire.
 */

/** The wire shapes, generated from schema/ (one source of truth for agent, client and provider). */
export type {
  Container as AgentContainer,
  ContainerType,
  IdentityField,
  IdentityReference,
  LineageEntry,
  Snapshot as AgentSnapshot,
  SyncReport as AgentSyncResult,
} from '../../schema';

import type {
  Container as AgentContainer,
  Snapshot as AgentSnapshot,
  SyncReport as AgentSyncResult,
  CloneParams,
  ContainerType,
  LineageEntry,
} from '../../schema';

export type Preserve = 'default' | 'none' | string[];

/** How a clone gets its identity (the protocol's clone options; absent: an identity of its own, nothing mapped). */
export type CloneOptions = Pick<CloneParams, 'referenceMap' | 'allowSourceReferences' | 'keepIdentity'>;

/** Every mutating call carries an idempotency key: a retry after a dropped connection never acts twice. */
export interface AgentApi {
  describe(name: string): Promise<AgentContainer | null>;
  createContainer(
    spec: {
      name: string;
      type: ContainerType;
      size?: number;
      labels?: Record<string, string>;
      /** VM: role → member, added in the same call (all or nothing). */
      members?: Record<string, string>;
    },
    key: string,
  ): Promise<AgentContainer>;
  addMember(vm: string, role: string, member: string, key: string): Promise<AgentContainer>;
  removeMember(vm: string, role: string, key: string): Promise<AgentContainer>;
  /** `force`: disconnect attached NBD clients first (else IN_USE while any is attached); likewise below. */
  resize(name: string, size: number, shrink: boolean, key: string, force?: boolean): Promise<AgentContainer>;
  setLabels(name: string, labels: Record<string, string>, key: string): Promise<AgentContainer>;
  /** detach: a VM's member is taken out of its VM first (else IS_VM_MEMBER). */
  deleteContainer(
    name: string,
    recursive: boolean,
    key: string,
    force?: boolean,
    detach?: boolean,
  ): Promise<void>;
  clone(
    source: string,
    name: string,
    labels: Record<string, string>,
    key: string,
    options?: CloneOptions,
  ): Promise<AgentContainer>;
  snapshot(
    container: string,
    name: string,
    labels: Record<string, string>,
    key: string,
  ): Promise<AgentSnapshot>;
  describeSnapshot(ref: string): Promise<AgentSnapshot | null>;
  deleteSnapshot(ref: string, key: string): Promise<void>;
  sync(
    target: string,
    source: string,
    options: {
      preserve: Preserve;
      safetySnapshot: boolean;
      members?: string[];
      /** Source value → the target's, for references the target never had. */
      referenceMap?: Record<string, string>;
      /** Names or UUIDs of the source a synced config may still hold. */
      allowSourceReferences?: string[];
      /** Disconnect attached NBD clients first (else IN_USE). */
      force?: boolean;
    },
    key: string,
  ): Promise<AgentSyncResult>;
  revert(container: string, snapshot: string, key: string, force?: boolean): Promise<AgentContainer>;
  lineage(container: string): Promise<LineageEntry[]>;
  /** Read-only listings, to find an object by its uuid (`get` by id). */
  listContainers(): Promise<AgentContainer[]>;
  listSnapshots(container: string): Promise<AgentSnapshot[]>;
  close(): Promise<void>;
}
