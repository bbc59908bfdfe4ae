/** `snapsync_snapshot`: a named snapshot of a container (provider/runtime/snapshot.ts decides; every change replaces). */
import { agentFor } from '../../provider/runtime/connections';
import { ProviderError, step } from '../../provider/runtime/errors';
import * as runtime from '../../provider/runtime/snapshot';
import { timeoutsBlock } from '../timeouts';
import type { ResourceBinding } from './bridge';

export const snapshotBinding: ResourceBinding = {
  typeName: 'snapsync_snapshot',
  runtime: runtime as never,
  schema: {
    version: 0,
    description: 'A named snapshot of a container (a VM snapshot covers every member at once).',
    attributes: {
      id: { type: 'string', computed: true, description: 'The snapshot uuid.' },
      container: { type: 'string', required: true, description: 'The container (replaces).' },
      name: { type: 'string', required: true, description: 'Snapshot name (replaces).' },
      labels: { type: ['map', 'string'], optional: true, description: 'Labels (replaces).' },
      agent_url: {
        type: 'string',
        optional: true,
        description: 'The agent, when not the default (replaces).',
      },
      ref: { type: 'string', computed: true, description: 'container@name.' },
      uuid: { type: 'string', computed: true, description: 'The snapshot uuid.' },
      snapshot_id: { type: 'number', computed: true, description: 'The snapshot id on the agent.' },
      size: { type: 'number', computed: true, description: 'Bytes.' },
      created_at: { type: 'string', computed: true, description: 'When it was taken.' },
      member_roles: { type: ['list', 'string'], computed: true, description: 'A VM snapshot: member roles.' },
    },
    blocks: { timeouts: timeoutsBlock },
  },
  inputs: { container: 'container', name: 'name', labels: 'labels', agent_url: 'agentUrl' },
  outputs: {
    ref: 'ref',
    uuid: 'uuid',
    snapshot_id: 'snapshotId',
    size: 'size',
    created_at: 'createdAt',
    member_roles: 'memberRoles',
  },
  changedByUpdate: [],
  importId: (state) => `${state.container}@${state.name}`,
  /** The import id is container@name on the provider's default agent. */
  async importState(ref) {
    const at = ref.indexOf('@');
    const container = ref.slice(0, at);
    if (at <= 0)
      throw new ProviderError('import', ref, 'INVALID_ARGUMENT', 'the import id is container@snapshot');
    const agent = await agentFor(undefined, container);
    const s = await step('import', container, () => agent.describeSnapshot(ref));
    if (s === null)
      throw new ProviderError('import', container, 'NOT_FOUND', `no snapshot ${ref} on the agent`);
    const labels = Object.keys(s.labels ?? {}).length > 0 ? { labels: s.labels } : {};
    const outs = runtime.outputs({ container: s.container, name: s.name, ...labels }, s);
    return { id: s.uuid, outs: { ...outs } };
  },
};
