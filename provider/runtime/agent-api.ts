/**
 * What the provider needs from an agent: the narrow, typed set of calls the
 * resources make. `agent-connection.ts` implements it over the WebSocket
 * protocol in schema/; nothing else in provider/ knows about the wire.
 */

export type ContainerType = 'vm' | 'vdisk' | 'file';

export interface AgentContainer {
  uuid: string;
  name: string;
  type: ContainerType;
  size: number;
  labels: Record<string, string>;
  members: Record<string, string>;
  generation: number;
  parentSnapshot: { id: number; name: string; container: string } | null;
}

export interface AgentSnapshot {
  id: number;
  uuid: string;
  name: string;
  container: string;
  containerType: ContainerType;
  size: number;
  createdAt: string;
  members: Record<string, number>;
}

export interface IdentityField {
  path: string;
  value: string;
  status: 'restored' | 'unchanged';
  sourceValue?: string;
}

export interface AgentSyncResult {
  target: AgentContainer;
  source: AgentSnapshot;
  safetySnapshot: AgentSnapshot | null;
  members: Array<{ role: string | null; container: string; source: string }>;
  identity: {
    fields: IdentityField[];
    warnings: Array<{ path: string; code: string; message: string }>;
  } | null;
  generation: number;
}

export interface LineageEntry {
  table: number;
  kind: 'current' | 'snapshot';
  snapshot: AgentSnapshot | null;
}

export type Preserve = 'default' | 'none' | string[];

/** Every mutating call carries an idempotency key: a retry after a dropped connection never acts twice. */
export interface AgentApi {
  describe(name: string): Promise<AgentContainer | null>;
  createContainer(
    spec: { name: string; type: ContainerType; size?: number; labels?: Record<string, string> },
    key: string,
  ): Promise<AgentContainer>;
  addMember(vm: string, role: string, member: string, key: string): Promise<AgentContainer>;
  removeMember(vm: string, role: string, key: string): Promise<AgentContainer>;
  resize(name: string, size: number, shrink: boolean, key: string): Promise<AgentContainer>;
  setLabels(name: string, labels: Record<string, string>, key: string): Promise<AgentContainer>;
  deleteContainer(name: string, recursive: boolean, key: string): Promise<void>;
  clone(source: string, name: string, labels: Record<string, string>, key: string): Promise<AgentContainer>;
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
    options: { preserve: Preserve; safetySnapshot: boolean; members?: string[] },
    key: string,
  ): Promise<AgentSyncResult>;
  revert(container: string, snapshot: string, key: string): Promise<AgentContainer>;
  lineage(container: string): Promise<LineageEntry[]>;
  close(): Promise<void>;
}
