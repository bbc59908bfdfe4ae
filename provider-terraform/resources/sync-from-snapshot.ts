/**
 * `snapsync_sync_from_snapshot`: keeps a target synced to a snapshot with its
 * identity preserved (provider/runtime/sync-from-snapshot.ts decides). A new
 * snapshot, triggers, preserve list, members, reference_map or
 * allow_source_references re-sync in place (when_attached only applies to
 * the next sync); a new target replaces; a read that finds the target re-synced or reverted by hand, or
 * the snapshot deleted and taken again under the same name, reports `in_sync = false` and the next plan
 * re-syncs (an apply that re-creates the snapshot re-syncs to it in the same run).
 */
import { agentFor } from '../../provider/runtime/connections';
import { ProviderError, step } from '../../provider/runtime/errors';
import { findContainer } from '../../provider/runtime/find';
import { adoptSync } from '../../provider/runtime/sync-adopt';
import * as runtime from '../../provider/runtime/sync-from-snapshot';
import { timeoutsBlock } from '../timeouts';
import type { CtyType } from '../wire/cty';
import type { ResourceBinding } from './bridge';

const warning: CtyType = ['object', { path: 'string', code: 'string', message: 'string' }];
const identityField: CtyType = [
  'object',
  { path: 'string', value: 'string', status: 'string', sourceValue: 'string' },
];

export const syncFromSnapshotBinding: ResourceBinding = {
  typeName: 'snapsync_sync_from_snapshot',
  runtime: runtime as never,
  schema: {
    version: 0,
    description: "Keeps a target container synced to a snapshot, keeping the target's own identity.",
    attributes: {
      id: { type: 'string', computed: true, description: 'The target uuid.' },
      target: { type: 'string', required: true, description: 'The container to sync (replaces).' },
      snapshot: {
        type: 'string',
        required: true,
        description: 'container@snapshot to sync from (in place).',
      },
      preserve: {
        type: ['list', 'string'],
        optional: true,
        description: "Identity paths to keep (unset: the profile's default; empty: none).",
      },
      // Computed too: an import records the default, and a configuration that spells it out (or leaves
      // it unset) then plans no re-sync.
      safety_snapshot: {
        type: 'bool',
        optional: true,
        computed: true,
        description: 'Snapshot the target first (default true).',
      },
      on_delete: {
        type: 'string',
        optional: true,
        description: 'keep (default) or revert to the safety snapshot.',
      },
      triggers: { type: ['list', 'string'], optional: true, description: 'Any change re-syncs.' },
      members: { type: ['list', 'string'], optional: true, description: 'VM: only these member roles.' },
      agent_url: {
        type: 'string',
        optional: true,
        description: 'The agent, when not the default (replaces).',
      },
      reference_map: {
        type: ['map', 'string'],
        optional: true,
        description:
          "Source value → the target's, for references in synced configs the target never had (re-syncs).",
      },
      allow_source_references: {
        type: ['list', 'string'],
        optional: true,
        description: "Names or uuids of the source's containers a synced config may still hold (re-syncs).",
      },
      when_attached: {
        type: 'string',
        optional: true,
        description: 'Attached NBD clients: fail (default) or disconnect them first (fences their disks).',
      },
      preserved: { type: ['map', 'string'], computed: true, description: 'Identity path → the value kept.' },
      restored: {
        type: ['list', 'string'],
        computed: true,
        description:
          'Paths the sync wrote: fields written back, fresh identifiers (generated), mapped references.',
      },
      identity: { type: ['list', identityField], computed: true, description: 'Every identity field.' },
      warnings: { type: ['list', warning], computed: true, description: 'Identity warnings.' },
      safety_snapshot_ref: { type: 'string', computed: true, description: 'The safety snapshot kept.' },
      generation: { type: 'number', computed: true, description: "The target's generation after the sync." },
      source_snapshot_uuid: { type: 'string', computed: true, description: 'The snapshot synced from.' },
      source_snapshot_ids: {
        type: ['map', 'number'],
        computed: true,
        description: 'Role → member snapshot id.',
      },
      target_uuid: { type: 'string', computed: true, description: 'The target uuid.' },
      in_sync: {
        type: 'bool',
        computed: true,
        description: 'False when a read found the target changed by hand or the snapshot taken again.',
      },
      drift: { type: 'string', computed: true, description: 'What changed by hand, when in_sync is false.' },
    },
    blocks: { timeouts: timeoutsBlock },
  },
  inputs: {
    target: 'target',
    snapshot: 'snapshot',
    preserve: 'preserve',
    safety_snapshot: 'safetySnapshot',
    on_delete: 'onDelete',
    triggers: 'triggers',
    members: 'members',
    agent_url: 'agentUrl',
    reference_map: 'referenceMap',
    allow_source_references: 'allowSourceReferences',
    when_attached: 'whenAttached',
  },
  outputs: {
    preserved: 'preserved',
    restored: 'restored',
    identity: 'identity',
    warnings: 'warnings',
    safety_snapshot_ref: 'safetySnapshotRef',
    generation: 'generation',
    source_snapshot_uuid: 'sourceSnapshotUuid',
    source_snapshot_ids: 'sourceSnapshotIds',
    target_uuid: 'targetUuid',
    in_sync: 'inSync',
    drift: 'drift',
  },
  changedByUpdate: [
    'preserved',
    'restored',
    'identity',
    'warnings',
    'safety_snapshot_ref',
    'generation',
    'source_snapshot_uuid',
    'source_snapshot_ids',
    'in_sync',
    'drift',
  ],
  defaults: { safety_snapshot: true },
  importId: (state) => String(state.target),
  /**
   * The import id is the target container's name (or uuid) on the provider's default agent. The
   * agent keeps no record of a sync: its state is read from the target's lineage (the snapshot of
   * another container it descends from, its generation, its newest safety snapshot), as Pulumi's
   * `SyncFromSnapshot.get` adopts one; the options a sync was run with (preserve, safety_snapshot,
   * …) and its identity report are not known, so the imported state has none.
   */
  async importState(target) {
    const agent = await agentFor(undefined, target);
    const adopted = await adoptSync(agent, target, undefined);
    if (adopted === null) {
      const live = await step('import', target, () => findContainer(agent, target));
      if (live === null)
        throw new ProviderError('import', target, 'NOT_FOUND', `no container "${target}" on the agent`);
      throw new ProviderError(
        'import',
        target,
        'NOT_SYNCED',
        `"${live.name}" does not descend from a snapshot of another container: there is no sync to import; declare the sync and apply it`,
      );
    }
    // The default: a configuration that leaves it unset or spells it out plans no re-sync.
    return { id: adopted.targetUuid, outs: { ...adopted, safetySnapshot: true } };
  },
};
