/**
 * Issue 14: previews that tell the truth, and replaces that never lose the
 * undo point — through the real dynamic-provider plugin against a real agent.
 * `check` (what `pulumi preview` runs) fails with the coded message `up`
 * would give when the agent is down, the token wrong, the snapshot missing
 * or the target of the wrong type; after the fix the next up converges.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { provider as containerProvider } from '../../provider/container';
import { UNKNOWN } from '../../provider/runtime/inputs';
import { provider as snapshotProvider } from '../../provider/snapshot';
import { provider as syncProvider } from '../../provider/sync-from-snapshot';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { DynamicProviderPlugin, serializeProvider } from '../helpers/dynamic-provider';
import { cleanupTempDirs } from '../helpers/tmp';

const ROOT = path.resolve(__dirname, '../..');
const urn = (type: string, name: string) =>
  `urn:pulumi:dev::preview-truth::pulumi-nodejs:dynamic/snapsync:${type}::${name}`;

describe('previews that tell the truth; replaces keep the undo point (issue 14)', function () {
  this.timeout(120_000);
  let agent: AgentProcess;
  let plugin: DynamicProviderPlugin;
  let admin: AgentClient;
  const text: Record<string, string> = {};
  const good = () => ({ 'snapsync:url': agent.url, 'snapsync:token': agent.token });

  before(async () => {
    execFileSync(process.execPath, ['scripts/build-provider.mjs'], { cwd: ROOT });
    agent = await startAgentProcess();
    admin = await AgentClient.connect(agent.url, { token: agent.token });
    text.Container = await serializeProvider(containerProvider);
    text.Snapshot = await serializeProvider(snapshotProvider);
    text.SyncFromSnapshot = await serializeProvider(syncProvider);
    plugin = await DynamicProviderPlugin.start({ cwd: ROOT });
    await plugin.configure(good());
    // prod: a VM with a disk and a snapshot of it; staging: a VM of the same shape.
    for (const env of ['prod', 'staging']) {
      await admin.call('createContainer', { name: `${env}-disk0`, type: 'vdisk', size: 1 << 20, labels: {} });
      await admin.call('createContainer', { name: env, type: 'vm', labels: {} });
      await admin.call('addMember', { vm: env, role: 'disk0', member: `${env}-disk0` });
    }
    await admin.write('prod-disk0', 0, Buffer.from('production'));
    await admin.call('snapshot', { container: 'prod', name: 'n1' });
    await admin.call('createContainer', { name: 'scratch', type: 'vdisk', size: 4096, labels: {} });
  });
  after(async () => {
    plugin?.stop();
    await admin?.close();
    await agent?.stop();
    cleanupTempDirs();
  });

  const check = (type: string, name: string, inputs: Record<string, unknown>, olds = {}, via = plugin) =>
    via.check(urn(type, name), olds, { ...inputs, __provider: text[type] });

  /** A `pulumi preview`/`up` process with other stack config (the plugin configures once per process). */
  async function withConfig<T>(config: Record<string, string>, fn: (p: DynamicProviderPlugin) => Promise<T>) {
    const other = await DynamicProviderPlugin.start({ cwd: ROOT });
    try {
      await other.configure(config);
      return await fn(other);
    } finally {
      other.stop();
    }
  }

  /** `pulumi up` of one new resource: check, then create only if check passed. */
  async function up(type: string, name: string, inputs: Record<string, unknown>) {
    const checked = await check(type, name, inputs);
    assert.deepEqual(checked.failures, [], 'the second up, after the fix, passes check');
    return { ...(await plugin.create(urn(type, name), checked.inputs)), inputs: checked.inputs };
  }

  it('agent down: the preview fails with up’s message; after starting it the up converges', async () => {
    const inputs = { name: 'down-disk', type: 'vdisk', size: 4096 };
    await withConfig({ 'snapsync:url': 'ws://127.0.0.1:9', 'snapsync:token': 'x' }, async (down) => {
      const preview = await check('Container', 'down-disk', inputs, {}, down);
      assert.equal(preview.failures.length, 1, 'one error line for the resource');
      assert.match(
        preview.failures[0]!.reason,
        /^snapsync connect of "down-disk" failed: \[CONNECTION_FAILED\] cannot reach ws:\/\/127\.0\.0\.1:9: .* — is the agent running/,
      );
      // What up says had the preview let it through: the same coded message.
      await assert.rejects(
        down.create(urn('Container', 'down-disk'), { ...inputs, __provider: text.Container }),
        (err: Error) => err.message.includes(preview.failures[0]!.reason),
      );
      assert.doesNotMatch(down.stderr(), /\n\s+at .*\(/, 'no stack trace from the plugin');
    });
    const made = await up('Container', 'down-disk', inputs);
    assert.equal((await admin.call('describe', { container: 'down-disk' })).uuid, made.id);
  });

  it('wrong token: UNAUTHORIZED with the hint to set snapsync:token; with the right one it converges', async () => {
    const inputs = { container: 'prod', name: 'n-token' };
    await withConfig({ 'snapsync:url': agent.url, 'snapsync:token': 'not-the-token' }, async (wrong) => {
      const preview = await check('Snapshot', 'n-token', inputs, {}, wrong);
      assert.equal(preview.failures.length, 1);
      assert.match(
        preview.failures[0]!.reason,
        /^snapsync connect of "prod" failed: \[UNAUTHORIZED\] agent refused the connection: HTTP 401 — .*pulumi config set --secret snapsync:token/,
      );
      // Every resource of the stack says the same (the refused token is not retried into the agent's back-off).
      for (let i = 0; i < 6; i++) {
        const other = await check('Container', `c${i}`, { name: `c${i}`, type: 'file' }, {}, wrong);
        assert.match(other.failures[0]!.reason, /\[UNAUTHORIZED\]/);
      }
      await assert.rejects(
        wrong.create(urn('Snapshot', 'n-token'), { ...inputs, __provider: text.Snapshot }),
        (err: Error) => err.message.includes(preview.failures[0]!.reason),
      );
      assert.doesNotMatch(wrong.stderr(), /\n\s+at .*\(/, 'no stack trace from the plugin');
    });
    const made = await up('Snapshot', 'n-token', inputs);
    assert.equal((await admin.call('describeSnapshot', { snapshot: 'prod@n-token' })).uuid, made.id);
  });

  it('missing snapshot: the preview fails on `snapshot`; once it exists the up converges', async () => {
    const inputs = { target: 'staging', snapshot: 'prod@n-missing', onDelete: 'keep' };
    const preview = await check('SyncFromSnapshot', 'sync-missing', inputs);
    assert.deepEqual(preview.failures, [
      {
        property: 'snapshot',
        reason: 'snapsync sync of "staging" failed: [NOT_FOUND] snapshot "prod@n-missing" does not exist',
      },
    ]);
    // What up would say, had the preview let it through: the same code and words.
    const atUp = await plugin
      .create(urn('SyncFromSnapshot', 'sync-missing'), { ...inputs, __provider: text.SyncFromSnapshot })
      .then(
        () => assert.fail('synced to a missing snapshot'),
        (err: Error) => err.message,
      );
    assert.match(
      atUp,
      /snapsync sync of "staging" failed: \[NOT_FOUND\] snapshot "prod@n-missing" does not exist/,
    );
    await admin.call('snapshot', { container: 'prod', name: 'n-missing' });
    const made = await up('SyncFromSnapshot', 'sync-missing', inputs);
    assert.equal(made.properties.inSync, true);
  });

  it('target of the wrong type and member roles missing fail the preview; unknown inputs skip and say so', async () => {
    const wrong = await check('SyncFromSnapshot', 's', { target: 'scratch', snapshot: 'prod@n1' });
    assert.deepEqual(wrong.failures, [
      {
        property: 'target',
        reason:
          'snapsync sync of "scratch" failed: [TYPE_MISMATCH] cannot sync vdisk "scratch" to a snapshot of a vm',
      },
    ]);
    const roles = await check('SyncFromSnapshot', 's', {
      target: 'staging',
      snapshot: 'prod@n1',
      members: ['disk9'],
    });
    assert.deepEqual(
      roles.failures.map((f) => [f.property, f.reason]),
      [
        [
          'members',
          'snapsync sync of "staging" failed: [INVALID_ARGUMENT] snapshot prod@n1 has no member "disk9" (it has disk0)',
        ],
      ],
    );
    const unknown = await check('SyncFromSnapshot', 's', { target: 'staging', snapshot: UNKNOWN });
    assert.deepEqual(unknown.failures, []);
    await new Promise((resolve) => setTimeout(resolve, 100)); // let the plugin's stderr arrive
    assert.match(
      plugin.stderr(),
      /snapsync: sync "staging" not checked against the agent in this preview: snapshot not known yet/,
    );
  });

  it('a disk resized by hand beyond its declared size: the preview fails on `size` with up’s refusal and its hint; allowShrink: true passes', async () => {
    const inputs = { name: 'grown-disk', type: 'vdisk', size: 1 << 20 };
    const made = await up('Container', 'grown', inputs);
    await admin.call('resize', { container: 'grown-disk', size: 2 << 20 }); // by hand
    // `pulumi refresh` (or up --refresh): the live size becomes the old input.
    const refreshed = await plugin.read(urn('Container', 'grown'), made.id, made.properties, made.inputs);
    const refusal =
      'snapsync resize of "grown-disk" failed: [INVALID_ARGUMENT] shrinking "grown-disk" from 2097152 to 1048576 bytes discards data; set `allowShrink: true` on this resource to allow it';
    const preview = await check('Container', 'grown', inputs, refreshed.inputs);
    assert.deepEqual(preview.failures, [{ property: 'size', reason: refusal }]);
    // What up would say, had the preview let it through: the same code and words.
    const atUp = await plugin
      .update(urn('Container', 'grown'), made.id, refreshed.properties, preview.inputs)
      .then(
        () => assert.fail('shrunk without allowShrink'),
        (err: Error) => err.message,
      );
    assert.ok(atUp.includes(refusal), atUp);
    const allowed = await check('Container', 'grown', { ...inputs, allowShrink: true }, refreshed.inputs);
    assert.deepEqual(allowed.failures, []);
  });

  it('a sync replaced onto a target of the wrong type keeps the old sync and its safety snapshot', async () => {
    const inputs = { target: 'staging', snapshot: 'prod@n1', onDelete: 'revert' };
    const sync = await up('SyncFromSnapshot', 'refresh', inputs);
    const safety = String(sync.properties.safetySnapshotRef);
    assert.match(safety, /^staging@/);
    const moved = { ...inputs, target: 'scratch', __provider: text.SyncFromSnapshot };
    const diff = await plugin.diff(urn('SyncFromSnapshot', 'refresh'), sync.id, sync.properties, moved);
    assert.deepEqual(
      [diff.replaces, diff.deleteBeforeReplace],
      [['target'], false],
      'create-before-delete: the old sync goes only after the new one succeeded',
    );
    // The preview fails already...
    const preview = await plugin.check(urn('SyncFromSnapshot', 'refresh'), sync.inputs, moved);
    assert.match(preview.failures[0]!.reason, /\[TYPE_MISMATCH\]/);
    // ...and were the target only known at up, the engine creates first, which fails: the old stays.
    await assert.rejects(plugin.create(urn('SyncFromSnapshot', 'refresh'), moved), /\[TYPE_MISMATCH\]/);
    assert.equal((await admin.call('describeSnapshot', { snapshot: safety })).name, safety.split('@')[1]);
    assert.equal((await admin.read('staging-disk0', 0, 10)).toString(), 'production');
    const refreshed = await plugin.read(
      urn('SyncFromSnapshot', 'refresh'),
      sync.id,
      sync.properties,
      sync.inputs,
    );
    assert.equal(refreshed.properties.inSync, true, 'the old sync is intact');
    await plugin.delete(urn('SyncFromSnapshot', 'refresh'), sync.id, sync.properties);
  });
});
