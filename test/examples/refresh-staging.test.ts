import * as assert from 'node:assert/strict';
import { type RegisteredResource, runProgram } from '../helpers/pulumi-mocks';

const TOKEN = 'tok-3f9a7c1e-never-in-state';

describe('examples/refresh-staging under Pulumi mocks', () => {
  let resources: RegisteredResource[];
  let outputs: Record<string, unknown>;

  before(async () => {
    ({ resources, outputs } = await runProgram(
      'refresh-staging',
      {
        'refresh-staging:snapshotName': 'nightly-2026-11-24',
        'snapsync:url': 'ws://127.0.0.1:7890',
        'snapsync:token': TOKEN,
      },
      async () => require('../../examples/refresh-staging/index'),
      (r) =>
        r.name === 'nightly'
          ? { ref: `${r.inputs.container}@${r.inputs.name}` }
          : r.name === 'refresh-staging'
            ? {
                preserved: { 'config.uuid.bios': 'staging-uuid' },
                restored: ['config.uuid.bios'],
                safetySnapshotRef: 'staging-web@safety-g1',
                generation: 1,
              }
            : { uuid: `${r.name}-uuid` },
    ));
  });

  it('declares a production VM and a staging VM, each with a config file and two disks', () => {
    const containers = resources.filter((r) => r.type === 'pulumi-nodejs:dynamic/snapsync:Container');
    assert.deepEqual(containers.map((c) => [c.name, c.inputs.type]).sort(), [
      ['prod-web', 'vm'],
      ['prod-web-config', 'file'],
      ['prod-web-disk0', 'vdisk'],
      ['prod-web-disk1', 'vdisk'],
      ['staging-web', 'vm'],
      ['staging-web-config', 'file'],
      ['staging-web-disk0', 'vdisk'],
      ['staging-web-disk1', 'vdisk'],
    ]);
    const staging = containers.find((c) => c.name === 'staging-web')!;
    assert.deepEqual(staging.inputs.members, {
      config: 'staging-web-config',
      disk0: 'staging-web-disk0',
      disk1: 'staging-web-disk1',
    });
  });

  it('snapshots production under the configured nightly name and syncs staging to it, keeping a safety snapshot', () => {
    const snapshot = resources.find((r) => r.type === 'pulumi-nodejs:dynamic/snapsync:Snapshot')!;
    assert.deepEqual([snapshot.inputs.container, snapshot.inputs.name], ['prod-web', 'nightly-2026-11-24']);
    const sync = resources.find((r) => r.type === 'pulumi-nodejs:dynamic/snapsync:SyncFromSnapshot')!;
    assert.equal(sync.inputs.target, 'staging-web');
    assert.equal(sync.inputs.snapshot, 'prod-web@nightly-2026-11-24');
    assert.equal(sync.inputs.safetySnapshot, true);
    assert.equal(sync.inputs.preserve, 'default');
  });

  it("exports staging's preserved identity as stack outputs", () => {
    assert.deepEqual(outputs.stagingIdentity, { 'config.uuid.bios': 'staging-uuid' });
    assert.deepEqual(outputs.restoredFields, ['config.uuid.bios']);
    assert.equal(outputs.safetySnapshot, 'staging-web@safety-g1');
    assert.equal(outputs.syncedFrom, 'prod-web@nightly-2026-11-24');
  });

  it('serializes each provider as a small stub that loads the runtime, with no token in it', () => {
    for (const r of resources) {
      const text = r.inputs.__provider;
      assert.equal(typeof text, 'string', `${r.name} has a serialized provider`);
      assert.match(text as string, /@snapsync\/pulumi\/dist\/runtime\.js/);
      assert.ok(!(text as string).includes(TOKEN), `${r.name}: the token is not in the provider text`);
      assert.ok((text as string).length < 20_000, `${r.name}: the provider text stays small`);
    }
  });
});
