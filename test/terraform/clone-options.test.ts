/**
 * `snapsync_container`'s clone options over gRPC against a real agent (whose
 * clones run the identity hooks): a VM clone of a golden image whose config
 * names a network is refused with IDENTITY_REFERENCE_UNMAPPED, worded in
 * Terraform's terms (reference_map, keep_identity); with reference_map it is
 * created and the identity/references outputs show the clone's own; the
 * options need from_snapshot and replace when changed.
 */
import * as assert from 'node:assert/strict';
import { containerBinding } from '../../provider-terraform/resources/container';
import { objectType } from '../../provider-terraform/schema';
import { decode, encode } from '../../provider-terraform/wire/cty';
import { pluginOnAgent } from './plugin-on-agent';

type Response = Record<string, { msgpack: Buffer }> & {
  diagnostics: Array<{ severity: string | number; summary: string; detail: string }>;
  requires_replace: Array<{ steps: Array<{ attribute_name: string }> }>;
};
type State = Record<string, unknown>;

const GOLDEN_VMX = [
  '.encoding = "UTF-8"',
  'displayName = "web"',
  'scsi0:0.deviceType = "scsi-hardDisk"',
  'scsi0:0.fileName = "tfc-golden-disk0.vmdk"',
  'ethernet0.networkName = "build-net"',
  'ethernet0.addressType = "generated"',
  'ethernet0.generatedAddress = "00:0c:29:4a:7b:01"',
  '',
].join('\n');

describe('terraform provider: snapsync_container clone options (reference_map, allow_source_references, keep_identity)', () => {
  const T = objectType(containerBinding.schema);
  const dv = (v: unknown) => ({ msgpack: encode(v, T) });
  const value = (r: Response, field: string) => decode(r[field]!.msgpack, T) as State | null;
  const on = pluginOnAgent<Response>(async (admin) => {
    await admin.call('createContainer', { name: 'tfc-golden-config', type: 'file', labels: {} });
    await admin.write('tfc-golden-config', 0, Buffer.from(GOLDEN_VMX));
    await admin.call('createContainer', {
      name: 'tfc-golden-disk0',
      type: 'vdisk',
      size: 1 << 20,
      labels: {},
    });
    await admin.call('createContainer', { name: 'tfc-golden', type: 'vm', labels: {} });
    await admin.call('addMember', { vm: 'tfc-golden', role: 'config', member: 'tfc-golden-config' });
    await admin.call('addMember', { vm: 'tfc-golden', role: 'disk0', member: 'tfc-golden-disk0' });
    await admin.call('snapshot', { container: 'tfc-golden', name: 'golden' });
  });
  const rpc = on.rpc;
  const resource = (fields: object) => ({ type_name: 'snapsync_container', ...fields });
  const blank = Object.fromEntries(Object.keys(containerBinding.schema.attributes).map((a) => [a, null]));
  const config = { ...blank, name: 'tfc-dev', type: 'vm', from_snapshot: 'tfc-golden@golden' };
  const messages = (r: Response) => r.diagnostics.map((d) => `${d.summary} ${d.detail}`).join('\n');

  const create = async (cfg: State) => {
    const plan = await rpc(
      'PlanResourceChange',
      resource({ prior_state: dv(null), proposed_new_state: dv(cfg), config: dv(cfg) }),
    );
    assert.deepEqual(plan.diagnostics, []);
    return rpc(
      'ApplyResourceChange',
      resource({ prior_state: dv(null), planned_state: plan.planned_state, config: dv(cfg) }),
    );
  };

  it('each option without from_snapshot is an error naming it', async () => {
    for (const [attribute, v] of [
      ['reference_map', { a: 'b' }],
      ['allow_source_references', ['x']],
      ['keep_identity', true],
    ] as const) {
      const bad = await rpc(
        'ValidateResourceConfig',
        resource({ config: dv({ ...config, from_snapshot: null, [attribute]: v }) }),
      );
      assert.match(messages(bad), new RegExp(`${attribute}: only with from_snapshot`), attribute);
    }
  });

  let created: State;
  it("refused without reference_map (the hint in Terraform's terms); created with it, the outputs show the clone's identity", async () => {
    const refused = await create(config);
    const text = messages(refused);
    assert.match(text, /\[IDENTITY_REFERENCE_UNMAPPED\]/);
    assert.match(text, /config\.ethernet0\.networkName = build-net/);
    assert.match(text, /`reference_map = \{ "SRC" = "DST" \}` on this resource/);
    assert.match(text, /`keep_identity = true` \(dangerous/);
    assert.doesNotMatch(text, /--map|referenceMap/);

    const mapped = { ...config, reference_map: { 'build-net': 'dev-net' } };
    const applied = await create(mapped);
    assert.deepEqual(applied.diagnostics, []);
    created = value(applied, 'new_state')!;
    const references = created.references as Array<Record<string, string>>;
    assert.deepEqual(
      references.find((r) => r.path === 'config.ethernet0.networkName'),
      {
        path: 'config.ethernet0.networkName',
        value: 'dev-net',
        status: 'mapped',
        sourceValue: 'build-net',
        via: 'referenceMap: build-net → dev-net',
      },
    );
    const disk = references.find((r) => r.path === 'config.scsi0:0.fileName');
    assert.equal(disk?.value, 'tfc-dev-disk0.vmdk');
    const mac = (created.identity as Array<Record<string, string>>).find(
      (f) => f.path === 'config.ethernet0.generatedAddress',
    );
    assert.equal(mac?.status, 'generated');
    assert.deepEqual(created.reference_map, { 'build-net': 'dev-net' });
  });

  it('a new reference_map or keep_identity replaces the clone; the same config plans no change', async () => {
    const planFrom = (next: State) =>
      rpc(
        'PlanResourceChange',
        resource({
          prior_state: dv(created),
          proposed_new_state: dv({ ...created, ...next }),
          config: dv({ ...config, reference_map: created.reference_map, ...next }),
        }),
      );
    const same = await planFrom({});
    assert.deepEqual(value(same, 'planned_state'), created);
    for (const [next, attribute] of [
      [{ reference_map: { 'build-net': 'qa-net' } }, 'reference_map'],
      [{ allow_source_references: ['tfc-golden'] }, 'allow_source_references'],
      [{ keep_identity: true, reference_map: null }, 'keep_identity'],
    ] as const) {
      const plan = await planFrom(next);
      assert.ok(
        plan.requires_replace.some((p) => p.steps[0]?.attribute_name === attribute),
        `${attribute}: ${JSON.stringify(plan.requires_replace)}`,
      );
    }
  });
});
