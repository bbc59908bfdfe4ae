/**
 * Issue 12 end to end: the real agent (`serve --nbd`), real NBD clients (the
 * raw test client, and qemu-io standing in for a VM), the real client and CLI.
 * A sync, revert, resize or delete of an attached vdisk is refused with
 * IN_USE naming the session, and nothing changes; with force the client is
 * drained and disconnected (NBD_ESHUTDOWN), its acknowledged writes are in the
 * safety snapshot, and none of its later requests reaches any container.
 * Attachments show in sessions, describe, ls and /metrics, and so do the
 * transmission threads that serve reading clients.
 */
import * as assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { AgentClient, AgentError } from '../../agent/client/client';
import { CMD, NBD_ERR } from '../../agent/nbd/constants';
import { type AgentProcess, agentCli, startAgentProcess } from '../helpers/agent-process';
import { cleanupTempDirs } from '../helpers/tmp';
import { RawClient } from './helpers/raw-client';

const BS = 4096;
const SIZE = 1024 * 1024;
const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

interface SessionDetail {
  id: string;
  container: string;
  export: string;
  mode: string;
  client: string;
  since: string;
}

/** Errno of the reply to one request, or 'closed' when the server ended the connection instead. */
async function outcome(client: RawClient, readLength = 0): Promise<number | 'closed'> {
  try {
    return (await client.reply(readLength)).error;
  } catch {
    return 'closed';
  }
}

async function readVia(client: RawClient, offset: number, length: number): Promise<Buffer> {
  client.request(CMD.READ, 0, offset, length);
  const r = await client.reply(length);
  assert.equal(r.error, 0, 'read ok');
  return RawClient.readData(r, offset, length);
}

async function writeVia(client: RawClient, offset: number, data: Buffer): Promise<void> {
  client.request(CMD.WRITE, 0, offset, data.length, data);
  assert.equal((await client.reply()).error, 0, 'write acknowledged');
}

/** The value once two reads in a row agree (background work, such as the reclaimer, has settled). */
async function settled(read: () => Promise<number>): Promise<number> {
  let last = await read();
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 25));
    const now = await read();
    if (now === last) return now;
    last = now;
  }
  return last;
}

/** Rejects with IN_USE naming exactly these exports; returns the sessions it named. */
async function refusedInUse(call: Promise<unknown>, exports: string[]): Promise<SessionDetail[]> {
  let sessions: SessionDetail[] = [];
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof AgentError, String(err));
    assert.equal(err.code, 'IN_USE', err.message);
    sessions = (err.details as { sessions: SessionDetail[] }).sessions;
    assert.deepEqual(sessions.map((s) => s.export).sort(), [...exports].sort());
    for (const s of sessions) assert.match(err.message, new RegExp(s.id));
    assert.match(err.message, /force/);
    return true;
  });
  return sessions;
}

