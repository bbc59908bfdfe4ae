/**
 * The provider runtime's resource logic against a real engine pool (in
 * process; the plugin-and-agent tests drive the same code over gRPC and
 * WebSocket): diff decisions, in-place re-sync, drift on refresh, idempotent
 * retries, onDelete, and check failures.
 */
import * as assert from 'node:assert/strict';
import { Pool } from '../../agent/engine';
import * as runtime from '../../provider/runtime';
import type { ContainerOutputs } from '../../provider/runtime/container';
import { UNKNOWN } from '../../provider/runtime/inputs';
import type { SyncOutputs } from '../../provider/runtime/sync-from-snapshot';
import { EngineAgent } from '../helpers/engine-agent';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const MiB = 1 << 20;

/** A golden VM whose config names its disk by its container name and a network the clone must be given its own of. */
const GOLDEN_VMX = [
  '.encoding = "UTF-8"',
  'displayName = "web"',
  'scsi0:0.deviceType = "scsi-hardDisk"',
  'scsi0:0.fileName = "golden-web-disk0.vmdk"',
  'ethernet0.networkName = "build-net"',
  'ethernet0.addressType = "generated"',
  'ethernet0.generatedAddress = "00:0c:29:4a:7b:01"',
  'uuid.bios = "56 4d 8e 21 0c 3a 9f 11-4b 77 2a 10 c3 e9 01 aa"',
  '',
].join('\n');

