/**
 * The shared runtime's hints in the Terraform provider speak Terraform: a
 * wrong token, no agent configured or no agent listening name the provider
 * block and SNAPSYNC_URL/SNAPSYNC_TOKEN, never `pulumi config`.
 */
import * as assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { providerSchema } from '../../provider-terraform/config';
import { objectType } from '../../provider-terraform/schema';
import { encode } from '../../provider-terraform/wire/cty';
import { type AgentProcess, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';
import { call, type PluginProcess, pluginClient, startPlugin } from './plugin-process';

type Response = { diagnostics: Array<{ summary: string; detail: string }> };

describe('terraform provider: configuration hints in Terraform words', () => {
  let agent: AgentProcess;
  const plugins: PluginProcess[] = [];
  const clients: grpc.Client[] = [];

  /** A plugin configured with `config`, and the diagnostic an import through it gives. */
  async function importWith(config: object): Promise<string> {
    const plugin = await startPlugin({ SNAPSYNC_URL: '', SNAPSYNC_TOKEN: '' });
    plugins.push(plugin);
    const client = pluginClient(plugin, 'tfplugin6.Provider');
    clients.push(client);
    const configured = await call<Response>(client, 'ConfigureProvider', {
      config: { msgpack: encode({ url: null, token: null, ...config }, objectType(providerSchema)) },
    });
    assert.deepEqual(configured.diagnostics, []);
    const imported = await call<Response>(client, 'ImportResourceState', {
      type_name: 'snapsync_container',
      id: 'some-disk',
    });
    assert.equal(imported.diagnostics.length, 1);
    const d = imported.diagnostics[0]!;
    const text = `${d.summary}\n${d.detail}`;
    assert.doesNotMatch(text, /pulumi|snapsync:/i);
    return text;
  }

  before(async () => {
    agent = await startAgentProcess();
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const p of plugins) p.child.kill('SIGKILL');
    await agent?.stop();
    cleanupTempDirs();
  });

  it('a wrong token names the provider block and SNAPSYNC_TOKEN', async () => {
    const text = await importWith({ url: agent.url, token: 'not-the-token' });
    assert.match(text, /\[UNAUTHORIZED\]/);
    assert.match(text, /token in the provider "snapsync" block or SNAPSYNC_TOKEN/);
  });

  it('no agent configured names url/token in the provider block or SNAPSYNC_URL/SNAPSYNC_TOKEN', async () => {
    const text = await importWith({});
    assert.match(
      text,
      /no snapsync agent configured: set url\/token in the provider "snapsync" block or SNAPSYNC_URL\/SNAPSYNC_TOKEN/,
    );
  });

  it('no agent listening names url in the provider block and agent_url', async () => {
    const dead = agent.url.replace(/:\d+/, ':1');
    const text = await importWith({ url: dead, token: agent.token });
    assert.match(text, /\[CONNECTION_(FAILED|REFUSED)\]/);
    assert.match(text, /url in the provider block \(or SNAPSYNC_URL\) \(or the agent_url\)/);
  });
});
