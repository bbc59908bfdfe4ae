/**
 * Issue 12, "no later request of it reaches any container": a hypervisor's
 * NBD client (QEMU) reconnects by export name after a forced detach, and the
 * agent cannot tell that from a fresh boot. So a forced operation that
 * disconnects a vdisk's clients fences the export: every new connection to it
 * is refused (saying it is fenced) until the operator runs `unfence`. The
 * real agent process, the raw NBD client, the real CLI; the fence survives a
 * restart of the agent.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { CMD, OPT, REP } from '../../agent/nbd/constants';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';
import { RawClient } from './helpers/raw-client';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');
const BS = 4096;
const SIZE = 1024 * 1024;

interface Fence {
  container: string;
  uuid: string;
  since: string;
  op: string;
  clients: string[];
}

/** Export names a client sees listed (real nbdinfo --list). */
function listed(port: number): string[] {
  const out = spawnSync('nbdinfo', ['--list', '--json', `nbd://127.0.0.1:${port}`], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return (JSON.parse(out.stdout) as { exports: { 'export-name': string }[] }).exports.map(
    (e) => e['export-name'],
  );
}

/** The agent's Prometheus text. */
async function metrics(agent: AgentProcess): Promise<string> {
  const res = await fetch(`${agent.url.replace('ws', 'http')}/metrics`, {
    headers: { authorization: `Bearer ${agent.token}` },
  });
  return res.text();
}

async function readVia(client: RawClient, offset: number, length: number): Promise<Buffer> {
  client.request(CMD.READ, 0, offset, length);
  const r = await client.reply(length);
  assert.equal(r.error, 0, 'read ok');
  return RawClient.readData(r, offset, length);
}

/** A new connection asking for `name` with GO (or INFO): the final option reply. */
async function ask(port: number, name: string, option: number = OPT.GO) {
  const c = await RawClient.handshake(port);
  try {
    return (await c.go(name, [3], option)).final;
  } finally {
    c.destroy();
  }
}

/** Asserts a new connection to `name` is refused as fenced (GO and INFO), naming the unfence command. */
async function assertFenced(port: number, name: string): Promise<void> {
  for (const option of [OPT.GO, OPT.INFO]) {
    const final = await ask(port, name, option);
    assert.equal(final.type, REP.ERR_POLICY, `option ${option}: reply 0x${final.type.toString(16)}`);
    const text = final.data.toString();
    assert.match(text, new RegExp(`"${name}" is fenced .*forced `), text);
    assert.match(text, new RegExp(`snapsync-agent unfence ${name}`), text);
  }
  // EXPORT_NAME cannot be answered with an error: the connection is closed, no transmission starts.
  const c = await RawClient.handshake(port);
  c.option(OPT.EXPORT_NAME, Buffer.from(name));
  await c.closed;
}

describe('nbd fences: a forced detach fences the export until unfence (real agent, raw NBD client)', function () {
  this.timeout(90_000);
  let agent: AgentProcess;
  let client: AgentClient;
  let port: number;

  const start = async (poolDir?: string) => {
    agent = await startAgentProcess({
      ...(poolDir ? { poolDir } : {}),
      args: ['--nbd', '127.0.0.1:0', '--nbd-insecure-no-auth'],
    });
    port = Number(new URL(agent.nbd!).port);
    client = await AgentClient.connect(agent.url, { token: agent.token });
  };
  before(() => start());
  after(async () => {
    await client?.close();
    await agent?.stop();
    cleanupTempDirs();
  });

  it("a forced sync fences the writer's export: new connections are refused, sessions/describe show the fence, it survives a restart; after unfence a new connection reads the synced data", async () => {
    for (const name of ['src', 'staging'])
      await client.call('createContainer', { name, type: 'vdisk', size: SIZE });
    await client.write('src', 0, Buffer.alloc(BS, 0xaa));
    await client.call('snapshot', { container: 'src', name: 's1' });
    await client.write('staging', 0, Buffer.alloc(BS, 0xbb));
    await client.call('snapshot', { container: 'staging', name: 'before' });

    const { client: vm } = await RawClient.open(port, 'staging', { structured: false });
    const report = await client.call('sync', { target: 'staging', source: 'src@s1', force: true });
    assert.ok(report.safetySnapshot);
    await vm.closed;

    // The reconnect a hypervisor would make: refused, and the refusal says why and what to run.
    await assertFenced(port, 'staging');
    // Snapshot readers are not fenced (a snapshot never changes), nor other disks.
    const reader = await RawClient.open(port, 'staging@before', { structured: false });
    assert.deepEqual(await readVia(reader.client, 0, BS), Buffer.alloc(BS, 0xbb));
    reader.client.disconnect();
    const other = await RawClient.open(port, 'src', { structured: false });
    other.client.disconnect();

    const { sessions, fences } = await client.call('sessions', {});
    assert.deepEqual(
      sessions.filter((s) => s.container === 'staging' && s.mode === 'read-write'),
      [],
      'no session came back',
    );
    const [fence] = fences ?? [];
    assert.equal(fences?.length, 1, JSON.stringify(fences));
    assert.equal(fence!.container, 'staging');
    assert.equal(fence!.op, 'sync');
    assert.match(fence!.clients[0]!, /^127\.0\.0\.1:\d+$/);
    assert.ok(Date.parse(fence!.since) > 0);
    const described = await client.call('describe', { container: 'staging' });
    assert.deepEqual(described.fences, [fence]);
    assert.equal(fence!.uuid, described.uuid);
    assert.equal((await client.call('describe', { container: 'src' })).fences, undefined);
    assert.match(agent.logs(), /nbd export fenced: connection refused.*staging/);
    // Nothing may open it, so a listing leaves it out; the operator's dashboard shows it.
    assert.ok(!listed(port).includes('staging'), `listed: ${listed(port)}`);
    assert.ok(listed(port).includes('src'));
    assert.match(await metrics(agent), /^snapsync_nbd_fences\{container="staging"\} 1$/m);

    // The agent restarts (the guest may be retrying meanwhile): the fence is still there.
    await client.close();
    const poolDir = agent.poolDir;
    assert.equal(await agent.stop(), 0);
    await start(poolDir);
    await assertFenced(port, 'staging');
    const cli = agentCli(agent);
    assert.deepEqual(cli('sessions', 'staging').fences, [fence]);
    // As an operator reads it: the FENCED line and the describe row say what to run.
    const text = (...args: string[]) =>
      spawnSync(process.execPath, [BIN, ...args], {
        env: { ...process.env, SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token },
        encoding: 'utf8',
      }).stdout;
    assert.match(
      text('sessions'),
      /^FENCED staging since \S+ by sync \(disconnected 127\.0\.0\.1:\d+\): .*snapsync-agent unfence staging$/m,
    );
    assert.match(
      text('describe', 'staging'),
      /^fenced\s+staging since \S+ by sync: snapsync-agent unfence staging$/m,
    );

    // The operator stopped the VM and lifts the fence: a new connection (a fresh boot) reads the synced disk.
    const lifted = cli('unfence', 'staging') as { lifted: Fence[] };
    assert.deepEqual(lifted.lifted, [fence]);
    assert.deepEqual((cli('unfence', 'staging') as { lifted: Fence[] }).lifted, [], 'idempotent');
    const fresh = await RawClient.open(port, 'staging', { structured: false });
    assert.deepEqual(await readVia(fresh.client, 0, BS), Buffer.alloc(BS, 0xaa));
    fresh.client.disconnect();
    await fresh.client.closed;
    assert.deepEqual((await client.call('sessions', {})).fences, []);
    assert.equal((await client.call('describe', { container: 'staging' })).fences, undefined);
    assert.ok(listed(port).includes('staging'));
    assert.doesNotMatch(await metrics(agent), /^snapsync_nbd_fences\{/m);
  });

  it('a forced delete fences the name: a new vdisk of that name is refused to new connections until unfence', async () => {
    await client.call('createContainer', { name: 'gone', type: 'vdisk', size: SIZE });
    const { client: vm } = await RawClient.open(port, 'gone', { structured: false });
    await client.call('deleteContainer', { container: 'gone', force: true });
    await vm.closed;
    await client.call('createContainer', { name: 'gone', type: 'vdisk', size: SIZE });
    await assertFenced(port, 'gone');
    assert.equal((await client.call('describe', { container: 'gone' })).fences?.[0]?.op, 'deleteContainer');
    assert.equal((await client.call('unfence', { container: 'gone' })).lifted.length, 1);
    const fresh = await RawClient.open(port, 'gone', { structured: false });
    assert.deepEqual(await readVia(fresh.client, 0, BS), Buffer.alloc(BS));
    fresh.client.disconnect();
  });

  it('no client attached, no fence: force and normal syncs, snapshots and snapshot readers leave exports open', async () => {
    await client.call('createContainer', { name: 'idle', type: 'vdisk', size: SIZE });
    await client.write('idle', 0, Buffer.alloc(BS, 0x11));
    await client.call('snapshot', { container: 'idle', name: 'a' });
    await client.call('sync', { target: 'idle', source: 'src@s1', force: true });
    await client.call('revert', { container: 'idle', snapshot: 'a' });
    // A reader of a snapshot and a snapshot of an attached disk detach nothing.
    const reader = await RawClient.open(port, 'idle@a', { structured: false });
    const writer = await RawClient.open(port, 'idle', { structured: false });
    await client.call('snapshot', { container: 'idle', name: 'b' });
    await client.call('deleteSnapshot', { snapshot: 'idle@a', force: true });
    assert.deepEqual(await readVia(writer.client, 0, BS), Buffer.alloc(BS, 0x11));
    writer.client.disconnect();
    reader.client.disconnect();
    await Promise.all([writer.client.closed, reader.client.closed]);
    assert.deepEqual((await client.call('sessions', {})).fences, []);
    const again = await RawClient.open(port, 'idle', { structured: false });
    again.client.disconnect();
  });

  it('after a downgrade, a fence entry with a field this build does not know still fences, and sessions/describe/unfence show only the fields the protocol defines', async () => {
    await client.call('createContainer', { name: 'rolled', type: 'vdisk', size: SIZE });
    const { uuid } = await client.call('describe', { container: 'rolled' });
    const known: Fence = {
      container: 'rolled',
      uuid,
      since: '2026-12-03T19:53:48.394Z',
      op: 'sync',
      clients: ['unix:pid=1,uid=0'],
    };
    // What a newer build adding an optional field (same file version) would leave behind.
    await client.close();
    const poolDir = agent.poolDir;
    assert.equal(await agent.stop(), 0);
    const file = path.join(poolDir, 'nbd-fences.json');
    fs.writeFileSync(file, JSON.stringify({ version: 1, fences: [{ ...known, scope: 'all-exports' }] }));
    await start(poolDir);

    await assertFenced(port, 'rolled');
    const cli = agentCli(agent);
    assert.deepEqual(cli('sessions').fences, [known]);
    assert.deepEqual(cli('describe', 'rolled').fences, [known]);
    assert.deepEqual(cli('unfence', 'rolled').lifted, [known]);
    assert.deepEqual(cli('sessions').fences, []);
    const fresh = await RawClient.open(port, 'rolled', { structured: false });
    fresh.client.disconnect();
    await fresh.client.closed;
  });
});
