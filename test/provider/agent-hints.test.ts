/**
 * The agent's refusals say how to proceed with its CLI's flags ("pass shrink:
 * true (CLI --shrink)", "--map SRC=DST"); through the providers (a real engine
 * with the identity hooks, the runtime both providers run) they name the
 * resource's attributes instead, in the words of the front end in use:
 * `allowShrink: true` for Pulumi, `allow_shrink = true` for Terraform.
 */
import * as assert from 'node:assert/strict';
import { Pool } from '../../agent/engine';
import * as runtime from '../../provider/runtime';
import type { AgentApi } from '../../provider/runtime/agent-api';
import { step } from '../../provider/runtime/errors';
import { type FrontEnd, setFrontEnd } from '../../provider/runtime/front-end';
import type { SyncOutputs } from '../../provider/runtime/sync-from-snapshot';
import { EngineAgent } from '../helpers/engine-agent';
import { createReferenceVms } from '../helpers/reference-vms';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

const MiB = 1 << 20;

/** The message of the error `run` rejects with. */
async function refusal(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('expected a refusal');
}

/** No CLI flag or command is left in what the provider user reads. */
function assertNoCliWords(message: string): void {
  assert.doesNotMatch(
    message,
    /CLI --|--(shrink|force|detach|map|member|allow-source-reference)\b|add-member/,
  );
}

const WORDS: Record<FrontEnd, Record<string, string>> = {
  pulumi: {
    shrink: 'set `allowShrink: true` on this resource',
    members: "drop it from the VM's `members` and run `pulumi up`",
    referenceMap: "give one with `referenceMap: { 'SRC': 'DST' }` on this resource",
    mapEntry: "referenceMap entry `'prod-dmz': '00:0c:29:4a:7b:01'`",
    unused: "referenceMap entry `'no-such-net': 'staging-x'` matched nothing",
  },
  terraform: {
    shrink: 'set `allow_shrink = true` on this resource',
    members: "drop it from the VM's `members` and run `tofu apply`",
    referenceMap: 'give one with `reference_map = { "SRC" = "DST" }` on this resource',
    mapEntry: 'reference_map entry `"prod-dmz" = "00:0c:29:4a:7b:01"`',
    unused: 'reference_map entry `"no-such-net" = "staging-x"` matched nothing',
  },
};

describe('provider runtime: agent hints in the provider’s words', () => {
  let pool: Pool;
  let agent: AgentApi;

  beforeEach(async () => {
    pool = Pool.create(tempDir(), { blockSize: 4096 });
    agent = new EngineAgent(pool, true);
    runtime.setConnector(async () => agent);
    await runtime.configure({ get: (key) => ({ 'snapsync:url': 'ws://127.0.0.1:1' })[key] });
  });
  afterEach(async () => {
    setFrontEnd('pulumi');
    runtime.setConnector(null);
    await pool.close();
  });
  after(cleanupTempDirs);

  for (const frontEnd of ['pulumi', 'terraform'] as const) {
    const words = WORDS[frontEnd];

    it(`${frontEnd}: a refused shrink names the resource's allow-shrink setting`, async () => {
      setFrontEnd(frontEnd);
      pool.createContainer({ name: 'disk', type: 'vdisk', size: 2 * MiB });
      const message = await refusal(() =>
        step('resize', 'disk', () => agent.resize('disk', MiB, false, 'k-resize')),
      );
      assert.match(
        message,
        /\[INVALID_ARGUMENT\] shrinking "disk" from 2097152 to 1048576 bytes discards data/,
      );
      assert.ok(message.includes(words.shrink!), message);
      assertNoCliWords(message);
    });

    it(`${frontEnd}: deleting a VM's member says to take it out of the VM's members`, async () => {
      setFrontEnd(frontEnd);
      pool.createContainer({ name: 'disk', type: 'vdisk', size: MiB });
      pool.createContainer({ name: 'vm', type: 'vm' });
      pool.addMember('vm', 'disk0', 'disk');
      const message = await refusal(() =>
        step('delete', 'disk', () => agent.deleteContainer('disk', false, 'k-delete')),
      );
      assert.match(message, /\[IS_VM_MEMBER\] "disk" is member disk0 of VM "vm"/);
      assert.ok(message.includes(words.members!), message);
      assertNoCliWords(message);
    });

    it(`${frontEnd}: a sync's refusals and warnings name the SyncFromSnapshot attributes`, async () => {
      setFrontEnd(frontEnd);
      createReferenceVms(pool);
      const inputs = { target: 'staging-app', snapshot: 'prod-app@nightly', members: ['config'] };
      const unmapped = await refusal(() => runtime.syncFromSnapshot.create(inputs));
      assert.match(unmapped, /\[IDENTITY_REFERENCE_UNMAPPED\]/);
      assert.ok(unmapped.includes(words.referenceMap!), unmapped);
      assertNoCliWords(unmapped);

      // A map to production's own value is refused, naming the entry as the user wrote it.
      const ownValue = await refusal(() =>
        runtime.syncFromSnapshot.create({ ...inputs, referenceMap: { 'prod-dmz': '00:0c:29:4a:7b:01' } }),
      );
      assert.ok(ownValue.includes(`${words.mapEntry}: `), ownValue);
      assertNoCliWords(ownValue);

      const { outs } = (await runtime.syncFromSnapshot.create({
        ...inputs,
        referenceMap: { 'prod-dmz': 'staging-dmz', 'no-such-net': 'staging-x' },
      })) as { outs: SyncOutputs };
      const unused = outs.warnings.find((w) => w.path === 'referenceMap.no-such-net');
      assert.ok(unused?.message.includes(words.unused!), JSON.stringify(outs.warnings));
      assertNoCliWords(unused!.message);
    });

    it(`${frontEnd}: a VM sync blocked by a container of the new member's name names members`, async () => {
      setFrontEnd(frontEnd);
      createReferenceVms(pool);
      pool.createContainer({ name: 'prod-app-disk1', type: 'vdisk', size: MiB });
      pool.addMember('prod-app', 'disk1', 'prod-app-disk1');
      pool.snapshot('prod-app', 'nightly-2');
      pool.createContainer({ name: 'staging-app-disk1', type: 'vdisk', size: MiB });
      const message = await refusal(() =>
        runtime.syncFromSnapshot.create({
          target: 'staging-app',
          snapshot: 'prod-app@nightly-2',
          referenceMap: { 'prod-dmz': 'staging-dmz' },
        }),
      );
      assert.match(message, /\[ALREADY_EXISTS\] staging-app has no member "disk1"/);
      assert.match(message, /sync the other roles only \(`members`\)/);
      assertNoCliWords(message);
    });
  }
});
