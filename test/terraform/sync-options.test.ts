/**
 * `snapsync_sync_from_snapshot`'s reference_map, allow_source_references and
 * when_attached over gRPC against a real agent: they reach the runtime's
 * referenceMap / allowSourceReferences / whenAttached, a new reference_map or
 * allow list re-syncs in place, a new when_attached changes nothing on the
 * agent, and the plan says neither replaces.
 */
import * as assert from 'node:assert/strict';
import { syncFromSnapshotBinding } from '../../provider-terraform/resources/sync-from-snapshot';
import { objectType } from '../../provider-terraform/schema';
import { decode, encode, UNKNOWN } from '../../provider-terraform/wire/cty';
import { pluginOnAgent } from './plugin-on-agent';

type Response = Record<string, { msgpack: Buffer }> & {
  diagnostics: Array<{ severity: string | number; summary: string; detail: string }>;
  requires_replace: Array<{ steps: Array<{ attribute_name: string }> }>;
};
type State = Record<string, unknown>;

describe('terraform provider: sync options (reference_map, allow_source_references, when_attached)', () => {
  const T = objectType(syncFromSnapshotBinding.schema);
  const dv = (v: unknown) => ({ msgpack: encode(v, T) });
  const value = (r: Response, field: string) => decode(r[field]!.msgpack, T) as State | null;
  const on = pluginOnAgent<Response>(async (admin) => {
    for (const name of ['opt-prod', 'opt-staging'])
      await admin.call('createContainer', { name, type: 'vdisk', size: 1 << 20, labels: {} });
    await admin.call('snapshot', { container: 'opt-prod', name: 'nightly' });
  });
  const rpc = on.rpc;
  const resource = (fields: object) => ({ type_name: 'snapsync_sync_from_snapshot', ...fields });
  const blank = Object.fromEntries(
    Object.keys(syncFromSnapshotBinding.schema.attributes).map((a) => [a, null]),
  );
  const config = {
    ...blank,
    target: 'opt-staging',
    snapshot: 'opt-prod@nightly',
    reference_map: { 'opt-prod-disk': 'opt-staging-disk' },
    allow_source_references: ['opt-prod'],
    when_attached: 'fail',
  };

  it('declares the three attributes as optional inputs', async () => {
    const { attributes } = syncFromSnapshotBinding.schema;
    for (const name of ['reference_map', 'allow_source_references', 'when_attached'])
      assert.equal(attributes[name]?.optional, true, name);
    const bad = await rpc(
      'ValidateResourceConfig',
      resource({ config: dv({ ...config, when_attached: 'kill' }) }),
    );
    assert.match(bad.diagnostics.map((d) => `${d.summary} ${d.detail}`).join('\n'), /when_attached/);
  });

  let created: State;
  it('applies a sync with them, keeping them in state', async () => {
    const plan = await rpc(
      'PlanResourceChange',
      resource({ prior_state: dv(null), proposed_new_state: dv(config), config: dv(config) }),
    );
    assert.deepEqual(plan.diagnostics, []);
    const applied = await rpc(
      'ApplyResourceChange',
      resource({ prior_state: dv(null), planned_state: plan.planned_state, config: dv(config) }),
    );
    assert.deepEqual(applied.diagnostics, []);
    created = value(applied, 'new_state')!;
    assert.deepEqual(created.reference_map, config.reference_map);
    assert.deepEqual(created.allow_source_references, config.allow_source_references);
    assert.equal(created.when_attached, 'fail');
    assert.equal(typeof created.generation, 'number');
  });

  const planFrom = (prior: State, next: State) =>
    rpc(
      'PlanResourceChange',
      resource({
        prior_state: dv(prior),
        proposed_new_state: dv({ ...prior, ...next }),
        config: dv({ ...config, ...next }),
      }),
    );
  const applyFrom = (prior: State, plan: Response, next: State) =>
    rpc(
      'ApplyResourceChange',
      resource({
        prior_state: dv(prior),
        planned_state: plan.planned_state,
        config: dv({ ...config, ...next }),
      }),
    );

  it('a new reference_map or allow list re-syncs in place', async () => {
    let prior = created;
    for (const next of [
      { reference_map: { 'opt-prod-disk': 'opt-staging-disk-2' } },
      { allow_source_references: ['opt-prod', 'opt-prod-disk'] },
    ]) {
      const plan = await planFrom(prior, next);
      assert.deepEqual(plan.requires_replace, []);
      assert.equal(value(plan, 'planned_state')!.generation, UNKNOWN);
      const applied = await applyFrom(prior, plan, next);
      assert.deepEqual(applied.diagnostics, []);
      const state = value(applied, 'new_state')!;
      assert.ok((state.generation as number) > (prior.generation as number), 're-synced: a new generation');
      assert.equal(state.id, created.id);
      prior = state;
    }
    created = prior;
  });

  it('a new when_attached is an in-place change that does not re-sync', async () => {
    const next = { when_attached: 'disconnect' };
    const plan = await planFrom(created, next);
    assert.deepEqual(plan.requires_replace, []);
    const applied = await applyFrom(created, plan, next);
    assert.deepEqual(applied.diagnostics, []);
    const state = value(applied, 'new_state')!;
    assert.equal(state.when_attached, 'disconnect');
    assert.equal(state.generation, created.generation);
    const same = await planFrom(state, { when_attached: 'disconnect', reference_map: created.reference_map });
    assert.deepEqual(value(same, 'planned_state'), state);
  });
});
