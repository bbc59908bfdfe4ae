/**
 * `pulumi up`, `refresh` and `destroy` of examples/refresh-staging with the
 * real Pulumi CLI (built by scripts/build-pulumi-cli.sh, passed in
 * SNAPSYNC_PULUMI) against a real agent, as a user runs them. `make e2e`.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineEvent, UpResult } from '@pulumi/pulumi/automation';
import { createExampleStack, type ExampleStack, findPulumiCli } from '../../examples/demo/pulumi-stack';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';

const MiB = 1 << 20;

/** A minimal but real .vmx: the identity values the vm profile keeps, and settings it must not. */
function vmx(name: string, uuid: string, mac: string, memSize: number): string {
  return [
    '.encoding = "UTF-8"',
    `displayName = "${name}"`,
    `memSize = "${memSize}"`,
    `uuid.bios = "${uuid}"`,
    'ethernet0.addressType = "generated"',
    `ethernet0.generatedAddress = "${mac}"`,
    '',
  ].join('\n');
}

/** The engine's operations (create, update, replace, same, …) on each snapsync resource, from an update's events. */
function operations(events: EngineEvent[]): Map<string, string> {
  const ops = new Map<string, string[]>();
  for (const event of events) {
    const pre = event.resourcePreEvent?.metadata;
    if (!pre?.type.startsWith('pulumi-nodejs:dynamic/snapsync:')) continue;
    const name = `${pre.type.split(':').pop()}/${pre.urn.split('::').pop()}`;
    ops.set(name, [...(ops.get(name) ?? []), pre.op]);
  }
  return new Map([...ops].map(([name, seen]) => [name, seen.join(',')]));
}

/** JSON paths of the string values in `value` that contain `needle`. */
function pathsHolding(value: unknown, needle: string, at = '$'): string[] {
  if (typeof value === 'string') return value.includes(needle) ? [at] : [];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => pathsHolding(v, needle, `${at}.${k}`));
}

const changed = (ops: Map<string, string>) => [...ops].filter(([, op]) => op !== 'same');

