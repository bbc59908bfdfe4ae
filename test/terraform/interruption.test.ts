/**
 * StopProvider and `timeouts { … }` over gRPC, against a real agent paused
 * with SIGSTOP (a hung agent, as the provider sees one): a timeout or a stop
 * gives a diagnostic naming the resource, the action and the limit; no agent
 * call is sent after it; a mutation already sent is waited for (the agent
 * runs it whole), and the state returned is what the agent then shows.
 */
import * as assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { containerBinding } from '../../provider-terraform/resources/container';
import { objectType } from '../../provider-terraform/schema';
import { decode, encode } from '../../provider-terraform/wire/cty';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';
import { call, configuredPlugin, type PluginProcess } from './plugin-process';

type Response = Record<string, { msgpack: Buffer }> & {
  diagnostics: Array<{ severity: string | number; summary: string; detail: string; attribute: unknown }>;
};
type State = Record<string, unknown>;

const T = objectType(containerBinding.schema);
const dv = (v: unknown) => ({ msgpack: encode(v, T) });
const value = (r: Response, field: string) => decode(r[field]!.msgpack, T) as State | null;
const blank = Object.fromEntries(Object.keys(containerBinding.schema.attributes).map((a) => [a, null]));
const disk = (name: string, timeouts: Record<string, string> | null = null) => ({
  ...blank,
  name,
  type: 'vdisk',
  size: 1 << 20,
  timeouts: timeouts && { create: null, update: null, delete: null, ...timeouts },
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('terraform provider: StopProvider and timeouts against a hung agent', function () {
  this.timeout(120_000);
  let agent: AgentProcess;
  let plugin: PluginProcess;
  let client: grpc.Client;
  const rpc = (method: string, request: object) => call<Response>(client, method, request);
  const create = (config: State) =>
    rpc('ApplyResourceChange', {
      type_name: 'snapsync_container',
      prior_state: dv(null),
      planned_state: dv(config),
      config: dv(config),
    });
  const names = () => agentCli(agent)('ls').map((c: { name: string }) => c.name);

  beforeEach(async () => {
    agent = await startAgentProcess();
    ({ plugin, client } = await configuredPlugin(agent));
  });
  afterEach(async () => {
    agent.pause(false);
    client?.close();
    plugin?.child.kill('SIGKILL');
    await agent?.stop();
  });
  after(cleanupTempDirs);

  it('refuses a timeout that is not a duration, naming timeouts.create', async () => {
    const bad = await rpc('ValidateResourceConfig', {
      type_name: 'snapsync_container',
      config: dv(disk('tf-any', { create: 'soon' })),
    });
    assert.equal(bad.diagnostics.length, 1);
    assert.match(bad.diagnostics[0]!.detail, /timeouts\.create: "soon" is not a duration/);
    assert.deepEqual(bad.diagnostics[0]!.attribute, {
      steps: [
        { attribute_name: 'timeouts', selector: 'attribute_name' },
        { attribute_name: 'create', selector: 'attribute_name' },
      ],
    });
    const good = await rpc('ValidateResourceConfig', {
      type_name: 'snapsync_container',
      config: dv(disk('tf-any', { create: '1h30m', delete: '90s' })),
    });
    assert.deepEqual(good.diagnostics, []);
  });

  it('a create that outlives timeouts.create fails naming the resource and the limit; nothing was sent', async () => {
    agent.pause(true); // the connection is not open yet: the connect hangs
    const started = Date.now();
    const r = await create(disk('tf-slow', { create: '1s' }));
    assert.ok(Date.now() - started < 8_000, 'the provider stopped waiting');
    assert.equal(r.diagnostics.length, 1);
    assert.match(
      r.diagnostics[0]!.summary,
      /^snapsync_container "tf-slow": create timed out after 1s \(timeouts\.create\) \[TIMEOUT\]$/,
    );
    assert.match(r.diagnostics[0]!.detail, /Nothing had been sent to the agent/);
    assert.equal(value(r, 'new_state'), null);
    agent.pause(false);
    await sleep(500);
    assert.equal(names().includes('tf-slow'), false);
  });

  it('StopProvider during a create: the mutation in flight is answered, and the state holds the object as it is', async () => {
    assert.deepEqual((await create(disk('tf-first'))).diagnostics, []); // the connection is open now
    agent.pause(true);
    const pending = create(disk('tf-stopped'));
    await sleep(1_000); // createContainer is on its way to the paused agent
    await call(client, 'StopProvider', {});
    await sleep(1_000);
    agent.pause(false); // within the grace: the agent answers
    const r = await pending;
    assert.equal(r.diagnostics.length, 1);
    assert.match(r.diagnostics[0]!.summary, /^snapsync_container "tf-stopped": create stopped \[STOPPED\]$/);
    assert.match(r.diagnostics[0]!.detail, /The agent had done createContainer/);
    const live = agentCli(agent)('describe', 'tf-stopped');
    assert.equal(value(r, 'new_state')!.id, live.uuid, 'the state records the container that exists');

    // After a stop nothing more is sent: the next create fails at once.
    const after = await create(disk('tf-after'));
    assert.match(after.diagnostics[0]!.summary, /"tf-after": create stopped \[STOPPED\]/);
    assert.match(after.diagnostics[0]!.detail, /Nothing had been sent/);
    assert.equal(value(after, 'new_state'), null);
    assert.equal(names().includes('tf-after'), false);
  });

  it('a delete that times out before sending anything keeps the object in the state, as read back from the agent', async () => {
    const made = await create(disk('tf-kept', { delete: '1s' }));
    assert.deepEqual(made.diagnostics, []);
    agent.pause(true); // the delete's first read hangs
    const pending = rpc('ApplyResourceChange', {
      type_name: 'snapsync_container',
      prior_state: made.new_state,
      planned_state: dv(null),
      config: dv(null),
    });
    await sleep(2_000);
    agent.pause(false); // the read back after the timeout gets its answer
    const r = await pending;
    assert.match(
      r.diagnostics[0]!.summary,
      /"tf-kept": delete timed out after 1s \(timeouts\.delete\) \[TIMEOUT\]/,
    );
    assert.match(
      r.diagnostics[0]!.detail,
      /Nothing had been sent.*The state records what the agent now shows/,
    );
    assert.equal(value(r, 'new_state')!.id, agentCli(agent)('describe', 'tf-kept').uuid);
  });

  it('a mutation unanswered past the grace: the outcome is unknown, and the agent applies it whole once it runs', async () => {
    assert.deepEqual((await create(disk('tf-first'))).diagnostics, []);
    agent.pause(true);
    const r = await create(disk('tf-late', { create: '1s' }));
    assert.match(r.diagnostics[0]!.summary, /create timed out after 1s \(timeouts\.create\) \[TIMEOUT\]/);
    assert.match(r.diagnostics[0]!.detail, /had not answered createContainer within 10 s/);
    assert.match(r.diagnostics[0]!.detail, /import it with id "tf-late"/);
    assert.equal(value(r, 'new_state'), null);
    agent.pause(false);
    // The request was already in the agent's socket: it runs it, whole.
    for (let i = 0; i < 50 && !names().includes('tf-late'); i++) await sleep(100);
    assert.equal(agentCli(agent)('describe', 'tf-late').size, 1 << 20);
  });
});
