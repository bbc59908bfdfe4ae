/**
 * `pulumi up` and `destroy` of examples/dev-clones with the real Pulumi CLI
 * against a real agent: O(1) clones of a golden image, and a new golden
 * version that replaces every clone under the same name. `make e2e`.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { createExampleStack, type ExampleStack, findPulumiCli } from '../../examples/demo/pulumi-stack';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';

describe('pulumi CLI end to end: examples/dev-clones', function () {
  this.timeout(600_000);
  let agent: AgentProcess;
  let example: ExampleStack;
  const cli = (...args: string[]) => agentCli(agent)(...args);
  const readText = (container: string, length: number) =>
    Buffer.from(cli('read', container, '0', String(length)).base64, 'base64').toString();

  before(async () => {
    const pulumi = findPulumiCli();
    assert.ok(pulumi, 'no Pulumi CLI: run `make e2e` (it builds one) or set SNAPSYNC_PULUMI');
    agent = await startAgentProcess();
    example = await createExampleStack({
      pulumi,
      example: path.resolve(__dirname, '../../examples/dev-clones'),
      agentUrl: agent.url,
      token: agent.token,
      config: { goldenVersion: 'v1' },
    });
    // A typed array in Pulumi.yaml: set element by element, as `pulumi config set --path` does.
    await example.stack.setConfig('developers[0]', { value: 'alice' }, true);
    await example.stack.setConfig('developers[1]', { value: 'bob' }, true);
  });
  after(async () => {
    await agent?.stop();
    example?.dispose();
    cleanupTempDirs();
  });

  it('pulumi up clones the golden image once per developer; the clones diverge on write', async () => {
    const result = await example.stack.up();
    assert.equal(result.summary.result, 'succeeded');
    assert.deepEqual(result.outputs.cloneNames!.value, ['dev-alice', 'dev-bob']);
    assert.equal(result.outputs.goldenSnapshot!.value, 'golden-image@golden-v1');
    for (const clone of ['dev-alice', 'dev-bob']) {
      const c = cli('describe', clone);
      assert.equal(c.parentSnapshot?.name, 'golden-v1');
      assert.equal(c.size, 40 * 2 ** 30);
    }
    cli('write', 'dev-alice', '0', '--text', 'alice was here');
    assert.equal(readText('dev-alice', 14), 'alice was here');
    assert.equal(readText('dev-bob', 14), '\0'.repeat(14));
  });

  it('a new golden version replaces each clone under its name; destroy leaves nothing', async () => {
    cli('write', 'golden-image', '0', '--text', 'golden v2 build');
    await example.stack.setConfig('goldenVersion', { value: 'v2' });
    const result = await example.stack.up();
    assert.equal(result.summary.result, 'succeeded');
    assert.equal(result.summary.resourceChanges?.replace, 3, 'the snapshot and both clones');
    for (const clone of ['dev-alice', 'dev-bob']) {
      assert.equal(cli('describe', clone).parentSnapshot?.name, 'golden-v2');
      assert.equal(readText(clone, 15), 'golden v2 build');
    }
    assert.deepEqual(
      cli('snapshots', 'golden-image').map((s: { name: string }) => s.name),
      ['golden-v2'],
    );

    const destroyed = await example.stack.destroy();
    assert.equal(destroyed.summary.result, 'succeeded');
    assert.deepEqual(cli('ls'), []);
    assert.equal(cli('fsck').ok, true);
  });
});