describe('attached NBD clients: IN_USE, force, sessions (real agent, real clients)', function () {
  this.timeout(90_000);
  let agent: AgentProcess;
  let client: AgentClient;
  let nbdPort: number;
  let counter = 0;

  before(async () => {
    agent = await startAgentProcess({ args: ['--nbd', '127.0.0.1:0', '--nbd-insecure-no-auth'] });
    nbdPort = Number(new URL(agent.nbd!).port);
    client = await AgentClient.connect(agent.url, { token: agent.token });
  });
  after(async () => {
    await client?.close();
    await agent?.stop();
    cleanupTempDirs();
  });

  /** A source `src` with snapshot src@s1 (0xAA), a target vdisk with 0xBB at 0, a snapshot of it. */
  async function disks(): Promise<{ src: string; target: string }> {
    counter++;
    const src = `src${counter}`;
    const target = `vm${counter}-disk0`;
    for (const name of [src, target])
      await client.call('createContainer', { name, type: 'vdisk', size: SIZE });
    await client.write(src, 0, Buffer.alloc(BS, 0xaa));
    await client.call('snapshot', { container: src, name: 's1' });
    await client.write(target, 0, Buffer.alloc(BS, 0xbb));
    await client.call('snapshot', { container: target, name: 'before' });
    return { src, target };
  }

  it('sync, revert, resize, delete, flatten and import of an attached vdisk are refused with IN_USE; nothing changes', async () => {
    const { src, target } = await disks();
    const { client: vm } = await RawClient.open(nbdPort, target, { structured: false });
    await writeVia(vm, BS, Buffer.alloc(BS, 0x11));
    const before = await client.call('describe', { container: target });

    const [session] = await refusedInUse(client.call('sync', { target, source: `${src}@s1` }), [target]);
    assert.equal(session!.container, target);
    assert.equal(session!.mode, 'read-write');
    assert.match(session!.client, /^127\.0\.0\.1:\d+$/);
    assert.ok(Date.parse(session!.since) > 0);
    await refusedInUse(client.call('revert', { container: target, snapshot: 'before' }), [target]);
    await refusedInUse(client.call('resize', { container: target, size: 2 * SIZE }), [target]);
    // A resize to the size it has changes nothing: it is answered, forced or not, and disconnects no one.
    for (const force of [false, true])
      assert.equal((await client.call('resize', { container: target, size: SIZE, force })).size, SIZE);
    await writeVia(vm, 2 * BS, Buffer.alloc(BS, 0x12));
    await refusedInUse(client.call('deleteContainer', { container: target, recursive: true }), [target]);
    await refusedInUse(client.call('flatten', { container: target }), [target]);
    // An import into it too, before its path is even looked at (this agent allows no directory).
    await refusedInUse(client.call('import', { container: target, path: '/var/tmp/image.raw' }), [target]);

    const after = await client.call('describe', { container: target });
    assert.equal(after.generation, before.generation);
    assert.equal(after.size, before.size);
    assert.equal(after.uuid, before.uuid);
    assert.equal((await client.call('listSnapshots', { container: target })).length, 1, 'no safety snapshot');
    // The client keeps working on its own data.
    assert.deepEqual(await readVia(vm, 0, BS), Buffer.alloc(BS, 0xbb));
    await writeVia(vm, 2 * BS, Buffer.alloc(BS, 0x22));
    assert.deepEqual(
      await readVia(vm, BS, 2 * BS),
      Buffer.concat([Buffer.alloc(BS, 0x11), Buffer.alloc(BS, 0x22)]),
    );
    // A snapshot of an attached disk is allowed, and exact.
    await client.call('snapshot', { container: target, name: 'live' });
    await writeVia(vm, 3 * BS, Buffer.alloc(BS, 0x33));
    assert.deepEqual(await client.read(target, 3 * BS, BS, 'live'), Buffer.alloc(BS));
    assert.deepEqual(await client.read(target, 2 * BS, BS, 'live'), Buffer.alloc(BS, 0x22));
    vm.disconnect();
    await vm.closed;
  });

  it('shows sessions in sessions, describe, ls and /metrics, and forgets them when the client goes', async () => {
    const { src, target } = await disks();
    const writer = await RawClient.open(nbdPort, target, { structured: false });
    const reader = await RawClient.open(nbdPort, `${src}@s1`, { structured: false });
    const { sessions } = await client.call('sessions', {});
    const mine = sessions.filter((s) => s.container === target || s.container === src);
    assert.deepEqual(mine.map((s) => [s.export, s.mode]).sort(), [
      [`${src}@s1`, 'read-only'],
      [target, 'read-write'],
    ]);
    assert.deepEqual(
      (await client.call('sessions', { container: target })).sessions.map((s) => s.export),
      [target],
    );
    assert.deepEqual(
      (await client.call('describe', { container: target })).sessions?.map((s) => s.mode),
      ['read-write'],
    );
    const listed = (await client.call('listContainers', {})).find((c) => c.name === target);
    assert.equal(listed?.sessions?.length, 1);
    const cli = agentCli(agent);
    assert.deepEqual(
      cli('sessions', target).sessions.map((s: SessionDetail) => s.export),
      [target],
    );
    const metrics = await (
      await fetch(`${agent.url.replace('ws', 'http')}/metrics`, {
        headers: { authorization: `Bearer ${agent.token}` },
      })
    ).text();
    assert.match(metrics, new RegExp(`snapsync_nbd_sessions\\{mode="read-write",container="${target}"\\} 1`));
    // A snapshot reader shows under its snapshot's container (it blocks nothing: see the pinned-reader test).
    assert.deepEqual(
      (await client.call('sessions', { container: src })).sessions.map((s) => [s.export, s.mode]),
      [[`${src}@s1`, 'read-only']],
    );
    writer.client.disconnect();
    reader.client.disconnect();
    await Promise.all([writer.client.closed, reader.client.closed]);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual((await client.call('sessions', { container: target })).sessions, []);
    assert.equal((await client.call('describe', { container: target })).sessions, undefined);
  });

  it('/metrics shows the transmission threads: a reading client moves to one, its reads are counted there', async () => {
    const { src } = await disks();
    const metric = async (name: string): Promise<number> => {
      const text = await (
        await fetch(`${agent.url.replace('ws', 'http')}/metrics`, {
          headers: { authorization: `Bearer ${agent.token}` },
        })
      ).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      assert.ok(line, `${name} in /metrics`);
      return Number(line.slice(name.length + 1));
    };
    const readsBefore = await metric('snapsync_nbd_thread_reads_total');
    const { client: reader } = await RawClient.open(nbdPort, `${src}@s1`, { structured: false });
    // The first read moves the connection; the thread answers later ones once it knows their addresses.
    let reads = readsBefore;
    for (let i = 0; i < 50 && reads === readsBefore; i++) {
      assert.ok((await readVia(reader, 0, BS)).equals(Buffer.alloc(BS, 0xaa)), "the snapshot's bytes");
      reads = await metric('snapsync_nbd_thread_reads_total');
    }
    assert.ok(reads > readsBefore, 'reads answered by a thread are counted');
    assert.equal(await metric('snapsync_nbd_thread_connections'), 1);
    assert.ok((await metric('snapsync_nbd_threads')) >= 1);
    reader.disconnect();
    await reader.closed;
    let serving = 1;
    for (let i = 0; i < 200 && serving !== 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
      serving = await metric('snapsync_nbd_thread_connections');
    }
    assert.equal(serving, 0, 'the thread let the connection go');
    // A total: the reads of a connection that went stay counted.
    assert.ok((await metric('snapsync_nbd_thread_reads_total')) >= reads);
  });

  it('deleting a snapshot a reader has open goes ahead: its name is free, the reader reads the old data exactly, the space is freed when it goes', async () => {
    counter++;
    const src = `pinned${counter}`;
    await client.call('createContainer', { name: src, type: 'vdisk', size: SIZE });
    await client.write(src, 0, Buffer.alloc(8 * BS, 0xaa));
    await client.call('snapshot', { container: src, name: 's1' });
    await client.write(src, 0, Buffer.alloc(2 * BS, 0xcc));
    const old = Buffer.concat([Buffer.alloc(8 * BS, 0xaa), Buffer.alloc(SIZE - 8 * BS)]);
    const { client: reader } = await RawClient.open(nbdPort, `${src}@s1`, { structured: false });
    assert.deepEqual(await readVia(reader, 0, BS), old.subarray(0, BS));

    // Reads in flight while the snapshot is deleted: all answered with the snapshot's data.
    const ranges = [0, 3, 6, 7, 12].map((b) => ({ offset: b * BS, length: 2 * BS }));
    for (const r of ranges) reader.request(CMD.READ, 0, r.offset, r.length);
    const deleted = client.call('deleteSnapshot', { snapshot: `${src}@s1` });
    for (const r of ranges) {
      const reply = await reader.reply(r.length);
      assert.equal(reply.error, 0, 'read in flight ok');
      assert.deepEqual(
        RawClient.readData(reply, r.offset, r.length),
        old.subarray(r.offset, r.offset + r.length),
      );
    }
    assert.deepEqual(await deleted, {}, 'the delete is not refused');
    await assert.rejects(
      client.call('describeSnapshot', { snapshot: `${src}@s1` }),
      /NOT_FOUND|does not exist/,
    );
    assert.deepEqual(await client.call('listSnapshots', { container: src }), []);
    assert.deepEqual(await readVia(reader, 0, SIZE), old, 'the reader reads the deleted snapshot exactly');

    // The name is free: a new s1 reads the disk as it is now; the old reader still reads the old one.
    await client.call('snapshot', { container: src, name: 's1' });
    assert.deepEqual(await client.read(src, 0, BS, 's1'), Buffer.alloc(BS, 0xcc));
    assert.deepEqual(await readVia(reader, 0, SIZE), old);
    assert.deepEqual(
      (await client.call('sessions', { container: src })).sessions.map((s) => s.export),
      [`${src}@s1`],
      'the reader is still attached',
    );

    // Nothing but the reader reads through the old s1 once the disk goes (recursive: not refused either).
    await client.call('deleteContainer', { container: src, recursive: true });
    assert.deepEqual(await readVia(reader, 0, SIZE), old);
    const hidden = async () =>
      (await client.call('listSnapshots', { includeHidden: true })).filter(
        (x) => x.container === src && x.hidden,
      );
    assert.equal((await hidden()).length, 1, 'the old s1 is kept, hidden, for its reader');
    assert.equal((await client.call('fsck', {})).ok, true, 'fsck accepts a snapshot held for a reader');
    const held = await settled(async () => (await client.call('info', {})).usedBlocks);

    reader.disconnect();
    await reader.closed;
    // The engine frees it when the reader's session closes; the reclaimer then frees its blocks.
    for (
      let i = 0;
      i < 200 && ((await hidden()).length > 0 || (await client.call('info', {})).usedBlocks > held - 8);
      i++
    )
      await new Promise((r) => setTimeout(r, 25));
    assert.deepEqual(await hidden(), [], 'freed when the reader went');
    assert.equal((await client.call('info', {})).usedBlocks, held - 8, "the old s1's 8 blocks are free");
    assert.equal((await client.call('fsck', {})).ok, true);
  });

  it('force drains and disconnects the writer: its acknowledged writes are in the safety snapshot, its later requests reach nothing', async () => {
    const { src, target } = await disks();
    const { client: vm } = await RawClient.open(nbdPort, target, { structured: false });
    // Acknowledged but never flushed by the client: the drain must flush it into the pre-sync state.
    await writeVia(vm, BS, Buffer.alloc(BS, 0x77));
    const report = await client.call('sync', { target, source: `${src}@s1`, force: true });
    assert.ok(report.safetySnapshot, 'a safety snapshot was kept');
    // The client is told the session is over, then disconnected.
    vm.request(CMD.WRITE, 0, BS, BS, Buffer.alloc(BS, 0x99));
    const first = await outcome(vm);
    assert.ok(first === NBD_ERR.ESHUTDOWN || first === 'closed', `got ${first}`);
    await vm.closed;
    const safety = report.safetySnapshot.name;
    assert.deepEqual(await client.read(target, BS, BS, safety), Buffer.alloc(BS, 0x77));
    assert.deepEqual(await client.read(target, 0, BS, safety), Buffer.alloc(BS, 0xbb));
    // After the sync the target reads the source's data; nothing of 0x99 anywhere.
    assert.deepEqual(await client.read(target, 0, BS), Buffer.alloc(BS, 0xaa));
    assert.deepEqual(await client.read(target, BS, BS), Buffer.alloc(BS));
    assert.deepEqual(await client.read(src, BS, BS), Buffer.alloc(BS));
    assert.deepEqual((await client.call('sessions', { container: target })).sessions, []);
    assert.equal((await client.call('fsck', {})).ok, true);
  });

  it('force revert, resize and delete disconnect too; a client of a deleted vdisk never reaches its namesake', async () => {
    const { target } = await disks();
    let vm = (await RawClient.open(nbdPort, target, { structured: false })).client;
    await writeVia(vm, BS, Buffer.alloc(BS, 0x12));
    await client.call('revert', { container: target, snapshot: 'before', force: true });
    vm.request(CMD.READ, 0, 0, 16);
    assert.notEqual(await outcome(vm, 16), 0);
    await vm.closed;
    assert.deepEqual(await client.read(target, BS, BS), Buffer.alloc(BS));
    // Each forced operation fenced the export (fence.test.ts); the client is gone: lift it for the next one.
    await client.call('unfence', { container: target });

    vm = (await RawClient.open(nbdPort, target, { structured: false })).client;
    await client.call('resize', { container: target, size: 2 * SIZE, force: true });
    vm.request(CMD.READ, 0, 0, 16);
    assert.notEqual(await outcome(vm, 16), 0);
    await vm.closed;
    await client.call('unfence', { container: target });

    vm = (await RawClient.open(nbdPort, target, { structured: false })).client;
    await client.call('deleteContainer', { container: target, recursive: true, force: true });
    await client.call('createContainer', { name: target, type: 'vdisk', size: SIZE });
    vm.request(CMD.WRITE, 0, 0, BS, Buffer.alloc(BS, 0x44));
    assert.notEqual(await outcome(vm), 0);
    await vm.closed;
    assert.deepEqual(await client.read(target, 0, BS), Buffer.alloc(BS), 'the new vdisk was not written');
  });

  it('a forced operation the agent would refuse disconnects no one: the client keeps its disk, no fence', async () => {
    const { src, target } = await disks();
    const { client: vm } = await RawClient.open(nbdPort, target, { structured: false });
    await writeVia(vm, BS, Buffer.alloc(BS, 0x5a));
    const refused = async (call: Promise<unknown>, code: string) =>
      assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof AgentError, String(err));
        assert.equal(err.code, code, err.message);
        return true;
      });
    // A typo in the source or the snapshot, a shrink without shrink, a delete that would need
    // recursive, an import of a path this agent does not allow.
    await refused(client.call('sync', { target, source: `${src}@no-such`, force: true }), 'NOT_FOUND');
    await refused(
      client.call('revert', { container: target, snapshot: 'no-such', force: true }),
      'NOT_FOUND',
    );
    await refused(
      client.call('resize', { container: target, size: SIZE / 2, force: true }),
      'INVALID_ARGUMENT',
    );
    await refused(client.call('deleteContainer', { container: target, force: true }), 'HAS_DEPENDENTS');
    await refused(
      client.call('import', { container: target, path: '/var/tmp/image.raw', force: true }),
      'PATH_NOT_ALLOWED',
    );
    // Still attached, unfenced, and its disk as it left it.
    const { sessions, fences } = await client.call('sessions', { container: target });
    assert.equal(sessions.length, 1);
    assert.deepEqual(fences, []);
    assert.deepEqual(
      await readVia(vm, 0, 2 * BS),
      Buffer.concat([Buffer.alloc(BS, 0xbb), Buffer.alloc(BS, 0x5a)]),
    );
    await writeVia(vm, 2 * BS, Buffer.alloc(BS, 0x5b));
    const after = await client.call('describe', { container: target });
    assert.equal(after.size, SIZE);
    assert.equal((await client.call('listSnapshots', { container: target })).length, 1, 'no safety snapshot');
    // The same sync spelled right goes ahead, and disconnects it.
    await client.call('sync', { target, source: `${src}@s1`, force: true });
    await vm.closed;
    assert.deepEqual(await client.read(target, 0, BS), Buffer.alloc(BS, 0xaa));
    assert.equal((await client.call('fsck', {})).ok, true);
  });

  it('a VM sync is refused while any synced member disk is attached, not for a role it leaves alone', async () => {
    counter++;
    const [prod, stag] = [`prodvm${counter}`, `stagvm${counter}`];
    for (const vm of [prod, stag]) {
      await client.call('createContainer', { name: vm, type: 'vm' });
      for (const role of ['disk0', 'disk1']) {
        await client.call('createContainer', { name: `${vm}-${role}`, type: 'vdisk', size: SIZE });
        await client.call('addMember', { vm, role, member: `${vm}-${role}` });
      }
    }
    await client.write(`${prod}-disk0`, 0, Buffer.alloc(BS, 0xaa));
    await client.call('snapshot', { container: prod, name: 'n1' });
    const { client: vm } = await RawClient.open(nbdPort, `${stag}-disk1`, { structured: false });
    const [session] = await refusedInUse(client.call('sync', { target: stag, source: `${prod}@n1` }), [
      `${stag}-disk1`,
    ]);
    assert.equal(session!.container, `${stag}-disk1`);
    await refusedInUse(client.call('revert', { container: stag, snapshot: 'none' }), [`${stag}-disk1`]);
    await refusedInUse(client.call('deleteContainer', { container: stag, recursive: true }), [
      `${stag}-disk1`,
    ]);
    assert.deepEqual(
      (await client.call('sessions', { container: stag })).sessions.map((s) => s.export),
      [`${stag}-disk1`],
    );
    // Syncing only the role nobody is attached to goes ahead; the attached disk keeps its session.
    await client.call('sync', { target: stag, source: `${prod}@n1`, members: ['disk0'] });
    assert.deepEqual(await client.read(`${stag}-disk0`, 0, BS), Buffer.alloc(BS, 0xaa));
    await writeVia(vm, 0, Buffer.alloc(BS, 0x66));
    await client.call('sync', { target: stag, source: `${prod}@n1`, force: true });
    vm.request(CMD.READ, 0, 0, 16);
    assert.notEqual(await outcome(vm, 16), 0);
    await vm.closed;
    assert.deepEqual(await client.read(`${stag}-disk1`, 0, BS), Buffer.alloc(BS));
  });

  it('the issue repro with qemu-io and the CLI: sync and rm are refused while it runs; --force disconnects it', async () => {
    const { src, target } = await disks();
    const qemu = new QemuIo(`nbd://127.0.0.1:${nbdPort}/${target}`);
    try {
      assert.match(await qemu.run('read -v 0 16'), /bb bb bb bb/);
      const cli = (...args: string[]) =>
        spawnSync(process.execPath, [BIN, ...args], {
          env: { ...process.env, SNAPSYNC_URL: agent.url, SNAPSYNC_TOKEN: agent.token },
          encoding: 'utf8',
        });
      const sync = cli('sync', target, `${src}@s1`);
      assert.equal(sync.status, 1, sync.stderr);
      assert.match(sync.stderr, /\[IN_USE\].*read-write on .*--force|\[IN_USE\].*force/);
      const rm = cli('rm', target, '--recursive');
      assert.equal(rm.status, 1, rm.stderr);
      assert.match(rm.stderr, /\[IN_USE\]/);
      assert.match(await qemu.run('write -P 0x44 0 4096'), /wrote 4096/);
      assert.match(await qemu.run('read -v 0 16'), /44 44 44 44/);
      const forced = cli('sync', target, `${src}@s1`, '--force', '--json');
      assert.equal(forced.status, 0, forced.stderr);
      const safety = JSON.parse(forced.stdout).safetySnapshot.name;
      assert.deepEqual(await client.read(target, 0, 16, safety), Buffer.alloc(16, 0x44));
      // qemu-io's next request fails: its disk went away; nothing reaches the synced disk.
      assert.doesNotMatch(await qemu.run('write -P 0x55 0 4096'), /wrote 4096/);
      assert.deepEqual(await client.read(target, 0, 16), Buffer.alloc(16, 0xaa));
    } finally {
      qemu.close();
    }
  });
});

/** qemu-io as a long-running client (a stand-in for a VM), one command at a time. */
class QemuIo {
  private readonly child: ChildProcessWithoutNullStreams;
  private out = '';

  constructor(url: string) {
    this.child = spawn('qemu-io', ['-f', 'raw', url]);
    this.child.stdout.on('data', (d) => {
      this.out += d;
    });
    this.child.stderr.on('data', (d) => {
      this.out += d;
    });
  }

  /** Sends one command; resolves with its output once the prompt is back (or qemu-io exited). */
  async run(command: string): Promise<string> {
    await this.prompt();
    this.out = '';
    this.child.stdin.write(`${command}\n`);
    await this.prompt();
    return this.out;
  }

  private async prompt(): Promise<void> {
    for (let i = 0; i < 600; i++) {
      if (/qemu-io> $/.test(this.out) || this.child.exitCode !== null) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`qemu-io gave no prompt: ${this.out}`);
  }

  close(): void {
    this.child.stdin.end('quit\n');
    setTimeout(() => this.child.kill('SIGKILL'), 2000).unref();
  }
}
