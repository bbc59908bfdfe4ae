/**
 * The provider's lifecycle calls as a host makes them, over gRPC with mTLS
 * against a real agent: validate, plan (unknowns, RequiresReplace), apply,
 * read, import, upgrade, idempotent delete, and errors as diagnostics that
 * name the resource and the agent's code.
 */
import * as assert from 'node:assert/strict';
import { AgentClient } from '../../agent/client/client';
import { containerBinding } from '../../provider-terraform/resources/container';
import { objectType } from '../../provider-terraform/schema';
import { decode, encode, UNKNOWN } from '../../provider-terraform/wire/cty';
import { agentCli } from '../helpers/agent-process';
import { pluginOnAgent } from './plugin-on-agent';

type Response = Record<string, { msgpack: Buffer }> & {
  diagnostics: Array<{ severity: string | number; summary: string; detail: string; attribute: unknown }>;
  requires_replace: Array<{ steps: Array<{ attribute_name: string }> }>;
  imported_resources: Array<{ state: { msgpack: Buffer } }>;
};
type State = Record<string, unknown>;

describe('terraform provider: container lifecycle over gRPC against a real agent', () => {
  const T = objectType(containerBinding.schema);
  const dv = (v: unknown) => ({ msgpack: encode(v, T) });
  const value = (r: Response, field: string) => decode(r[field]!.msgpack, T) as State | null;
  const on = pluginOnAgent<Response>();
  const rpc = on.rpc;
  const resource = (fields: object) => ({ type_name: 'snapsync_container', ...fields });
  const config = { name: 'tf-disk', type: 'vdisk', size: 1 << 20, labels: { env: 'staging' } };

  it('validates with the shared checks, naming the attribute, and lets unknowns through', async () => {
    const bad = await rpc('ValidateResourceConfig', resource({ config: dv({ ...config, type: 'disk' }) }));
    assert.equal(bad.diagnostics.length, 1);
    assert.deepEqual(bad.diagnostics[0]!.attribute, {
      steps: [{ attribute_name: 'type', selector: 'attribute_name' }],
    });
    const vmSize = await rpc('ValidateResourceConfig', resource({ config: dv({ ...config, type: 'vm' }) }));
    assert.match(vmSize.diagnostics[0]!.detail, /a VM has no size/);
    const unknown = await rpc(
      'ValidateResourceConfig',
      resource({ config: dv({ ...config, name: UNKNOWN }) }),
    );
    assert.deepEqual(unknown.diagnostics, []);
  });

  let created: Response;
  it('plans a create with the computed attributes unknown, and applies it', async () => {
    const plan = await rpc(
      'PlanResourceChange',
      resource({ prior_state: dv(null), proposed_new_state: dv(config), config: dv(config) }),
    );
    const planned = value(plan, 'planned_state')!;
    for (const computed of ['id', 'uuid', 'generation', 'parent_snapshot'])
      assert.equal(planned[computed], UNKNOWN);
    assert.equal(planned.size, 1 << 20);
    created = await rpc(
      'ApplyResourceChange',
      resource({ prior_state: dv(null), planned_state: plan.planned_state, config: dv(config) }),
    );
    assert.deepEqual(created.diagnostics, []);
    const state = value(created, 'new_state')!;
    const live = agentCli(on.agent)('describe', 'tf-disk');
    assert.equal(state.id, live.uuid);
    assert.equal(state.uuid, live.uuid);
    assert.equal(live.size, 1 << 20);
  });

  it('plans no change for the same config, an in-place update for a size, a replace for a name', async () => {
    const prior = value(created, 'new_state')!;
    const plan = (next: State) =>
      rpc(
        'PlanResourceChange',
        resource({ prior_state: dv(prior), proposed_new_state: dv({ ...prior, ...next }), config: dv(next) }),
      );
    const same = await plan(config);
    assert.deepEqual(value(same, 'planned_state'), prior);
    assert.deepEqual(same.requires_replace, []);
    const grown = await plan({ ...config, size: 2 << 20 });
    assert.deepEqual(grown.requires_replace, []);
    assert.equal(value(grown, 'planned_state')!.generation, UNKNOWN);
    const renamed = await plan({ ...config, name: 'tf-disk-2' });
    assert.deepEqual(
      renamed.requires_replace.map((p) => p.steps.map((s) => s.attribute_name)),
      [['name']],
    );
  });

  it('reads drift, imports by name, and upgrades a stored state', async () => {
    const read = await rpc('ReadResource', resource({ current_state: created.new_state }));
    assert.deepEqual(value(read, 'new_state'), value(created, 'new_state'));
    const hand = await AgentClient.connect(on.agent.url, { token: on.agent.token });
    await hand.call('resize', { container: 'tf-disk', size: 3 << 20, shrink: false });
    await hand.close();
    const drifted = await rpc('ReadResource', resource({ current_state: created.new_state }));
    assert.equal(value(drifted, 'new_state')!.size, 3 << 20);
    const imported = await rpc('ImportResourceState', resource({ id: 'tf-disk' }));
    const state = decode(imported.imported_resources[0]!.state.msgpack, T)!;
    assert.equal((state as State).id, value(created, 'new_state')!.id);
    const missing = await rpc('ImportResourceState', resource({ id: 'no-such-disk' }));
    assert.match(missing.diagnostics[0]!.summary, /snapsync_container "no-such-disk".*\[NOT_FOUND\]/);
    const json = Buffer.from(JSON.stringify(value(created, 'new_state')));
    const upgraded = await rpc('UpgradeResourceState', resource({ version: 0, raw_state: { json } }));
    assert.deepEqual(value(upgraded, 'upgraded_state'), value(created, 'new_state'));
  });

  it('deletes, and deleting again is no error', async () => {
    for (let i = 0; i < 2; i++) {
      const gone = await rpc(
        'ApplyResourceChange',
        resource({ prior_state: created.new_state, planned_state: dv(null), config: dv(null) }),
      );
      assert.deepEqual(gone.diagnostics, []);
      assert.equal(value(gone, 'new_state'), null);
    }
    const read = await rpc('ReadResource', resource({ current_state: created.new_state }));
    assert.equal(value(read, 'new_state'), null);
    assert.equal(agentCli(on.agent)('fsck').ok, true);
  });
});
