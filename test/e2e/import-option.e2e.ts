/**
 * Issue 14: adoption with the `import` resource option, with the real Pulumi
 * CLI against a real agent. A disk, its snapshot and a copy synced to it are
 * made by hand on the agent; the program (test/e2e/import-option/index.ts)
 * declares them with `{ import: id }`. A preview whose inputs differ from the
 * object fails as an import does; `up` then records the three objects without
 * creating, snapshotting or syncing anything; a replace while the option is
 * still there fails its preview; the next preview is empty, with the option
 * and after removing it; destroy deletes what the stack now owns.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { createExampleStack, type ExampleStack, findPulumiCli } from '../../examples/demo/pulumi-stack';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';

const REPO = path.resolve(__dirname, '../..');
const SIZE = 65536;

describe('pulumi CLI: adoption with the `import` resource option (issue 14)', function () {
  this.timeout(600_000);
  const pulumi = findPulumiCli();
  let agent: AgentProcess;
  let admin: AgentClient;
  let example: ExampleStack;

  /** What the agent holds: every container and snapshot with its uuid, and the copy's generation. */
  async function agentObjects() {
    const containers = await admin.call('listContainers', {});
    const snapshots = [];
    for (const c of containers) {
      for (const s of await admin.call('listSnapshots', { container: c.name })) {
        snapshots.push(`${s.container}@${s.name} ${s.uuid}`);
      }
    }
    return {
      containers: containers.map((c) => `${c.name} ${c.uuid} gen ${c.generation} size ${c.size}`).sort(),
      snapshots: snapshots.sort(),
    };
  }

  before(async () => {
    assert.ok(pulumi, 'no Pulumi CLI: run `make e2e` (it builds one) or set SNAPSYNC_PULUMI');
    execFileSync(process.execPath, ['scripts/build-provider.mjs'], { cwd: REPO });
    agent = await startAgentProcess();
    admin = await AgentClient.connect(agent.url, { token: agent.token });
    await admin.call('createContainer', {
      name: 'legacy-disk',
      type: 'vdisk',
      size: SIZE,
      labels: { team: 'db' },
    });
    await admin.call('snapshot', { container: 'legacy-disk', name: 'golden', labels: {} });
    await admin.call('createContainer', { name: 'legacy-copy', type: 'vdisk', size: SIZE, labels: {} });
    await admin.call('sync', { target: 'legacy-copy', source: 'legacy-disk@golden', safetySnapshot: true });
    const disk = await admin.call('describe', { container: 'legacy-disk' });
    example = await createExampleStack({
      pulumi: pulumi!,
      agentUrl: agent.url,
      token: agent.token,
      example: path.join(__dirname, 'import-option'),
      // A size the disk does not have: the first preview must say so.
      config: { adopt: 'true', diskUuid: disk.uuid, diskSize: String(2 * SIZE) },
    });
  });
  after(async () => {
    await admin?.close();
    await agent?.stop();
    example?.dispose();
    cleanupTempDirs();
  });

  it('a preview whose inputs differ from the object fails with IMPORT_MISMATCH, naming the difference', async () => {
    const before = await agentObjects();
    await assert.rejects(example.stack.preview(), (err: Error) => {
      assert.match(
        err.message,
        /snapsync import of "legacy-disk" failed: \[IMPORT_MISMATCH\] the declared inputs differ from the existing container "[0-9a-f-]{36}" \(size: declared 131072, the agent has 65536\)/,
      );
      assert.doesNotMatch(err.message, /code must be a string/);
      return true;
    });
    await assert.rejects(example.stack.up(), /IMPORT_MISMATCH/);
    assert.deepEqual(await agentObjects(), before, 'nothing changed on the agent');
    const state = JSON.parse(example.pulumi('stack', 'export')).deployment.resources ?? [];
    assert.deepEqual(
      state.filter((r: { type: string }) => r.type.includes('snapsync')),
      [],
      'nothing recorded',
    );
  });

  it('with matching inputs, up adopts the container, the snapshot and the sync: nothing is created', async () => {
    await example.stack.setConfig('diskSize', { value: String(SIZE) });
    const preview = await example.stack.preview();
    assert.match(preview.stderr + preview.stdout, /container "legacy-disk" is imported from "[0-9a-f-]{36}"/);
    const before = await agentObjects();
    const up = await example.stack.up();
    assert.equal(up.summary.result, 'succeeded');
    assert.deepEqual(
      await agentObjects(),
      before,
      'no container, snapshot, sync or safety snapshot was made',
    );

    const disk = await admin.call('describe', { container: 'legacy-disk' });
    const golden = await admin.call('describeSnapshot', { snapshot: 'legacy-disk@golden' });
    const copy = await admin.call('describe', { container: 'legacy-copy' });
    const safety = (await admin.call('listSnapshots', { container: 'legacy-copy' })).find(
      (s) => s.kind === 'safety',
    )!;
    assert.equal(up.outputs.diskUuid!.value, disk.uuid);
    assert.equal(up.outputs.snapshotUuid!.value, golden.uuid);
    assert.equal(up.outputs.syncedFrom!.value, 'legacy-disk@golden');
    assert.equal(up.outputs.safetySnapshot!.value, `legacy-copy@${safety.name}`);
    const state = JSON.parse(example.pulumi('stack', 'export')).deployment.resources as Array<{
      type: string;
      id: string;
      inputs: Record<string, unknown>;
      outputs: Record<string, unknown>;
    }>;
    const byType = (type: string) => state.find((r) => r.type.endsWith(`snapsync:${type}`))!;
    assert.equal(byType('Container').id, disk.uuid);
    assert.equal(byType('Snapshot').id, golden.uuid);
    assert.equal(byType('SyncFromSnapshot').id, copy.uuid);
    assert.equal(byType('SyncFromSnapshot').outputs.sourceSnapshotUuid, golden.uuid);
    assert.equal(byType('SyncFromSnapshot').outputs.generation, copy.generation);
  });

  it('a replace while the option is still there fails its preview with IMPORT_MISMATCH, deleting nothing', async () => {
    const before = await agentObjects();
    await example.stack.setConfig('snapshotName', { value: 'golden-2' });
    await assert.rejects(
      example.stack.preview(),
      /\[IMPORT_MISMATCH\] the declared inputs differ from the existing snapshot "legacy-disk@golden" \(name: declared "golden-2", the agent has "golden"\)/,
    );
    await assert.rejects(example.stack.up(), /IMPORT_MISMATCH/);
    assert.deepEqual(await agentObjects(), before);
    await example.stack.removeConfig('snapshotName');
  });

  it('the next preview is empty, with the option and after removing it; refresh finds no drift', async () => {
    await example.stack.preview({ expectNoChanges: true });
    await example.stack.setConfig('adopt', { value: 'false' });
    const preview = await example.stack.preview({ expectNoChanges: true });
    assert.deepEqual(Object.keys(preview.changeSummary), ['same']);
    const up = await example.stack.up();
    assert.deepEqual(Object.keys(up.summary.resourceChanges ?? {}), ['same']);
    const refresh = await example.stack.refresh();
    assert.deepEqual(Object.keys(refresh.summary.resourceChanges ?? {}), ['same']);
    await example.stack.preview({ expectNoChanges: true });
  });

  it('the stack now manages them: a new size updates the disk in place; destroy deletes what it adopted', async () => {
    const uuid = (await admin.call('describe', { container: 'legacy-disk' })).uuid;
    await example.stack.setConfig('diskSize', { value: String(2 * SIZE) });
    const up = await example.stack.up();
    assert.equal(up.summary.resourceChanges?.update, 1);
    const grown = await admin.call('describe', { container: 'legacy-disk' });
    assert.deepEqual([grown.uuid, grown.size], [uuid, 2 * SIZE]);
    await example.stack.destroy();
    const names = (await admin.call('listContainers', {})).map((c) => c.name);
    assert.deepEqual(names, ['legacy-copy'], 'the disk is deleted; the sync target is not the stack’s');
  });
});
