/**
 * The data sources: `snapsync_container` (one container by name),
 * `snapsync_snapshot` (one snapshot by container and name) and
 * `snapsync_snapshots` (a container's snapshots filtered by labels, newest
 * first: "the latest nightly"). Read-only; they reuse the runtime's agent
 * connections and its snapshot outputs, so values match the resources'.
 */
import type { AgentContainer, AgentSnapshot } from '../../provider/runtime/agent-api';
import { agentFor } from '../../provider/runtime/connections';
import { ProviderError, step } from '../../provider/runtime/errors';
import { outputs as snapshotOutputs } from '../../provider/runtime/snapshot';
import type { State } from '../resources/bridge';
import type { AttributeSpec, BlockSpec } from '../schema';
import type { CtyType, CtyValue } from '../wire/cty';

export interface DataSource {
  typeName: string;
  schema: BlockSpec;
  /** The data source's state for a config whose values are all known. */
  read(config: State): Promise<State>;
}

const agentUrl: AttributeSpec = {
  type: 'string',
  optional: true,
  description: 'The agent, when not the provider default.',
};

/** The attributes of one snapshot, as `snapsync_snapshot` and each of `snapsync_snapshots`' show them. */
const SNAPSHOT_ATTRIBUTES: Record<string, CtyType> = {
  ref: 'string',
  name: 'string',
  uuid: 'string',
  size: 'number',
  created_at: 'string',
  labels: ['map', 'string'],
  member_roles: ['list', 'string'],
};
const SNAPSHOT_OBJECT: CtyType = ['object', SNAPSHOT_ATTRIBUTES];

function snapshotValue(s: AgentSnapshot): { [k: string]: CtyValue } {
  const o = snapshotOutputs({ container: s.container, name: s.name }, s);
  return {
    ref: o.ref,
    name: s.name,
    uuid: o.uuid,
    size: o.size,
    created_at: o.createdAt,
    labels: { ...s.labels },
    member_roles: o.memberRoles,
  };
}

function containerValue(c: AgentContainer): { [k: string]: CtyValue } {
  return {
    id: c.uuid,
    type: c.type,
    size: c.size,
    uuid: c.uuid,
    labels: { ...c.labels },
    members: { ...c.members },
    generation: c.generation,
  };
}

const str = (v: CtyValue | undefined) => (typeof v === 'string' ? v : undefined);

/** The container, or NOT_FOUND naming it (a data source that finds nothing is an error, not null). */
async function describeContainer(operation: string, name: string, url: string | undefined) {
  const agent = await agentFor(url, name);
  const c = await step(operation, name, () => agent.describe(name));
  if (c === null)
    throw new ProviderError(operation, name, 'NOT_FOUND', `no container "${name}" on the agent`);
  return { agent, container: c };
}

export const containerDataSource: DataSource = {
  typeName: 'snapsync_container',
  schema: {
    version: 0,
    description: 'An existing container on a snapsync agent, by name.',
    attributes: {
      name: { type: 'string', required: true, description: 'Container name on the agent.' },
      agent_url: agentUrl,
      id: { type: 'string', computed: true, description: 'The container uuid.' },
      type: { type: 'string', computed: true, description: 'vm, vdisk or file.' },
      size: { type: 'number', computed: true, description: 'Bytes (0 for a VM).' },
      uuid: { type: 'string', computed: true, description: 'The container uuid.' },
      labels: { type: ['map', 'string'], computed: true, description: 'Labels.' },
      members: { type: ['map', 'string'], computed: true, description: 'VM only: role → member container.' },
      generation: { type: 'number', computed: true, description: 'The container generation.' },
    },
  },
  async read(config) {
    const name = String(config.name);
    const { container } = await describeContainer('read', name, str(config.agent_url));
    return { ...config, ...containerValue(container) };
  },
};

export const snapshotDataSource: DataSource = {
  typeName: 'snapsync_snapshot',
  schema: {
    version: 0,
    description: 'An existing snapshot of a container, by container and name.',
    attributes: {
      container: { type: 'string', required: true, description: 'The container.' },
      name: { type: 'string', required: true, description: 'Snapshot name.' },
      agent_url: agentUrl,
      id: { type: 'string', computed: true, description: 'The snapshot uuid.' },
      ref: { type: 'string', computed: true, description: 'container@name.' },
      uuid: { type: 'string', computed: true, description: 'The snapshot uuid.' },
      size: { type: 'number', computed: true, description: 'Bytes.' },
      created_at: { type: 'string', computed: true, description: 'When it was taken.' },
      labels: { type: ['map', 'string'], computed: true, description: 'Labels.' },
      member_roles: { type: ['list', 'string'], computed: true, description: 'A VM snapshot: member roles.' },
    },
  },
  async read(config) {
    const container = String(config.container);
    const ref = `${container}@${String(config.name)}`;
    const { agent } = await describeContainer('read snapshot', container, str(config.agent_url));
    const s = await step('read snapshot', container, () => agent.describeSnapshot(ref));
    if (s === null) throw new ProviderError('read snapshot', container, 'NOT_FOUND', `no snapshot ${ref}`);
    const { name: _name, ...value } = snapshotValue(s);
    return { ...config, id: s.uuid, ...value };
  },
};

/** Newest first; snapshots taken in the same millisecond by their agent id (later ids are newer). */
export function newestFirst(a: AgentSnapshot, b: AgentSnapshot): number {
  return b.createdAt.localeCompare(a.createdAt) || b.id - a.id;
}

export const snapshotsDataSource: DataSource = {
  typeName: 'snapsync_snapshots',
  schema: {
    version: 0,
    description: "A container's snapshots carrying every given label, newest first (the latest nightly).",
    attributes: {
      container: { type: 'string', required: true, description: 'The container.' },
      labels: {
        type: ['map', 'string'],
        optional: true,
        description: 'Only snapshots carrying all these labels with these values.',
      },
      agent_url: agentUrl,
      id: { type: 'string', computed: true, description: 'The container uuid.' },
      snapshots: { type: ['list', SNAPSHOT_OBJECT], computed: true, description: 'Matches, newest first.' },
      latest: {
        type: SNAPSHOT_OBJECT,
        computed: true,
        description: 'The newest match (null when none matches).',
      },
    },
  },
  async read(config) {
    const name = String(config.container);
    const { agent, container } = await describeContainer('list snapshots', name, str(config.agent_url));
    const wanted = Object.entries((config.labels ?? {}) as Record<string, string>);
    const all = await step('list snapshots', name, () => agent.listSnapshots(name));
    // User snapshots only: hidden and safety snapshots are the agent's own.
    const matches = all
      .filter((s) => s.kind === 'user' && !s.hidden && wanted.every(([k, v]) => s.labels[k] === v))
      .sort(newestFirst)
      .map(snapshotValue);
    return { ...config, id: container.uuid, snapshots: matches, latest: matches[0] ?? null };
  },
};

export const DATA_SOURCES: DataSource[] = [containerDataSource, snapshotDataSource, snapshotsDataSource];
