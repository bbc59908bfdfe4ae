/**
 * The provider as `pulumi up` runs it: the dynamic-provider plugin shipped in
 * @pulumi/pulumi, driven over gRPC with the serialized providers
 * (Configure/Check/Diff/Create/Read/Update/Delete), against a real agent
 * process over WebSocket.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { CMD } from '../../agent/nbd/constants';
import { provider as containerProvider } from '../../provider/container';
import { provider as snapshotProvider } from '../../provider/snapshot';
import { provider as syncProvider } from '../../provider/sync-from-snapshot';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { DynamicProviderPlugin, serializeProvider } from '../helpers/dynamic-provider';
import { cleanupTempDirs } from '../helpers/tmp';
import { RawClient } from '../nbd/helpers/raw-client';

const ROOT = path.resolve(__dirname, '../..');
const urn = (type: string, name: string) =>
  `urn:pulumi:staging::refresh-staging::pulumi-nodejs:dynamic/snapsync:${type}::${name}`;

describe('provider through the real dynamic-provider plugin and a real agent', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  let agent: AgentProcess;
  let plugin: DynamicProviderPlugin;
  let admin: AgentClient;
  const text: Record<string, string> = {};
  const everything: unknown[] = [];

  before(async () => {
    // The plugin loads the built runtime (provider/dist) from the project's node_modules, as a user's program would.
    execFileSync(process.execPath, ['scripts/build-provider.mjs'], { cwd: ROOT });
    agent = await startAgentProcess({ args: ['--nbd', '127.0.0.1:0', '--nbd-insecure-no-auth'] });
    admin = await AgentClient.connect(agent.url, { token: agent.token });
    text.container = await serializeProvider(containerProvider);
    text.snapshot = await serializeProvider(snapshotProvider);
    text.sync = await serializeProvider(syncProvider);
    plugin = await DynamicProviderPlugin.start({ cwd: ROOT });
    await plugin.configure({ 'snapsync:url': agent.url, 'snapsync:token': agent.token });
  });
  after(async () => {
    plugin?.stop();
    await admin?.close();
    await agent?.stop();
    cleanupTempDirs();
  });

  /** Check then Create, as the engine does for a new resource. */
  async function up(
    type: 'Container' | 'Snapshot' | 'SyncFromSnapshot',
    name: string,
    inputs: Record<string, unknown>,
  ) {
    const key = type === 'Container' ? 'container' : type === 'Snapshot' ? 'snapshot' : 'sync';
    const checked = await plugin.check(urn(type, name), {}, { ...inputs, __provider: text[key] });
    assert.deepEqual(checked.failures, []);
    const created = await plugin.create(urn(type, name), checked.inputs);
    everything.push(created.properties);
    return { ...created, inputs: checked.inputs };
  }

  it('the serialized providers are small stubs without the token', () => {
    for (const t of Object.values(text)) {
      assert.ok(!t.includes(agent.token));
      assert.match(t, /@snapsync\/pulumi\/dist\/runtime\.js/);
    }
  });

  it('refresh-staging, the full life: create, no-op, re-sync in place, drift, delete', async () => {
    for (const env of ['prod', 'staging']) {
      await up('Container', `${env}-disk0`, { name: `${env}-disk0`, type: 'vdisk', size: 1 << 20 });
      await up('Container', `${env}-config`, { name: `${env}-config`, type: 'file' });
      await up('Container', env, {
        name: env,
        type: 'vm',
        members: { config: `${env}-config`, disk0: `${env}-disk0` },
      });
    }
    await admin.write('prod-disk0', 0, Buffer.from('production v1'));
    const nightly1 = await up('Snapshot', 'nightly', { container: 'prod', name: 'nightly-1' });
    assert.equal(nightly1.properties.ref, 'prod@nightly-1');

    const syncInputs = { target: 'staging', snapshot: 'prod@nightly-1', onDelete: 'revert' };
    const sync = await up('SyncFromSnapshot', 'refresh', syncInputs);
    assert.equal((await admin.read('staging-disk0', 0, 13)).toString(), 'production v1');
    assert.equal(sync.properties.generation, 1);
    assert.equal(sync.properties.inSync, true);

    // Same inputs: no change.
    const same = await plugin.check(urn('SyncFromSnapshot', 'refresh'), sync.inputs, {
      ...syncInputs,
      __provider: text.sync,
    });
    assert.equal(
      (await plugin.diff(urn('SyncFromSnapshot', 'refresh'), sync.id, sync.properties, same.inputs)).changes,
      'none',
    );

    // A new nightly snapshot: an update (re-sync), not a replace.
    await admin.write('prod-disk0', 0, Buffer.from('production v2'));
    const nightly2 = await up('Snapshot', 'nightly-next', { container: 'prod', name: 'nightly-2' });
    const next = { ...syncInputs, snapshot: nightly2.properties.ref, __provider: text.sync };
    const diff = await plugin.diff(urn('SyncFromSnapshot', 'refresh'), sync.id, sync.properties, next);
    assert.equal(diff.changes, 'some');
    assert.deepEqual(diff.replaces, []);
    const updated = await plugin.update(urn('SyncFromSnapshot', 'refresh'), sync.id, sync.properties, next);
    everything.push(updated.properties);
    assert.equal((await admin.read('staging-disk0', 0, 13)).toString(), 'production v2');
    assert.equal(updated.properties.generation, 2);

    // Refresh: in sync, then drift after an out-of-band re-sync.
    const fresh = await plugin.read(urn('SyncFromSnapshot', 'refresh'), sync.id, updated.properties, next);
    assert.equal(fresh.properties.inSync, true);
    await admin.call('sync', { target: 'staging', source: 'prod@nightly-1' });
    const drifted = await plugin.read(urn('SyncFromSnapshot', 'refresh'), sync.id, updated.properties, next);
    everything.push(drifted.properties);
    assert.equal(drifted.properties.inSync, false);
    assert.match(String(drifted.properties.drift), /no longer descends from prod@nightly-2/);
    // The recorded drift is a change: refresh shows it, and the next up re-syncs.
    const driftDiff = await plugin.diff(
      urn('SyncFromSnapshot', 'refresh'),
      sync.id,
      drifted.properties,
      next,
    );
    assert.equal(driftDiff.changes, 'some');
    assert.deepEqual(driftDiff.replaces, []);
    const resynced = await plugin.update(
      urn('SyncFromSnapshot', 'refresh'),
      sync.id,
      drifted.properties,
      next,
    );
    everything.push(resynced.properties);
    assert.equal((await admin.read('staging-disk0', 0, 13)).toString(), 'production v2');
    assert.equal(resynced.properties.inSync, true);
    assert.equal(resynced.properties.generation, 4);
    // A re-sync to a newer snapshot of the same source is drift too (the old one is still below it).
    await admin.call('snapshot', { container: 'prod', name: 'manual' });
    await admin.call('sync', { target: 'staging', source: 'prod@manual' });
    const newer = await plugin.read(urn('SyncFromSnapshot', 'refresh'), sync.id, resynced.properties, next);
    assert.equal(newer.properties.inSync, false);
    assert.match(
      String(newer.properties.drift),
      /no longer descends from prod@nightly-2 \(it now descends from prod-\w+@manual\)/,
    );

    // Delete with onDelete: revert goes back to the state before the last provider sync (the drifted one).
    await plugin.delete(urn('SyncFromSnapshot', 'refresh'), sync.id, resynced.properties);
    assert.equal((await admin.read('staging-disk0', 0, 13)).toString(), 'production v1');
    await plugin.delete(urn('SyncFromSnapshot', 'refresh'), sync.id, resynced.properties); // idempotent
  });

  it('Container: resize updates in place, a new name replaces, delete is idempotent', async () => {
    const disk = await up('Container', 'scratch', { name: 'scratch', type: 'vdisk', size: 4096 });
    assert.equal(
      (await plugin.diff(urn('Container', 'scratch'), disk.id, disk.properties, disk.inputs)).changes,
      'none',
    );
    const bigger = { ...disk.inputs, size: 8192 };
    assert.deepEqual(
      (await plugin.diff(urn('Container', 'scratch'), disk.id, disk.properties, bigger)).replaces,
      [],
    );
    const resized = await plugin.update(urn('Container', 'scratch'), disk.id, disk.properties, bigger);
    assert.equal(resized.properties.size, 8192);
    // Refresh of a vdisk (no members): a size changed by hand shows in the read state.
    await admin.call('resize', { container: 'scratch', size: 16384 });
    const refreshed = await plugin.read(urn('Container', 'scratch'), disk.id, resized.properties, bigger);
    assert.equal(refreshed.properties.size, 16384);
    assert.equal(refreshed.inputs.size, 16384);
    assert.equal('members' in refreshed.properties, false);
    await admin.call('resize', { container: 'scratch', size: 8192, shrink: true });
    assert.deepEqual(
      (
        await plugin.diff(urn('Container', 'scratch'), disk.id, disk.properties, {
          ...disk.inputs,
          name: 'scratch2',
        })
      ).replaces,
      ['name'],
    );
    await plugin.delete(urn('Container', 'scratch'), disk.id, resized.properties);
    await plugin.delete(urn('Container', 'scratch'), disk.id, resized.properties);
    assert.ok(!(await admin.call('listContainers', {})).some((c) => c.name === 'scratch'));
  });

  it("Container beyond the pool's capacity: created and grown, each with an OVERCOMMITTED warning the plugin logs", async () => {
    const GiB = 2 ** 30; // the agent's pool holds 1 GiB
    const big = await up('Container', 'big', { name: 'pulumi-big', type: 'vdisk', size: 100 * GiB });
    assert.match(
      plugin.stderr(),
      /warning: snapsync: container "pulumi-big": \[OVERCOMMITTED\] the pool's containers now declare 100\.\d GiB on 1\.0 GiB of capacity/,
    );
    const bigger = { ...big.inputs, size: 200 * GiB };
    const grown = await plugin.update(urn('Container', 'big'), big.id, big.properties, bigger);
    assert.match(plugin.stderr(), /container "pulumi-big": \[OVERCOMMITTED\] .* declare 200\.\d GiB/);
    await plugin.delete(urn('Container', 'big'), big.id, grown.properties);
  });

  it('Snapshot: read, no change on the same inputs, replace on a new name, delete', async () => {
    await up('Container', 'snap-src', { name: 'snap-src', type: 'vdisk', size: 4096 });
    const snap = await up('Snapshot', 'daily', { container: 'snap-src', name: 'day-1' });
    const read = await plugin.read(urn('Snapshot', 'daily'), snap.id, snap.properties, snap.inputs);
    assert.equal(read.properties.uuid, snap.id);
    assert.equal(
      (await plugin.diff(urn('Snapshot', 'daily'), snap.id, snap.properties, snap.inputs)).changes,
      'none',
    );
    const renamed = await plugin.diff(urn('Snapshot', 'daily'), snap.id, snap.properties, {
      ...snap.inputs,
      name: 'day-2',
    });
    assert.deepEqual(
      [renamed.changes, renamed.replaces, renamed.deleteBeforeReplace],
      ['some', ['name'], false],
    );
    await plugin.delete(urn('Snapshot', 'daily'), snap.id, snap.properties);
    const gone = await plugin.read(urn('Snapshot', 'daily'), snap.id, snap.properties, snap.inputs);
    assert.equal(gone.id, '', 'refresh drops a snapshot deleted out of band');
    await plugin.delete(urn('Snapshot', 'daily'), snap.id, snap.properties); // idempotent
  });

  it('a resource can name another agent (several hosts in one stack)', async () => {
    const second = await startAgentProcess();
    try {
      const multi = await DynamicProviderPlugin.start({ cwd: ROOT });
      try {
        await multi.configure({
          'snapsync:url': agent.url,
          'snapsync:token': agent.token,
          'snapsync:agents': JSON.stringify({ [second.url]: { token: second.token } }),
        });
        const inputs = {
          name: 'on-host-2',
          type: 'vdisk',
          size: 4096,
          agentUrl: second.url,
          __provider: text.container,
        };
        const created = await multi.create(urn('Container', 'on-host-2'), inputs);
        const other = await AgentClient.connect(second.url, { token: second.token });
        assert.equal((await other.call('describe', { container: 'on-host-2' })).uuid, created.id);
        await other.close();
        assert.ok(!(await admin.call('listContainers', {})).some((c) => c.name === 'on-host-2'));
        // A host not listed in snapsync:agents never gets the default token.
        await assert.rejects(
          multi.create(urn('Container', 'on-host-3'), {
            ...inputs,
            name: 'on-host-3',
            agentUrl: 'ws://127.0.0.1:9',
          }),
          /connect of "on-host-3" failed: .*no credentials for agent ws:\/\/127\.0\.0\.1:9: add it to snapsync:agents/,
        );
      } finally {
        multi.stop();
      }
    } finally {
      await second.stop();
    }
  });

  it('check explains bad inputs; errors name the operation, the container and the code', async () => {
    const bad = await plugin.check(
      urn('Container', 'x'),
      {},
      { name: 'no spaces allowed', type: 'disk', __provider: text.container },
    );
    assert.deepEqual(bad.failures.map((f) => f.property).sort(), ['name', 'type']);
    await assert.rejects(
      plugin.create(urn('Snapshot', 'ghost'), { container: 'ghost', name: 'n', __provider: text.snapshot }),
      /snapsync snapshot of "ghost" failed: \[NOT_FOUND\]/,
    );
  });

  it('a refresh while the staging disk is attached fails naming the session; whenAttached: disconnect proceeds', async () => {
    await up('Container', 'att-prod', { name: 'att-prod', type: 'vdisk', size: 1 << 20 });
    await up('Container', 'att-staging', { name: 'att-staging', type: 'vdisk', size: 1 << 20 });
    await admin.write('att-prod', 0, Buffer.from('prod v1'));
    await up('Snapshot', 'att-n1', { container: 'att-prod', name: 'n1' });
    const sync = await up('SyncFromSnapshot', 'att-refresh', {
      target: 'att-staging',
      snapshot: 'att-prod@n1',
    });
    await admin.write('att-prod', 0, Buffer.from('prod v2'));
    await up('Snapshot', 'att-n2', { container: 'att-prod', name: 'n2' });

    // A running VM: its disk open read-write over NBD, with a write it was acknowledged.
    const { client: vm } = await RawClient.open(Number(new URL(agent.nbd!).port), 'att-staging', {
      structured: false,
    });
    vm.request(CMD.WRITE, 0, 4096, 4, Buffer.from('vm!!'));
    assert.equal((await vm.reply()).error, 0);
    const [session] = (await admin.call('sessions', { container: 'att-staging' })).sessions;
    const next = { target: 'att-staging', snapshot: 'att-prod@n2', __provider: text.sync };
    await assert.rejects(
      plugin.update(urn('SyncFromSnapshot', 'att-refresh'), sync.id, sync.properties, next),
      (err: Error) => {
        assert.match(err.message, /snapsync sync of "att-staging" failed: \[IN_USE\]/);
        assert.ok(err.message.includes(session!.id), err.message);
        assert.ok(err.message.includes(session!.client), err.message);
        assert.match(err.message, /read-write on att-staging/);
        assert.match(err.message, /whenAttached: 'disconnect'/);
        assert.doesNotMatch(err.message, /CLI --force|pass force/, 'the agent CLI flag is no way out here');
        assert.match(err.message, /stop the VM/);
        assert.match(err.message, /snapsync-agent unfence/);
        return true;
      },
    );
    assert.equal((await admin.read('att-staging', 0, 7)).toString(), 'prod v1', 'nothing changed');
    assert.equal((await admin.read('att-staging', 4096, 4)).toString(), 'vm!!');

    const forced = { ...next, whenAttached: 'disconnect' };
    const checked = await plugin.check(urn('SyncFromSnapshot', 'att-refresh'), sync.inputs, forced);
    assert.deepEqual(checked.failures, []);
    const updated = await plugin.update(
      urn('SyncFromSnapshot', 'att-refresh'),
      sync.id,
      sync.properties,
      forced,
    );
    everything.push(updated.properties);
    assert.equal((await admin.read('att-staging', 0, 7)).toString(), 'prod v2');
    await vm.closed; // the agent disconnected it
    // The VM's acknowledged write is in the safety snapshot the sync kept.
    const safety = String(updated.properties.safetySnapshotRef);
    const snap = safety.slice(safety.indexOf('@') + 1);
    assert.equal((await admin.read('att-staging', 4096, 4, snap)).toString(), 'vm!!');
    assert.deepEqual((await admin.call('sessions', { container: 'att-staging' })).sessions, []);
    // The disconnected disk stays fenced: the provider never lifts it (the operator stops the VM, then unfences).
    assert.deepEqual(
      (await admin.call('sessions', { container: 'att-staging' })).fences?.map((f) => f.op),
      ['sync'],
    );
  });

  it('no output carries the token', () => {
    assert.ok(everything.length > 5);
    for (const outputs of everything) assert.ok(!JSON.stringify(outputs).includes(agent.token));
  });
});
