/**
 * Issue 14: adopting what the stack did not create. `Container.get` and
 * `Snapshot.get` are ReadResource calls: the engine sends the serialized
 * provider and the id only (a name or a uuid), and Read must fill every
 * output from the agent. The `import` option's Read (and `pulumi import`'s)
 * carries no properties at all, so the dynamic-provider plugin cannot find
 * the provider (pinned here); the resource classes send the option's id as
 * the `__import` input instead, and check/create adopt (tested here through
 * the plugin, and with the real CLI in test/e2e/import-option.e2e.ts).
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { provider as containerProvider } from '../../provider/container';
import { provider as snapshotProvider } from '../../provider/snapshot';
import { provider as syncProvider } from '../../provider/sync-from-snapshot';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { DynamicProviderPlugin, serializeProvider } from '../helpers/dynamic-provider';
import { cleanupTempDirs } from '../helpers/tmp';

const ROOT = path.resolve(__dirname, '../..');
const urn = (type: string, name: string) =>
  `urn:pulumi:dev::adoption::pulumi-nodejs:dynamic/snapsync:${type}::${name}`;

describe('adoption: get by name or uuid with complete outputs (issue 14)', function () {
  this.timeout(120_000);
  let agent: AgentProcess;
  let plugin: DynamicProviderPlugin;
  let admin: AgentClient;
  const text: Record<string, string> = {};

  before(async () => {
    execFileSync(process.execPath, ['scripts/build-provider.mjs'], { cwd: ROOT });
    agent = await startAgentProcess();
    admin = await AgentClient.connect(agent.url, { token: agent.token });
    text.Container = await serializeProvider(containerProvider);
    text.Snapshot = await serializeProvider(snapshotProvider);
    text.SyncFromSnapshot = await serializeProvider(syncProvider);
    plugin = await DynamicProviderPlugin.start({ cwd: ROOT });
    await plugin.configure({ 'snapsync:url': agent.url, 'snapsync:token': agent.token });
    await admin.call('createContainer', {
      name: 'legacy-disk',
      type: 'vdisk',
      size: 65536,
      labels: { team: 'db' },
    });
    await admin.call('createContainer', { name: 'legacy', type: 'vm', labels: {} });
    await admin.call('addMember', { vm: 'legacy', role: 'disk0', member: 'legacy-disk' });
    await admin.call('snapshot', { container: 'legacy', name: 'golden', labels: { keep: 'yes' } });
  });
  after(async () => {
    plugin?.stop();
    await admin?.close();
    await agent?.stop();
    cleanupTempDirs();
  });

  it('Container.get by name and by uuid: every output from the agent', async () => {
    const disk = await admin.call('describe', { container: 'legacy-disk' });
    for (const id of ['legacy-disk', disk.uuid]) {
      const got = await plugin.read(urn('Container', 'adopted'), id, { __provider: text.Container }, {});
      assert.equal(got.id, disk.uuid);
      assert.deepEqual(
        { ...got.properties, __provider: undefined },
        {
          __provider: undefined,
          name: 'legacy-disk',
          type: 'vdisk',
          size: 65536,
          labels: { team: 'db' },
          uuid: disk.uuid,
          generation: 0,
          parentSnapshot: 'legacy-disk@golden', // the VM snapshot's member snapshot
          // A clone's identity report: none for a container the stack did not clone.
          identity: [],
          references: [],
          warnings: [],
        },
      );
    }
    const vm = await plugin.read(urn('Container', 'vm'), 'legacy', { __provider: text.Container }, {});
    assert.deepEqual(vm.properties.members, { disk0: 'legacy-disk' });
    assert.equal(vm.properties.type, 'vm');
    const none = await plugin.read(urn('Container', 'x'), 'no-such', { __provider: text.Container }, {});
    assert.equal(none.id, '', 'a get of a missing container finds nothing');
  });

  it('Snapshot.get by container@name and by uuid', async () => {
    const snap = await admin.call('describeSnapshot', { snapshot: 'legacy@golden' });
    for (const id of ['legacy@golden', snap.uuid]) {
      const got = await plugin.read(urn('Snapshot', 'golden'), id, { __provider: text.Snapshot }, {});
      assert.equal(got.id, snap.uuid);
      const { __provider: _p, createdAt, ...rest } = got.properties;
      assert.equal(createdAt, snap.createdAt);
      assert.deepEqual(rest, {
        container: 'legacy',
        name: 'golden',
        labels: { keep: 'yes' },
        ref: 'legacy@golden',
        uuid: snap.uuid,
        snapshotId: snap.id,
        size: snap.size,
        memberRoles: ['disk0'],
      });
    }
  });

  it('SyncFromSnapshot.get of a VM synced by hand: snapshot, member ids, generation, safety snapshot', async () => {
    await admin.call('createContainer', { name: 'copy', type: 'vm', labels: {} });
    const synced = await admin.call('sync', {
      target: 'copy',
      source: 'legacy@golden',
      safetySnapshot: true,
    });
    const copy = await admin.call('describe', { container: 'copy' });
    const snap = await admin.call('describeSnapshot', { snapshot: 'legacy@golden' });
    for (const id of ['copy', copy.uuid]) {
      const got = await plugin.read(
        urn('SyncFromSnapshot', 'adopted'),
        id,
        { __provider: text.SyncFromSnapshot },
        {},
      );
      assert.equal(got.id, copy.uuid);
      const { __provider: _p, ...rest } = got.properties;
      assert.deepEqual(rest, {
        target: 'copy',
        snapshot: 'legacy@golden',
        preserved: {},
        restored: [],
        identity: [],
        references: [],
        warnings: [],
        safetySnapshotRef: `copy@${synced.safetySnapshot!.name}`,
        generation: copy.generation,
        sourceSnapshotUuid: snap.uuid,
        sourceSnapshotIds: { disk0: snap.members.disk0 },
        targetUuid: copy.uuid,
        inSync: true,
        drift: null,
      });
      // The adopted state refreshes as in sync (the same drift check a created sync gets).
      const again = await plugin.read(urn('SyncFromSnapshot', 'adopted'), got.id, got.properties, {});
      assert.equal(again.properties.inSync, true);
    }
    const plain = await plugin.read(
      urn('SyncFromSnapshot', 'x'),
      'legacy-disk',
      { __provider: text.SyncFromSnapshot },
      {},
    );
    assert.equal(plain.id, '', 'a container never synced has no sync to adopt');
  });

  it('the import option’s Read carries no properties: the dynamic-provider plugin cannot serve it', async () => {
    // What the engine's ImportStep sends (pkg/resource/deploy/step.go: Read with no Inputs and no State).
    await assert.rejects(
      plugin.read(urn('Container', 'imported'), 'legacy-disk', {}, {}),
      /code must be a string/,
    );
  });

  it('the import option as the __import input: check compares with the object, create adopts it', async () => {
    const disk = await admin.call('describe', { container: 'legacy-disk' });
    const declared = {
      __provider: text.Container,
      name: 'legacy-disk',
      type: 'vdisk',
      size: 65536,
      labels: { team: 'db' },
    };
    for (const id of ['legacy-disk', disk.uuid]) {
      const checked = await plugin.check(urn('Container', 'disk'), {}, { ...declared, __import: id });
      assert.deepEqual(checked.failures, []);
    }
    const mismatch = await plugin.check(
      urn('Container', 'disk'),
      {},
      { ...declared, type: 'file', labels: { team: 'web' }, __import: 'legacy-disk' },
    );
    assert.deepEqual(
      mismatch.failures.map((f) => f.reason),
      [
        'snapsync import of "legacy-disk" failed: [IMPORT_MISMATCH] the declared inputs differ from the existing container "legacy-disk" (type: declared "file", the agent has "vdisk"; labels: declared {"team":"web"}, the agent has {"team":"db"}): declare what the agent has and change it after the import (remove the `import` option once imported)',
      ],
    );
    const vm = await plugin.check(
      urn('Container', 'vm'),
      {},
      { __provider: text.Container, name: 'legacy', type: 'vm', __import: 'legacy' },
    );
    assert.match(vm.failures[0]!.reason, /members: declared \{\}, the agent has \{"disk0":"legacy-disk"\}/);
    const missing = await plugin.check(urn('Container', 'x'), {}, { ...declared, __import: 'no-such' });
    assert.match(missing.failures[0]!.reason, /\[NOT_FOUND\] container "no-such" does not exist/);

    const before = await admin.call('listContainers', {});
    const created = await plugin.create(urn('Container', 'disk'), { ...declared, __import: disk.uuid });
    assert.deepEqual(await admin.call('listContainers', {}), before, 'nothing created on the agent');
    assert.equal(created.id, disk.uuid);
    assert.equal(created.properties.__import, undefined, 'the import id is no output');
    assert.equal(created.properties.generation, disk.generation);
    // Without the option, or with it kept: no change.
    for (const news of [declared, { ...declared, __import: disk.uuid }]) {
      const diff = await plugin.diff(urn('Container', 'disk'), created.id, created.properties, news);
      assert.equal(diff.changes, 'none');
    }
    // An update while the program still carries the option: the id is no output.
    const grown = await plugin.update(urn('Container', 'disk'), created.id, created.properties, {
      ...declared,
      size: 131072,
      __import: disk.uuid,
    });
    assert.equal(grown.properties.size, 131072);
    assert.equal(grown.properties.__import, undefined);
  });

  it('the import option for a snapshot (by uuid) and a sync (by target, with members)', async () => {
    const snap = await admin.call('describeSnapshot', { snapshot: 'legacy@golden' });
    const snapshot = await plugin.create(urn('Snapshot', 'golden'), {
      __provider: text.Snapshot,
      container: 'legacy',
      name: 'golden',
      labels: { keep: 'yes' },
      __import: snap.uuid,
    });
    assert.equal(snapshot.id, snap.uuid);
    assert.deepEqual(snapshot.properties.memberRoles, ['disk0']);

    await admin.call('createContainer', { name: 'copy2', type: 'vm', labels: {} });
    await admin.call('sync', { target: 'copy2', source: 'legacy@golden', safetySnapshot: false });
    const copy = await admin.call('describe', { container: 'copy2' });
    const declared = {
      __provider: text.SyncFromSnapshot,
      target: 'copy2',
      snapshot: 'legacy@golden',
      members: ['disk0'],
      onDelete: 'keep',
      __import: 'copy2',
    };
    const wrong = await plugin.check(
      urn('SyncFromSnapshot', 'copy'),
      {},
      { ...declared, snapshot: 'legacy-disk@golden', members: ['config'] },
    );
    assert.match(
      wrong.failures[0]!.reason,
      /\[IMPORT_MISMATCH\] .*\(snapshot: declared "legacy-disk@golden", the agent has "legacy@golden"; members: declared "config", that member does not descend from legacy@golden\)/,
    );
    assert.deepEqual((await plugin.check(urn('SyncFromSnapshot', 'copy'), {}, declared)).failures, []);
    const sync = await plugin.create(urn('SyncFromSnapshot', 'copy'), declared);
    assert.equal(sync.id, copy.uuid);
    assert.equal(
      (await admin.call('describe', { container: 'copy2' })).generation,
      copy.generation,
      'no sync ran',
    );
    assert.deepEqual(sync.properties.sourceSnapshotIds, { disk0: snap.members.disk0 });
    assert.equal(sync.properties.onDelete, 'keep');
    const { __import: _i, ...withoutOption } = declared;
    const diff = await plugin.diff(urn('SyncFromSnapshot', 'copy'), sync.id, sync.properties, withoutOption);
    assert.equal(diff.changes, 'none');
  });
});