describe('pulumi CLI end to end: examples/refresh-staging', function () {
  this.timeout(600_000);
  const pulumi = findPulumiCli();
  let agent: AgentProcess;
  let example: ExampleStack;
  /** Everything the CLI printed and every engine event, to search for the token. */
  const transcript: string[] = [];
  const cli = (...args: string[]) => agentCli(agent)(...args);
  const up = async (): Promise<{ result: UpResult; ops: Map<string, string> }> => {
    const events: EngineEvent[] = [];
    const result = await example.stack.up({ onEvent: (e) => events.push(e) });
    transcript.push(result.stdout, result.stderr, JSON.stringify(events));
    return { result, ops: operations(events) };
  };

  before(async () => {
    assert.ok(pulumi, 'no Pulumi CLI: run `make e2e` (it builds one) or set SNAPSYNC_PULUMI');
    agent = await startAgentProcess();
    example = await createExampleStack({
      pulumi: pulumi!,
      agentUrl: agent.url,
      token: agent.token,
      config: { snapshotName: 'nightly-2026-11-24', diskSize: String(64 * MiB) },
    });
  });
  after(async () => {
    await agent?.stop();
    example?.dispose();
    cleanupTempDirs();
  });

  it('pulumi up creates both VMs, the nightly snapshot and the sync', async () => {
    const { result, ops } = await up();
    assert.equal(result.summary.result, 'succeeded');
    assert.deepEqual(
      [...ops]
        .filter(([, op]) => op === 'create')
        .map(([name]) => name)
        .sort(),
      [
        'Container/prod-web',
        'Container/prod-web-config',
        'Container/prod-web-disk0',
        'Container/prod-web-disk1',
        'Container/staging-web',
        'Container/staging-web-config',
        'Container/staging-web-disk0',
        'Container/staging-web-disk1',
        'Snapshot/nightly',
        'SyncFromSnapshot/refresh-staging',
      ],
    );
    assert.deepEqual(
      cli('ls')
        .map((c: { name: string }) => c.name)
        .sort(),
      [
        'prod-web',
        'prod-web-config',
        'prod-web-disk0',
        'prod-web-disk1',
        'staging-web',
        'staging-web-config',
        'staging-web-disk0',
        'staging-web-disk1',
      ],
    );
    assert.equal(result.outputs.syncedFrom!.value, 'prod-web@nightly-2026-11-24');
    assert.equal(result.outputs.generation!.value, 1);
    assert.equal(cli('describe', 'staging-web').generation, 1);
  });

  it('a second pulumi up changes nothing', async () => {
    const preview = await example.stack.preview();
    assert.deepEqual(Object.keys(preview.changeSummary), ['same']);
    const { result, ops } = await up();
    assert.deepEqual(changed(ops), []);
    assert.deepEqual(Object.keys(result.summary.resourceChanges!), ['same']);
    assert.equal(cli('describe', 'staging-web').generation, 1);
  });

  it('a new snapshot name re-syncs staging in place; the outputs show staging’s own identity', async () => {
    // The VMs' config files, written as a hypervisor would (outside Pulumi).
    const files = fs.mkdtempSync(path.join(agent.dir, 'vmx-'));
    const write = (container: string, text: string) => {
      const file = path.join(files, `${container}.vmx`);
      fs.writeFileSync(file, text);
      cli('write', container, '0', '--file', file);
    };
    const stagingUuid = '56 4d ff ee dd cc bb aa-99 88 77 66 55 44 33 22';
    write(
      'prod-web-config',
      vmx('prod-web', '56 4d 11 22 33 44 55 66-77 88 99 aa bb cc dd ee', '00:50:56:aa:00:01', 16384),
    );
    write('staging-web-config', vmx('staging-web', stagingUuid, '00:50:56:bb:00:02', 4096));
    cli('write', 'prod-web-disk0', '0', '--text', 'production data of 2026-11-25');

    await example.stack.setConfig('snapshotName', { value: 'nightly-2026-11-25' });
    const { result, ops } = await up();
    // The snapshot is a new one (create the replacement, then delete the old); staging is updated in place.
    assert.deepEqual(changed(ops).sort(), [
      ['Snapshot/nightly', 'create-replacement,replace,delete-replaced'],
      ['SyncFromSnapshot/refresh-staging', 'update'],
    ]);
    const outputs = result.outputs;
    assert.equal(outputs.syncedFrom!.value, 'prod-web@nightly-2026-11-25');
    assert.equal(outputs.generation!.value, 2);
    const identity = outputs.stagingIdentity!.value as Record<string, string>;
    assert.equal(identity['config.displayName'], 'staging-web');
    assert.equal(identity['config.uuid.bios'], stagingUuid);
    assert.equal(identity['config.ethernet0.generatedAddress'], '00:50:56:bb:00:02');
    assert.equal(identity.name, 'staging-web');
    assert.equal(identity.uuid, outputs.stagingUuid!.value);
    assert.equal(identity['disk0.name'], 'staging-web-disk0');
    const restored = outputs.restoredFields!.value as string[];
    for (const field of ['config.displayName', 'config.uuid.bios', 'config.ethernet0.generatedAddress']) {
      assert.ok(restored.includes(field), `${field} restored: ${restored}`);
    }
    // Staging reads production's data and settings, under its own identity.
    const size = cli('describe', 'staging-web-config').size;
    const config = Buffer.from(
      cli('read', 'staging-web-config', '0', String(size)).base64,
      'base64',
    ).toString();
    assert.equal(config, vmx('staging-web', stagingUuid, '00:50:56:bb:00:02', 16384));
    const disk = cli('read', 'staging-web-disk0', '0', '29');
    assert.equal(Buffer.from(disk.base64, 'base64').toString(), 'production data of 2026-11-25');
    assert.equal(cli('describe', 'staging-web').generation, 2);
  });

  it('an out-of-band re-sync with the agent CLI shows as drift on pulumi refresh', async () => {
    cli('snapshot', 'prod-web', 'manual');
    cli('sync', 'staging-web', 'prod-web@manual');
    const events: EngineEvent[] = [];
    const refresh = await example.stack.refresh({ onEvent: (e) => events.push(e) });
    transcript.push(refresh.stdout, refresh.stderr, JSON.stringify(events));
    assert.equal(refresh.summary.result, 'succeeded');
    const refreshOps = new Map(
      events.flatMap((e) => {
        const meta = e.resOutputsEvent?.metadata;
        return meta ? [[meta.urn.split('::').pop()!, meta.op] as const] : [];
      }),
    );
    assert.equal(refreshOps.get('refresh-staging'), 'update', 'refresh changed the sync resource');
    const state = JSON.parse(example.pulumi('stack', 'export')).deployment as {
      resources: Array<{ type: string; outputs?: Record<string, unknown> }>;
    };
    const sync = state.resources.find((r) => r.type === 'pulumi-nodejs:dynamic/snapsync:SyncFromSnapshot');
    assert.ok(sync, 'the SyncFromSnapshot resource is in the state');
    assert.equal(sync.outputs!.inSync, false);
    assert.match(
      String(sync.outputs!.drift),
      /no longer descends from prod-web@nightly-2026-11-25 \(it now descends from prod-web-\w+@manual\)/,
    );
    // The next up puts staging back on the declared snapshot: a fresh sync (generation 4).
    const { ops, result } = await up();
    assert.equal(ops.get('SyncFromSnapshot/refresh-staging'), 'update');
    assert.equal(result.outputs.generation!.value, 4);
    for (const disk of ['staging-web-disk0', 'staging-web-disk1']) {
      const lineage: Array<{ snapshot: { container: string; name: string } | null }> = cli('tree', disk);
      const source = lineage.find((entry) => entry.snapshot && entry.snapshot.container !== disk)?.snapshot;
      assert.equal(
        `${source?.container}@${source?.name}`,
        `${disk.replace('staging', 'prod')}@nightly-2026-11-25`,
      );
    }
    const refreshed = await example.stack.refresh();
    assert.equal(refreshed.summary.resourceChanges?.update ?? 0, 0, 'in sync again: refresh finds no drift');
  });

  it('a nightly deleted by hand is taken again by pulumi up, and staging is re-synced to it (preview says so too)', async () => {
    cli('rm', 'prod-web@nightly-2026-11-25'); // hidden, not gone: staging still reads it
    cli('write', 'prod-web-disk0', '0', '--text', 'production data taken again');
    await example.stack.refresh(); // finds the Snapshot gone
    const preview = await example.stack.preview();
    assert.deepEqual([preview.changeSummary.create, preview.changeSummary.update], [1, 1]);
    const { ops } = await up();
    assert.deepEqual(changed(ops).sort(), [
      ['Snapshot/nightly', 'create'],
      ['SyncFromSnapshot/refresh-staging', 'update'],
    ]);
    const disk = cli('read', 'staging-web-disk0', '0', '27');
    assert.equal(Buffer.from(disk.base64, 'base64').toString(), 'production data taken again');
    const state = JSON.parse(example.pulumi('stack', 'export')).deployment as {
      resources: Array<{ type: string; outputs?: Record<string, unknown> }>;
    };
    const outputsOf = (type: string) =>
      state.resources.find((r) => r.type.endsWith(`snapsync:${type}`))!.outputs!;
    assert.equal(outputsOf('SyncFromSnapshot').sourceSnapshotUuid, outputsOf('Snapshot').uuid);
    const refreshed = await example.stack.refresh();
    assert.equal(refreshed.summary.resourceChanges?.update ?? 0, 0, 'in sync: refresh finds no drift');
  });

  it('a nightly deleted and taken again by hand under its name: refresh updates the Snapshot (not deleted), one up re-syncs staging to it', async () => {
    cli('rm', 'prod-web@nightly-2026-11-25');
    cli('write', 'prod-web-disk0', '0', '--text', 'production data taken by hand');
    const retaken = cli('snapshot', 'prod-web', 'nightly-2026-11-25', '--label', 'purpose=staging-refresh');
    const events: EngineEvent[] = [];
    const refresh = await example.stack.refresh({ onEvent: (e) => events.push(e) });
    transcript.push(refresh.stdout, refresh.stderr, JSON.stringify(events));
    assert.equal(
      refresh.summary.resourceChanges?.delete ?? 0,
      0,
      `the Snapshot is not deleted\n${refresh.stdout}`,
    );
    assert.equal(refresh.summary.resourceChanges?.update, 1, 'the sync drifted');
    const state = () =>
      JSON.parse(example.pulumi('stack', 'export')).deployment as {
        resources: Array<{ type: string; id?: string; outputs?: Record<string, unknown> }>;
      };
    const resourceOf = (type: string) => state().resources.find((r) => r.type.endsWith(`snapsync:${type}`))!;
    assert.equal(resourceOf('Snapshot').id, retaken.uuid, 'the Snapshot is the one the name holds now');
    assert.equal(resourceOf('SyncFromSnapshot').outputs!.inSync, false);
    const { ops, result } = await up();
    assert.equal(result.summary.result, 'succeeded');
    assert.deepEqual(changed(ops), [['SyncFromSnapshot/refresh-staging', 'update']]);
    const disk = cli('read', 'staging-web-disk0', '0', '29');
    assert.equal(Buffer.from(disk.base64, 'base64').toString(), 'production data taken by hand');
    assert.equal(resourceOf('Snapshot').outputs!.uuid, retaken.uuid);
    assert.equal(resourceOf('SyncFromSnapshot').outputs!.sourceSnapshotUuid, retaken.uuid);
    const preview = await example.stack.preview();
    assert.equal(preview.changeSummary.update ?? 0, 0, 'converged');
    assert.equal(preview.changeSummary.create ?? 0, 0);
  });

  it('pulumi stack export holds the token only encrypted', async () => {
    const exported = JSON.parse(example.pulumi('stack', 'export'));
    assert.equal(exported.deployment.secrets_providers.type, 'passphrase');
    assert.deepEqual(pathsHolding(exported, agent.token), [], 'the token is not in the state in clear text');
    // The provider receives the stack's config as its inputs: the token is there, as ciphertext.
    const provider = exported.deployment.resources.find((r: { type: string }) =>
      r.type.startsWith('pulumi:providers:'),
    );
    assert.ok(provider?.inputs['snapsync:token']?.ciphertext, 'the provider holds the token encrypted');
    // With the passphrase it decrypts to the token: encrypted, not lost.
    const shown = JSON.parse(example.pulumi('stack', 'export', '--show-secrets'));
    assert.ok(pathsHolding(shown, agent.token).length > 0);
    const stackConfig = fs.readFileSync(path.join(example.workDir, 'Pulumi.dev.yaml'), 'utf8');
    assert.ok(!stackConfig.includes(agent.token), 'the token is not in the stack config in clear text');
    assert.match(stackConfig, /snapsync:token:\s*\n\s*secure: /);
    assert.ok(!agent.logs().includes(agent.token), 'the token is in no agent log line');
    assert.ok(
      transcript.length >= 8 && !transcript.some((t) => t.includes(agent.token)),
      'nor in the CLI output',
    );
  });

  it('pulumi destroy refuses to delete a VM with a snapshot taken by hand, naming it and how to proceed', async () => {
    // prod-web@manual was taken by hand (the out-of-band re-sync above).
    const refused = await example.stack.destroy().then(
      () => assert.fail('the destroy deleted prod-web@manual'),
      (err: Error) => err.message,
    );
    assert.match(
      refused.replace(/\s+/g, ' '),
      /snapsync delete of "prod-web" failed: \[HAS_DEPENDENTS\] .*prod-web@manual.*`deleteSnapshots: true`/,
    );
    assert.ok(
      cli('snapshots', 'prod-web').some((s: { name: string }) => s.name === 'manual'),
      'kept',
    );
    cli('rm', 'prod-web@manual'); // the operator's way on: it is no longer wanted
  });

  it('pulumi destroy leaves the agent with nothing of the stack', async () => {
    const result = await example.stack.destroy();
    assert.equal(result.summary.result, 'succeeded');
    assert.deepEqual(cli('ls'), []);
    const info = cli('info');
    assert.equal(info.usedBlocks, 0, `blocks still in use: ${JSON.stringify(info)}`);
    assert.equal(cli('fsck').ok, true);
  });
  it('pulumi up after destroy builds it all again (nothing answered from the destroyed stack)', async () => {
    const { result, ops } = await up();
    assert.equal([...ops.values()].filter((op) => op === 'create').length, 10);
    assert.equal(cli('ls').length, 8);
    assert.equal(cli('describe', 'staging-web').uuid, result.outputs.stagingUuid!.value);
    assert.equal(result.outputs.syncedFrom!.value, 'prod-web@nightly-2026-11-25');
    await example.stack.destroy();
    assert.deepEqual(cli('ls'), []);
  });
});
