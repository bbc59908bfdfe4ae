/**
 * ImportResourceState of a snapshot (`container@name`), of a sync (the
 * target's name, its default safety_snapshot spelled out or not) and of containers with and without a
 * declared size, over gRPC against a real agent: the imported state is
 * what the agent shows, the host's read after the import keeps it, and the
 * plan for a configuration that says the same is empty. A target that was
 * never synced from a snapshot is NOT_SYNCED, a missing one NOT_FOUND.
 */
import * as assert from 'node:assert/strict';
import type { ResourceBinding } from '../../provider-terraform/resources/bridge';
import { containerBinding } from '../../provider-terraform/resources/container';
import { snapshotBinding } from '../../provider-terraform/resources/snapshot';
import { syncFromSnapshotBinding } from '../../provider-terraform/resources/sync-from-snapshot';
import { objectType } from '../../provider-terraform/schema';
import { decode, encode } from '../../provider-terraform/wire/cty';
import { agentCli } from '../helpers/agent-process';
import { pluginOnAgent } from './plugin-on-agent';

type Response = Record<string, { msgpack: Buffer }> & {
  diagnostics: Array<{ summary: string; detail: string }>;
  requires_replace: unknown[];
  imported_resources: Array<{ type_name: string; state: { msgpack: Buffer } }>;
};
type State = Record<string, unknown>;

describe('terraform provider: import of snapshots and syncs', () => {
  const on = pluginOnAgent<Response>(async (admin) => {
    for (const name of ['imp-prod', 'imp-staging', 'imp-alone'])
      await admin.call('createContainer', { name, type: 'vdisk', size: 1 << 20, labels: {} });
    await admin.call('createContainer', { name: 'imp-config', type: 'file', labels: {} });
    await admin.call('snapshot', { container: 'imp-prod', name: 'nightly', labels: { kind: 'nightly' } });
    await admin.call('sync', {
      target: 'imp-staging',
      source: 'imp-prod@nightly',
      preserve: 'default',
      safetySnapshot: true,
    });
  });
  const rpc = on.rpc;

  /** Import, then the host's read, then a plan for `config` (attributes left out are null). */
  async function importAndPlan(binding: ResourceBinding, id: string, config: State) {
    const T = objectType(binding.schema);
    const type_name = binding.typeName;
    const imported = await rpc('ImportResourceState', { type_name, id });
    assert.deepEqual(imported.diagnostics, []);
    assert.equal(imported.imported_resources[0]!.type_name, type_name);
    const read = await rpc('ReadResource', {
      type_name,
      current_state: imported.imported_resources[0]!.state,
    });
    assert.deepEqual(read.diagnostics, []);
    const state = decode(read.new_state!.msgpack, T) as State;
    const blank = Object.fromEntries(Object.keys(binding.schema.attributes).map((a) => [a, null]));
    const configured = { ...blank, timeouts: null, ...config };
    // The proposed new state: the configuration, with the computed attributes from the prior state.
    const proposed = Object.fromEntries(
      Object.entries(configured).map(([a, v]) => [
        a,
        v === null && binding.schema.attributes[a]?.computed ? state[a] : v,
      ]),
    );
    const plan = await rpc('PlanResourceChange', {
      type_name,
      prior_state: read.new_state,
      proposed_new_state: { msgpack: encode(proposed, T) },
      config: { msgpack: encode(configured, T) },
    });
    assert.deepEqual(plan.diagnostics, []);
    return { state, planned: decode(plan.planned_state!.msgpack, T) as State, plan };
  }

  it('a snapshot imports as container@name, and the same configuration plans no change', async () => {
    const config = { container: 'imp-prod', name: 'nightly', labels: { kind: 'nightly' } };
    const { state, planned, plan } = await importAndPlan(snapshotBinding, 'imp-prod@nightly', config);
    assert.equal(state.ref, 'imp-prod@nightly');
    const live = agentCli(on.agent)('snapshots', 'imp-prod').find(
      (s: { name: string }) => s.name === 'nightly',
    );
    assert.equal(state.id, live.uuid);
    assert.deepEqual(planned, state);
    assert.deepEqual(plan.requires_replace, []);
  });

  it('a sync imports by its target: the snapshot, generation and safety snapshot from the agent; no change planned', async () => {
    const config = { target: 'imp-staging', snapshot: 'imp-prod@nightly' };
    const { state, planned, plan } = await importAndPlan(syncFromSnapshotBinding, 'imp-staging', config);
    const live = agentCli(on.agent)('describe', 'imp-staging');
    assert.equal(state.id, live.uuid);
    assert.equal(state.target, 'imp-staging');
    assert.equal(state.snapshot, 'imp-prod@nightly');
    assert.equal(state.generation, live.generation);
    assert.equal(state.in_sync, true);
    assert.match(String(state.safety_snapshot_ref), /^imp-staging@/);
    assert.deepEqual(planned, state);
    assert.deepEqual(plan.requires_replace, []);
  });

  it('a sync whose configuration spells out the default safety_snapshot = true: no re-sync planned', async () => {
    const config = { target: 'imp-staging', snapshot: 'imp-prod@nightly', safety_snapshot: true };
    const { state, planned } = await importAndPlan(syncFromSnapshotBinding, 'imp-staging', config);
    assert.equal(state.safety_snapshot, true);
    assert.deepEqual(planned, state);
  });

  for (const [what, name, config] of [
    ['a file declared without a size (it grows with its writes)', 'imp-config', { type: 'file' }],
    ['a file declared with its size', 'imp-config', { type: 'file', size: 0 }],
    ['a vdisk declared without a size', 'imp-prod', { type: 'vdisk' }],
    ['a vdisk declared with its size', 'imp-prod', { type: 'vdisk', size: 1 << 20 }],
  ] as const) {
    it(`${what} imports with the size the agent has: no change planned`, async () => {
      const { state, planned, plan } = await importAndPlan(containerBinding, name, { name, ...config });
      const live = agentCli(on.agent)('describe', name);
      assert.equal(state.uuid, live.uuid);
      assert.equal(state.size, live.size);
      // What `tofu plan` compares: a planned state equal to the imported one is no change.
      assert.deepEqual(planned, state);
      assert.deepEqual(plan.requires_replace, []);
    });
  }

  it('a target never synced is NOT_SYNCED, a missing one NOT_FOUND, both naming the resource', async () => {
    const type_name = 'snapsync_sync_from_snapshot';
    const alone = await rpc('ImportResourceState', { type_name, id: 'imp-alone' });
    assert.match(
      alone.diagnostics[0]!.summary,
      /snapsync_sync_from_snapshot "imp-alone": import failed \[NOT_SYNCED\]/,
    );
    const missing = await rpc('ImportResourceState', { type_name, id: 'imp-nothing' });
    assert.match(missing.diagnostics[0]!.summary, /"imp-nothing": import failed \[NOT_FOUND\]/);
  });
});