describe('provider runtime (resource logic on a real engine)', () => {
  let pool: Pool;
  let agent: EngineAgent;

  beforeEach(async () => {
    pool = Pool.create(tempDir(), { blockSize: 65536, capacityBytes: 1 << 30 });
    agent = new EngineAgent(pool);
    runtime.setConnector(async () => agent);
    await runtime.configure({ get: (key) => ({ 'snapsync:url': 'ws://127.0.0.1:1' })[key] });
  });
  afterEach(async () => {
    runtime.setConnector(null);
    await pool.close();
  });
  after(cleanupTempDirs);

  it('Container: create, update size and labels in place, replace on name or type, delete idempotently', async () => {
    const inputs = { name: 'disk', type: 'vdisk' as const, size: MiB, labels: { env: 'prod' } };
    const { id, outs } = await runtime.container.create(inputs);
    assert.equal(id, pool.describe('disk').uuid);
    assert.equal(outs.generation, 0);
    const grown = { ...inputs, size: 2 * MiB, labels: { env: 'prod', tier: 'db' } };
    assert.deepEqual(await runtime.container.diff(id, outs, grown), {
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    assert.deepEqual((await runtime.container.diff(id, outs, { ...inputs, name: 'disk2' })).replaces, [
      'name',
    ]);
    const retyped = await runtime.container.diff(id, outs, { ...inputs, type: 'file' });
    assert.deepEqual(
      [retyped.replaces, retyped.deleteBeforeReplace],
      [['type'], true],
      'same name: delete first',
    );
    assert.equal((await runtime.container.diff(id, outs, inputs)).changes, false);
    assert.equal(
      (await runtime.container.diff(id, outs, { ...inputs, size: UNKNOWN as never })).changes,
      true,
    );
    await runtime.container.update(id, outs, grown);
    assert.equal(pool.describe('disk').size, 2 * MiB);
    assert.deepEqual(pool.describe('disk').labels, { env: 'prod', tier: 'db' });
    await assert.rejects(runtime.container.update(id, outs, { ...grown, size: MiB }), /INVALID_ARGUMENT/);
    await runtime.container.remove(id, outs);
    await runtime.container.remove(id, outs); // idempotent
    assert.deepEqual(pool.listContainers(), []);
  });

  it('Container: a VM with members; refresh reports labels changed out of band', async () => {
    await runtime.container.create({ name: 'vm-disk0', type: 'vdisk', size: MiB });
    const vm = await runtime.container.create({ name: 'vm', type: 'vm', members: { disk0: 'vm-disk0' } });
    assert.deepEqual(pool.describe('vm').members, { disk0: 'vm-disk0' });
    pool.setLabels('vm', { touched: 'by-hand' });
    const read = await runtime.container.read(vm.id, vm.outs as never);
    assert.deepEqual((read.inputs as { labels: object }).labels, { touched: 'by-hand' });
    await runtime.container.remove(vm.id, vm.outs as never);
    assert.equal(pool.describe('vm-disk0').memberOf, null, 'members are left to their own resources');
  });

  it('Container deleted and created again by hand: as declared, refresh adopts it (new uuid) and its sync drifts; otherwise NAME_TAKEN naming the way out', async () => {
    pool.createContainer({ name: 'prod', type: 'vdisk', size: MiB });
    pool.snapshot('prod', 'n1');
    const declared = { name: 'staging', type: 'vdisk' as const, size: MiB, labels: { env: 'staging' } };
    const staging = await runtime.container.create(declared);
    const sync = await runtime.syncFromSnapshot.create({ target: 'staging', snapshot: 'prod@n1' });
    const syncState = (await runtime.syncFromSnapshot.read(sync.id, sync.outs as never)).props as SyncOutputs;
    pool.deleteContainer('staging', { recursive: true });
    const again = pool.createContainer({
      name: 'staging',
      type: 'vdisk',
      size: MiB,
      labels: { env: 'staging' },
    });
    const read = await runtime.container.read(staging.id, staging.outs as never);
    assert.equal(read.id, again.uuid, 'the resource is the container the name holds now');
    const drifted = (await runtime.syncFromSnapshot.read(sync.id, syncState as never)).props as SyncOutputs;
    assert.equal(drifted.inSync, false);
    assert.equal(drifted.targetUuid, again.uuid);
    assert.match(String(drifted.drift), /"staging" was deleted and created again/);
    assert.equal(
      (await runtime.syncFromSnapshot.diff(sync.id, drifted, { target: 'staging', snapshot: 'prod@n1' }))
        .changes,
      true,
    );

    pool.deleteContainer('staging');
    const handMade = pool.createContainer({ name: 'staging', type: 'vdisk', size: 2 * MiB });
    await assert.rejects(
      runtime.container.read(again.uuid, { ...(read.props as ContainerOutputs) }),
      (err: Error) => {
        assert.match(err.message, /\[NAME_TAKEN\] "staging" is no longer the container this resource made/);
        assert.match(
          err.message,
          /size: declared 1048576, the agent has 2097152; labels: declared \{"env":"staging"\}, the agent has \{\}/,
        );
        assert.match(err.message, /snapsync-agent rm staging/);
        assert.match(err.message, /`import: 'staging'`/);
        return true;
      },
    );
    assert.equal(pool.describe('staging').uuid, handMade.uuid, 'nothing changed');
  });

  it('Snapshot taken again by hand with other labels: refresh fails NAME_TAKEN naming it, why and the way out', async () => {
    pool.createContainer({ name: 'prod', type: 'vdisk', size: MiB });
    const snap = await runtime.snapshot.create({
      container: 'prod',
      name: 'n1',
      labels: { kind: 'nightly' },
    });
    pool.deleteSnapshot('prod@n1');
    pool.snapshot('prod', 'n1', { labels: { kind: 'debug' } });
    await assert.rejects(runtime.snapshot.read(snap.id, snap.outs as never), (err: Error) => {
      assert.match(err.message, /\[NAME_TAKEN\] "prod@n1" is no longer the snapshot this resource took/);
      assert.match(err.message, /labels: declared \{"kind":"nightly"\}, the agent has \{"kind":"debug"\}/);
      assert.match(
        err.message,
        /snapsync-agent rm prod@n1 && snapsync-agent snapshot prod n1 --label kind=nightly/,
      );
      return true;
    });
  });

  it("Container: a member disk's resource deleted before its VM's update (a plan's order) leaves the VM, also after a sync", async () => {
    const root = await runtime.container.create({ name: 'app-root', type: 'vdisk', size: MiB });
    const scratch = await runtime.container.create({ name: 'app-scratch', type: 'vdisk', size: MiB });
    await runtime.container.create({
      name: 'app',
      type: 'vm',
      members: { root: 'app-root', scratch: 'app-scratch' },
    });
    pool.snapshot('app', 'nightly'); // a VM snapshot holds the member too, as every sync's safety snapshot does
    await runtime.container.remove(scratch.id, scratch.outs as never);
    assert.deepEqual(pool.describe('app').members, { root: 'app-root' });
    assert.throws(() => pool.describe('app-scratch'), /NOT_FOUND|does not exist/);
    assert.deepEqual(Object.keys(pool.describeSnapshot('app@nightly').members), ['root']);
    assert.equal(pool.describe('app-root').uuid, root.id, 'the other member is untouched');
    assert.equal((await pool.fsck()).ok, true);
  });

  it('created again after a delete (destroy, then up) with the same inputs: not answered from the old key', async () => {
    const disk = { name: 'disk', type: 'vdisk' as const, size: MiB };
    const first = await runtime.container.create(disk);
    await runtime.container.remove(first.id, first.outs as never);
    const again = await runtime.container.create(disk);
    assert.notEqual(again.id, first.id);
    assert.equal(pool.describe('disk').uuid, again.id);

    const vmInputs = { name: 'vm', type: 'vm' as const, members: { disk0: 'disk' } };
    const vm = await runtime.container.create(vmInputs);
    await runtime.container.remove(vm.id, vm.outs as never);
    const vmAgain = await runtime.container.create(vmInputs);
    assert.equal(pool.describe('vm').uuid, vmAgain.id);
    assert.deepEqual(
      pool.describe('vm').members,
      { disk0: 'disk' },
      'the member is added again, not replayed',
    );

    const snapInputs = { container: 'disk', name: 'nightly' };
    const snap = await runtime.snapshot.create(snapInputs);
    await runtime.snapshot.remove(snap.id, snap.outs as never);
    const snapAgain = await runtime.snapshot.create(snapInputs);
    assert.notEqual(snapAgain.id, snap.id);
    assert.equal(pool.describeSnapshot('disk@nightly').uuid, snapAgain.id);
  });

  it('Container create is all or nothing; no labels declared and none on the agent is no drift', async () => {
    await assert.rejects(
      runtime.container.create({ name: 'vm', type: 'vm', members: { disk0: 'missing' } }),
      /create of "vm" failed: \[NOT_FOUND\] container "missing" does not exist/,
    );
    assert.deepEqual(pool.listContainers(), [], 'no VM was made: its members are checked in the same call');
    const disk = await runtime.container.create({ name: 'disk', type: 'vdisk', size: MiB });
    pool.snapshot('disk', 's');
    await assert.rejects(
      runtime.container.create({ name: 'copy', type: 'file', fromSnapshot: 'disk@s' }),
      /clone of "copy" failed: \[TYPE_MISMATCH\] disk@s is a snapshot of a vdisk, not a file/,
    );
    assert.deepEqual(
      pool.listContainers().map((c) => c.name),
      ['disk'],
      'nothing cloned',
    );
    const read = await runtime.container.read(disk.id, disk.outs as never);
    const diff = await runtime.container.diff(disk.id, read.props as never, {
      name: 'disk',
      type: 'vdisk',
      size: MiB,
    });
    assert.equal(diff.changes, false);
  });

  it('check: failures name the property; unknown values pass until known', async () => {
    const bad = await runtime.container.check({}, { name: '../x', type: 'disk', size: -1 });
    assert.deepEqual(bad.failures?.map((f) => f.property).sort(), ['name', 'size', 'type']);
    assert.match(bad.failures!.find((f) => f.property === 'name')!.reason, /name must match pattern/);
    const preview = await runtime.container.check({}, { name: UNKNOWN, type: 'vdisk', size: UNKNOWN });
    assert.deepEqual(preview.failures, []);
    const sync = await runtime.syncFromSnapshot.check(
      {},
      { target: 't', snapshot: 'no-at-sign', onDelete: 'revert', safetySnapshot: false },
    );
    assert.deepEqual(sync.failures?.map((f) => f.property).sort(), ['onDelete', 'snapshot']);
    // The snapshot unknown (as in a preview), so only the schema check runs, not the agent preflight.
    for (const [resource, inputs] of [
      [runtime.syncFromSnapshot, { target: 't', snapshot: UNKNOWN }],
      [runtime.container, { name: 'x', type: 'vdisk', size: 4096 }],
    ] as const) {
      const wrong = await resource.check({}, { ...inputs, whenAttached: 'detach' });
      assert.deepEqual(
        wrong.failures?.map((f) => f.property),
        ['whenAttached'],
      );
      assert.deepEqual((await resource.check({}, { ...inputs, whenAttached: 'disconnect' })).failures, []);
    }
  });

  it("Container fromSnapshot of a VM naming a network: refused until referenceMap maps it (in the resource's words); the identity outputs show the clone's own; the options replace", async () => {
    agent = new EngineAgent(pool, true); // the identity hooks run on clones, as the agent's
    runtime.setConnector(async () => agent);
    pool.createContainer({ name: 'golden-web-config', type: 'file' });
    pool.write('golden-web-config', 0, Buffer.from(GOLDEN_VMX));
    pool.createContainer({ name: 'golden-web-disk0', type: 'vdisk', size: MiB });
    pool.createContainer({ name: 'golden-web', type: 'vm' });
    pool.addMember('golden-web', 'config', 'golden-web-config');
    pool.addMember('golden-web', 'disk0', 'golden-web-disk0');
    pool.snapshot('golden-web', 'golden');
    const inputs = { name: 'dev-web', type: 'vm' as const, fromSnapshot: 'golden-web@golden' };

    for (const option of ['referenceMap', 'allowSourceReferences', 'keepIdentity'] as const) {
      const value = { referenceMap: { a: 'b' }, allowSourceReferences: ['x'], keepIdentity: true }[option];
      const { failures } = await runtime.container.check({}, { name: 'd', type: 'vm', [option]: value });
      assert.deepEqual(
        failures?.map((f) => [f.property, f.reason]),
        [[option, `${option}: only with fromSnapshot (it says how the clone gets its identity)`]],
      );
    }
    const both = await runtime.container.check(
      {},
      { ...inputs, keepIdentity: true, referenceMap: { a: 'b' } },
    );
    assert.deepEqual(
      both.failures?.map((f) => f.property),
      ['keepIdentity'],
    );

    await assert.rejects(runtime.container.create(inputs), (err: { code: string; message: string }) => {
      assert.equal(err.code, 'IDENTITY_REFERENCE_UNMAPPED');
      assert.match(err.message, /config\.ethernet0\.networkName = build-net/);
      assert.match(err.message, /referenceMap: \{ 'SRC': 'DST' \}` on this resource/);
      assert.match(err.message, /`keepIdentity: true` \(dangerous/);
      assert.doesNotMatch(err.message, /--map|--keep-identity/, 'no CLI flags for a Pulumi user');
      return true;
    });
    assert.throws(() => pool.describe('dev-web'), /NOT_FOUND|does not exist/);

    const mapped = { ...inputs, referenceMap: { 'build-net': 'dev-net' } };
    const { id, outs } = (await runtime.container.create(mapped)) as { id: string; outs: ContainerOutputs };
    const config = pool.describe('dev-web').members.config!;
    const text = pool.read(config, 0, pool.describe(config).size).toString();
    assert.match(text, /ethernet0\.networkName = "dev-net"/);
    assert.match(text, /scsi0:0\.fileName = "dev-web-disk0\.vmdk"/);
    assert.deepEqual(
      outs.references.find((r) => r.path === 'config.ethernet0.networkName'),
      {
        path: 'config.ethernet0.networkName',
        value: 'dev-net',
        status: 'mapped',
        sourceValue: 'build-net',
        via: 'referenceMap: build-net → dev-net',
      },
    );
    const mac = outs.identity.find((f) => f.path === 'config.ethernet0.generatedAddress');
    assert.equal(mac?.status, 'generated');
    assert.notEqual(mac?.value, '00:0c:29:4a:7b:01');
    const read = await runtime.container.read(id, outs);
    assert.deepEqual((read.props as ContainerOutputs).identity, outs.identity, 'a refresh keeps the report');
    // The members the clone made are the clone's: no drift (a plan would strip them), and they go with it.
    assert.equal(
      (await runtime.container.diff(id, read.props as never, { ...mapped, keepIdentity: false })).changes,
      false,
    );

    const remapped = await runtime.container.diff(id, outs, {
      ...mapped,
      referenceMap: { 'build-net': 'qa-net' },
    });
    assert.deepEqual([remapped.replaces, remapped.deleteBeforeReplace], [['referenceMap'], true]);
    const exact = await runtime.container.diff(id, outs, { ...inputs, keepIdentity: true });
    assert.deepEqual(exact.replaces, ['referenceMap', 'keepIdentity']);
    await runtime.container.remove(id, outs);
    assert.deepEqual(
      pool.listContainers().filter((c) => c.name.startsWith('dev-web')),
      [],
      'destroyed with its members',
    );

    const copy = (await runtime.container.create({ ...inputs, name: 'copy', keepIdentity: true })) as {
      outs: ContainerOutputs;
    };
    assert.deepEqual(
      [copy.outs.identity, copy.outs.references],
      [[], []],
      'the exact copy: no identity of its own',
    );
    const copyConfig = pool.describe('copy').members.config!;
    assert.match(
      pool.read(copyConfig, 0, pool.describe(copyConfig).size).toString(),
      /networkName = "build-net"/,
    );
  });

  it("Container: a synced disk's size follows the sync's source; a declared size is applied on a change of the declaration; a hand resize is drift", async () => {
    pool.createContainer({ name: 'prod', type: 'vdisk', size: MiB });
    pool.snapshot('prod', 'n1');
    const declared = { name: 'staging', type: 'vdisk' as const, size: 2 * MiB };
    const staging = await runtime.container.create(declared);
    await runtime.syncFromSnapshot.create({ target: 'staging', snapshot: 'prod@n1' });
    assert.equal(pool.describe('staging').size, MiB, "the sync gave staging production's size");
    const refresh = async (outs: unknown) => (await runtime.container.read(staging.id, outs as never)).props;
    const synced = await refresh(staging.outs);
    assert.equal((synced as { size: number }).size, 2 * MiB, 'no size drift');
    assert.equal((await runtime.container.diff(staging.id, synced as never, declared)).changes, false);
    await runtime.container.update(staging.id, synced as never, { ...declared, labels: { env: 'stg' } });
    assert.equal(pool.describe('staging').size, MiB, 'another change does not resize it back');

    pool.resize('staging', MiB + MiB / 2); // by hand
    const resized = await refresh(synced);
    assert.equal((resized as { size: number }).size, MiB + MiB / 2, 'a hand resize is drift');
    assert.equal((await runtime.container.diff(staging.id, resized as never, declared)).changes, true);
    await runtime.container.update(staging.id, resized as never, declared);
    assert.equal(pool.describe('staging').size, 2 * MiB, 'the next update applies the declared size');

    pool.sync('staging', 'prod@n1');
    const grown = { ...declared, size: 4 * MiB };
    const before = await refresh(resized);
    assert.equal((await runtime.container.diff(staging.id, before as never, grown)).changes, true);
    await runtime.container.update(staging.id, before as never, grown);
    assert.equal(pool.describe('staging').size, 4 * MiB, 'a changed declaration is applied');

    // Declared smaller than the source: no shrink is ever asked for.
    const small = { name: 'small', type: 'vdisk' as const, size: MiB / 2 };
    const made = await runtime.container.create(small);
    await runtime.syncFromSnapshot.create({ target: 'small', snapshot: 'prod@n1' });
    const read = (await runtime.container.read(made.id, made.outs as never)).props;
    assert.equal((await runtime.container.diff(made.id, read as never, small)).changes, false);
    const adopting = await runtime.container.check({}, { ...small, __import: 'small' });
    assert.deepEqual(adopting.failures, [], 'the import option adopts it as declared');

    // A clone of a smaller snapshot still grows to the declared size, and stays without drift.
    const clone = { name: 'clone', type: 'vdisk' as const, size: 2 * MiB, fromSnapshot: 'prod@n1' };
    const cloned = await runtime.container.create(clone);
    assert.equal(pool.describe('clone').size, 2 * MiB);
    const clonedRead = (await runtime.container.read(cloned.id, cloned.outs as never)).props;
    assert.equal((await runtime.container.diff(cloned.id, clonedRead as never, clone)).changes, false);
  });

  it('SyncFromSnapshot: same inputs no change; a new snapshot re-syncs in place; drift on refresh; revert on delete', async () => {
    pool.createContainer({ name: 'prod', type: 'vdisk', size: MiB });
    pool.write('prod', 0, Buffer.from('prod v1'));
    pool.createContainer({ name: 'staging', type: 'vdisk', size: MiB });
    pool.write('staging', 0, Buffer.from('staging own'));
    const s1 = await runtime.snapshot.create({ container: 'prod', name: 'nightly-1' });
    assert.equal(s1.outs.ref, 'prod@nightly-1');

    const inputs = { target: 'staging', snapshot: 'prod@nightly-1', onDelete: 'revert' as const };
    const created = await runtime.syncFromSnapshot.create(inputs);
    const outs = created.outs as SyncOutputs;
    assert.equal(pool.read('staging', 0, 7).toString(), 'prod v1');
    assert.equal(outs.safetySnapshotRef, 'staging@safety-g1');
    assert.equal(outs.generation, 1);
    assert.equal((await runtime.syncFromSnapshot.diff(created.id, outs, inputs)).changes, false);

    // (A retry of one request after a dropped connection reuses its key in the agent client; a second
    // create is a new operation with new keys — see test/provider/phantom-resources.test.ts.)

    pool.write('prod', 0, Buffer.from('prod v2'));
    await runtime.snapshot.create({ container: 'prod', name: 'nightly-2' });
    const next = { ...inputs, snapshot: 'prod@nightly-2' };
    const d = await runtime.syncFromSnapshot.diff(created.id, outs, next);
    assert.deepEqual([d.changes, d.replaces], [true, []], 'a new snapshot is an update, not a replace');
    const updated = (await runtime.syncFromSnapshot.update(created.id, outs, next)).outs as SyncOutputs;
    assert.equal(pool.read('staging', 0, 7).toString(), 'prod v2');
    assert.equal(updated.generation, 2);
    assert.deepEqual(
      pool.listSnapshots('staging').map((s) => s.name),
      ['safety-g2'],
      'only the newest safety snapshot is kept',
    );

    const inSync = await runtime.syncFromSnapshot.read(created.id, updated);
    assert.equal((inSync.props as SyncOutputs).inSync, true);
    pool.sync('staging', 'prod@nightly-1'); // out of band
    const drifted = await runtime.syncFromSnapshot.read(created.id, updated);
    assert.equal((drifted.props as SyncOutputs).inSync, false);
    assert.match((drifted.props as SyncOutputs).drift!, /no longer descends from prod@nightly-2/);
    const driftDiff = await runtime.syncFromSnapshot.diff(created.id, drifted.props as SyncOutputs, next);
    assert.deepEqual(
      [driftDiff.changes, driftDiff.replaces],
      [true, []],
      'the next up sees a change and re-syncs',
    );

    await runtime.syncFromSnapshot.remove(created.id, updated);
    assert.equal(pool.read('staging', 0, 7).toString(), 'prod v1', 'reverted to the last safety snapshot');
    assert.ok(
      !pool.listSnapshots('staging').some((s) => s.name === 'safety-g2'),
      'its safety snapshot is deleted',
    );
  });

  it("Container delete: refused (HAS_DEPENDENTS, naming them) while snapshots taken by hand exist, not for a sync's safety snapshot; deleteSnapshots: true deletes them with it", async () => {
    pool.createContainer({ name: 'prod', type: 'vdisk', size: MiB });
    pool.snapshot('prod', 'nightly');
    const inputs = { name: 'staging', type: 'vdisk' as const, size: MiB };
    const staging = await runtime.container.create(inputs);
    pool.sync('staging', 'prod@nightly', { safetySnapshot: true }); // by hand: leaves a safety snapshot
    pool.snapshot('staging', 'evidence');
    await assert.rejects(
      runtime.container.remove(staging.id, staging.outs as never),
      (err: Error & { code?: string }) =>
        err.code === 'HAS_DEPENDENTS' &&
        /staging@evidence/.test(err.message) &&
        /deleteSnapshots: true/.test(err.message),
    );
    assert.ok(
      pool.listSnapshots('staging').some((s) => s.name === 'evidence'),
      'kept, with its container',
    );
    pool.deleteSnapshot('staging@evidence');
    await runtime.container.remove(staging.id, staging.outs as never);
    assert.throws(() => pool.describe('staging'), /NOT_FOUND|does not exist/);

    const again = await runtime.container.create({ ...inputs, deleteSnapshots: true });
    pool.snapshot('staging', 'evidence');
    await runtime.container.remove(again.id, again.outs as never);
    assert.throws(() => pool.describe('staging'), /NOT_FOUND|does not exist/);
  });

  it('SyncFromSnapshot: a snapshot deleted and re-taken under the same name is drift, and the next update syncs to it', async () => {
    pool.createContainer({ name: 'prod', type: 'vdisk', size: MiB });
    pool.createContainer({ name: 'staging', type: 'vdisk', size: MiB });
    pool.write('prod', 0, Buffer.from('prod v1'));
    await runtime.snapshot.create({ container: 'prod', name: 'nightly' });
    const inputs = { target: 'staging', snapshot: 'prod@nightly' };
    const created = await runtime.syncFromSnapshot.create(inputs);
    const outs = created.outs as SyncOutputs;

    // The nightly is deleted (hidden: staging still reads it) and taken again with new data.
    pool.deleteSnapshot('prod@nightly');
    pool.write('prod', 0, Buffer.from('prod v2'));
    const retaken = await runtime.snapshot.create({ container: 'prod', name: 'nightly' });
    assert.notEqual(retaken.outs.uuid, outs.sourceSnapshotUuid);

    // `up` without a refresh (and the apply after a plan): the same inputs are a change.
    const d = await runtime.syncFromSnapshot.diff(created.id, outs, inputs);
    assert.deepEqual([d.changes, d.replaces], [true, []], 'a re-sync in place');
    const read = (await runtime.syncFromSnapshot.read(created.id, outs)).props as SyncOutputs;
    assert.equal(read.inSync, false);
    assert.match(read.drift!, /prod@nightly was deleted and taken again/);

    const updated = (await runtime.syncFromSnapshot.update(created.id, outs, inputs)).outs as SyncOutputs;
    assert.equal(pool.read('staging', 0, 7).toString(), 'prod v2', 'staging reads the snapshot named now');
    assert.equal(updated.sourceSnapshotUuid, retaken.outs.uuid);
    assert.equal(updated.inSync, true);
    assert.equal((await runtime.syncFromSnapshot.diff(created.id, updated, inputs)).changes, false);
    const again = (await runtime.syncFromSnapshot.read(created.id, updated)).props as SyncOutputs;
    assert.equal(again.inSync, true);
  });
});
