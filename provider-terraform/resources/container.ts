/** `snapsync_container`: a VM, vdisk or file on an agent (provider/runtime/container.ts decides). */
import { agentFor } from '../../provider/runtime/connections';
import * as runtime from '../../provider/runtime/container';
import { ProviderError, step } from '../../provider/runtime/errors';
import { timeoutsBlock } from '../timeouts';
import type { CtyType } from '../wire/cty';
import type { ResourceBinding } from './bridge';

const identityField: CtyType = [
  'object',
  { path: 'string', value: 'string', status: 'string', sourceValue: 'string' },
];
const reference: CtyType = [
  'object',
  { path: 'string', value: 'string', status: 'string', sourceValue: 'string', via: 'string' },
];
const warning: CtyType = ['object', { path: 'string', code: 'string', message: 'string' }];

export const containerBinding: ResourceBinding = {
  typeName: 'snapsync_container',
  runtime: runtime as never,
  schema: {
    version: 0,
    description: 'A container on a snapsync agent: a VM (members), a vdisk or a file.',
    attributes: {
      id: { type: 'string', computed: true, description: 'The container uuid.' },
      name: { type: 'string', required: true, description: 'Container name on the agent (replaces).' },
      type: { type: 'string', required: true, description: 'vm, vdisk or file (replaces).' },
      // Computed too: an import records the size the agent has, and a configuration that declares none
      // (or the same) then plans no change, where a plain optional attribute would plan it away (null).
      size: {
        type: 'number',
        optional: true,
        computed: true,
        description:
          "Bytes (vdisk, file); grows in place. Applied at create and when it changes: a sync gives the disk its source's size, which is no drift. Not declared: the size the agent has once imported (a file grows with its writes).",
      },
      members: {
        type: ['map', 'string'],
        optional: true,
        description:
          'VM only: role → member container. A member a sync created for a role not declared is no drift; it goes with the VM.',
      },
      labels: { type: ['map', 'string'], optional: true, description: 'Labels.' },
      from_snapshot: {
        type: 'string',
        optional: true,
        description:
          'Clone from container@snapshot (replaces). The clone gets an identity of its own (fresh MACs, UUIDs, disk GUIDs; its config names its own members): see identity, references.',
      },
      reference_map: {
        type: ['map', 'string'],
        optional: true,
        description:
          "from_snapshot only: source value → the clone's, for references the clone cannot take from the source (a network, a datastore path) and names it may not invent (replaces).",
      },
      allow_source_references: {
        type: ['list', 'string'],
        optional: true,
        description:
          "from_snapshot only: names or uuids of the source's containers a cloned config may still hold (replaces).",
      },
      keep_identity: {
        type: 'bool',
        optional: true,
        description:
          "from_snapshot only. DANGEROUS: the exact copy, keeping the source's MACs, UUIDs, disk GUIDs and its config's disks and networks; for forensics or a backup never run beside the source (replaces).",
      },
      allow_shrink: { type: 'bool', optional: true, description: 'Allow a smaller size to shrink.' },
      delete_snapshots: {
        type: 'bool',
        optional: true,
        description:
          'On destroy, also delete its snapshots taken outside the configuration (by hand); without it the destroy is refused (HAS_DEPENDENTS) naming them.',
      },
      agent_url: {
        type: 'string',
        optional: true,
        description: 'The agent, when not the provider default (replaces).',
      },
      uuid: { type: 'string', computed: true, description: 'The container uuid.' },
      generation: { type: 'number', computed: true, description: 'The container generation.' },
      parent_snapshot: {
        type: 'string',
        computed: true,
        description: 'container@snapshot it was cloned from.',
      },
      identity: {
        type: ['list', identityField],
        computed: true,
        description:
          "A clone's identity fields: its value, status (generated, mapped, …), the source's value.",
      },
      references: {
        type: ['list', reference],
        computed: true,
        description:
          "References in a clone's configs: its value, status (kept, mapped, removed), the source's.",
      },
      warnings: { type: ['list', warning], computed: true, description: "A clone's identity warnings." },
    },
    blocks: { timeouts: timeoutsBlock },
  },
  inputs: {
    name: 'name',
    type: 'type',
    size: 'size',
    members: 'members',
    labels: 'labels',
    from_snapshot: 'fromSnapshot',
    reference_map: 'referenceMap',
    allow_source_references: 'allowSourceReferences',
    keep_identity: 'keepIdentity',
    allow_shrink: 'allowShrink',
    delete_snapshots: 'deleteSnapshots',
    agent_url: 'agentUrl',
  },
  outputs: {
    uuid: 'uuid',
    generation: 'generation',
    parent_snapshot: 'parentSnapshot',
    identity: 'identity',
    references: 'references',
    warnings: 'warnings',
  },
  changedByUpdate: ['generation'],
  // A VM's parent snapshot is the one all its members descend from: a member added or removed changes it.
  changedWith: { parent_snapshot: ['members'] },
  // A shrink without allow_shrink: the plan fails as the apply would.
  async updateRefusal(olds, news) {
    const inputs = news as unknown as runtime.ContainerInputs;
    const agent = await agentFor(inputs.agentUrl, inputs.name);
    return runtime.shrinkRefusal(agent, olds, inputs);
  },
  importId: (state) => String(state.name),
  /** The import id is the container's name on the provider's default agent. */
  async importState(name) {
    const agent = await agentFor(undefined, name);
    const c = await step('import', name, () => agent.describe(name));
    if (c === null)
      throw new ProviderError('import', name, 'NOT_FOUND', `no container "${name}" on the agent`);
    const outs: Record<string, unknown> = {
      name: c.name,
      type: c.type,
      uuid: c.uuid,
      generation: c.generation,
      parentSnapshot: c.parentSnapshot ? `${c.parentSnapshot.container}@${c.parentSnapshot.name}` : null,
      // The identity a clone was given is not kept on the agent.
      identity: [],
      references: [],
      warnings: [],
    };
    // `size` is computed: a configuration that declares none keeps this one (no change planned).
    if (c.type !== 'vm') outs.size = c.size;
    if (Object.keys(c.labels).length > 0) outs.labels = c.labels;
    // A member a sync created is the sync's, not the configuration's (a plan would strip it).
    const members = c.type === 'vm' ? runtime.declaredMembers(c, undefined) : {};
    if (Object.keys(members).length > 0) outs.members = members;
    return { id: c.uuid, outs };
  },
};
