/**
 * NBD multi-conn with the real agent and real clients: connections of one
 * client (one TLS identity, or one process on the Unix socket) share a
 * vdisk's writer slot and see NBD_FLAG_CAN_MULTI_CONN (nbdinfo, nbdcopy
 * --connections=4 writing and reading an export exactly); another client, or
 * one without an identity, gets it read-only; and a FLUSH on one connection makes durable what was
 * acknowledged on another: SIGKILL, reopen, it is there.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client/client';
import { Pool } from '../../agent/engine';
import { CMD } from '../../agent/nbd/constants';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { makeNbdCredentials, type NbdCredentials, nbdX509ServeArgs } from '../helpers/nbd-credentials';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { RawClient } from './helpers/raw-client';
import { run, runOk } from './helpers/served-pool';

const MiB = 1024 * 1024;
const BS = 4096;

async function info(uri: string): Promise<{ can_multi_conn: boolean; is_read_only: boolean }> {
  return JSON.parse(await runOk('nbdinfo', ['--json', uri])).exports[0];
}

describe('nbd multi-conn (real agent, nbdinfo, nbdcopy, raw client)', function () {
  this.timeout(300_000);
  let dir: string;
  after(cleanupTempDirs);

  describe('over TLS: one client identity, several writing connections', () => {
    let creds: NbdCredentials;
    let agent: AgentProcess;
    let client: AgentClient;
    const uri = (name: string, cn: string) =>
      `nbds://127.0.0.1:${new URL(agent.nbd!).port}/${name}?tls-certificates=${creds.clientDir(cn)}`;

    before(async () => {
      dir = tempDir('snapsync-multiconn-');
      creds = makeNbdCredentials(path.join(dir, 'creds'));
      agent = await startAgentProcess({ args: nbdX509ServeArgs(creds) });
      client = await AgentClient.connect(agent.url, { token: agent.token });
      await client.call('createContainer', { name: 'mc', type: 'vdisk', size: 32 * MiB });
    });
    after(async () => {
      client?.close();
      await agent?.stop();
    });

    it('nbdinfo shows can_multi_conn on a writable vdisk; nbdcopy --connections=4 writes and reads it exactly', async () => {
      const hv1 = await info(uri('mc', 'hv1'));
      assert.equal(hv1.can_multi_conn, true);
      assert.equal(hv1.is_read_only, false);
      const local = path.join(dir, 'in.img');
      const image = randomBytes(32 * MiB);
      image.fill(0, 5 * MiB, 9 * MiB); // a hole for nbdcopy to skip or zero
      fs.writeFileSync(local, image);
      await runOk('nbdcopy', ['--connections=4', '--requests=16', local, uri('mc', 'hv1')]);
      const out = path.join(dir, 'out.img');
      await runOk('nbdcopy', ['--connections=4', uri('mc', 'hv1'), out]);
      assert.ok(fs.readFileSync(out).equals(image), 'read back over 4 connections');
      assert.ok(
        (await client.read('mc', 0, 4 * MiB)).equals(image.subarray(0, 4 * MiB)),
        'the engine agrees',
      );
    });

    it('while a client writes, its further connections write too; another identity gets it read-only', async () => {
      // hv1 holds the writer slot with one connection (qemu-io, x509 as hv1) while the others ask.
      const holder = run('qemu-io', [
        '--object',
        `tls-creds-x509,id=tls0,endpoint=client,dir=${creds.clientDir('hv1')}`,
        '--image-opts',
        `driver=nbd,host=127.0.0.1,port=${new URL(agent.nbd!).port},export=mc,tls-creds=tls0`,
        '-c',
        'sleep 8000',
      ]);
      for (
        let i = 0;
        i < 100 && (await client.call('sessions', { container: 'mc' })).sessions.length === 0;
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
      const modes = (await client.call('sessions', { container: 'mc' })).sessions.map((x) => x.mode);
      if (modes.length === 0) assert.fail(`qemu-io did not attach: ${JSON.stringify(await holder)}`);
      assert.deepEqual(modes, ['read-write']);
      assert.equal((await info(uri('mc', 'hv1'))).is_read_only, false, 'the same client: another writer');
      const other = await info(uri('mc', 'hv2'));
      assert.equal(other.is_read_only, true, 'another client: read-only');
      assert.equal(other.can_multi_conn, true, 'read-only connections all see the same data');
      assert.equal((await holder).code, 0);
    });
  });

  describe('on the Unix socket: one process, several writing connections', () => {
    killAgentsTestsLeave();
    let agent: AgentProcess;
    let client: AgentClient;
    let socket: string;
    const uri = (name: string) => `nbd+unix:///${name}?socket=${socket}`;

    before(async () => {
      dir = tempDir('snapsync-multiconn-unix-');
      socket = path.join(dir, 'nbd.sock');
      agent = await startAgentProcess({ args: ['--nbd', `unix:${socket}`] });
      client = await AgentClient.connect(agent.url, { token: agent.token });
      await client.call('createContainer', { name: 'mu', type: 'vdisk', size: 32 * MiB });
    });
    after(async () => {
      client?.close();
      await agent?.stop();
    });

    it('nbdinfo shows can_multi_conn on a writable vdisk; nbdcopy --connections=4 writes and reads it exactly', async () => {
      const shown = await info(uri('mu'));
      assert.equal(shown.can_multi_conn, true);
      assert.equal(shown.is_read_only, false);
      const local = path.join(dir, 'in.img');
      const image = randomBytes(32 * MiB);
      image.fill(0, 3 * MiB, 7 * MiB);
      fs.writeFileSync(local, image);
      await runOk('nbdcopy', ['--connections=4', '--requests=16', local, uri('mu')]);
      const out = path.join(dir, 'out.img');
      await runOk('nbdcopy', ['--connections=4', uri('mu'), out]);
      assert.ok(fs.readFileSync(out).equals(image), 'read back over 4 connections');
      assert.ok(
        (await client.read('mu', 0, 4 * MiB)).equals(image.subarray(0, 4 * MiB)),
        'the engine agrees',
      );
    });

    it('while one process writes, another process gets the disk read-only; sessions name the writer by pid', async () => {
      const holder = spawn('qemu-io', ['-f', 'raw', uri('mu'), '-c', 'sleep 8000'], { stdio: 'ignore' });
      const holderExit = new Promise<number | null>((resolve) => holder.on('exit', resolve));
      let sessions = (await client.call('sessions', { container: 'mu' })).sessions;
      for (let i = 0; i < 100 && sessions.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        sessions = (await client.call('sessions', { container: 'mu' })).sessions;
      }
      if (sessions.length === 0) assert.fail(`qemu-io did not attach (exit ${await holderExit})`);
      assert.deepEqual(
        sessions.map((x) => x.mode),
        ['read-write'],
      );
      assert.equal(sessions[0]!.client, `unix:pid=${holder.pid},uid=${process.getuid!()}`);
      const other = await info(uri('mu'));
      assert.equal(other.is_read_only, true, 'another process: read-only');
      assert.equal(other.can_multi_conn, true, 'read-only connections all see the same data');
      const before = await client.read('mu', 0, 4096);
      const write = await run('qemu-io', ['-f', 'raw', uri('mu'), '-c', 'write -P 0x55 0 4096']);
      assert.notEqual(write.code, 0, `a second process must not write: ${write.stdout}`);
      assert.ok((await client.read('mu', 0, 4096)).equals(before), 'the disk is unchanged');
      assert.equal(await holderExit, 0);
    });
  });

  it('on a host without koffi the agent says so, and a Unix client writes through one connection', async () => {
    const noKoffiDir = tempDir('snapsync-no-koffi-');
    const preload = path.join(noKoffiDir, 'no-koffi.js');
    // The package missing, as on a host where the optional install failed.
    fs.writeFileSync(
      preload,
      `const Module = require('module'); const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'koffi') throw Object.assign(new Error("Cannot find module 'koffi'"), { code: 'MODULE_NOT_FOUND' });
  return resolve.call(this, request, ...rest);
};`,
    );
    const socket = path.join(noKoffiDir, 'nbd.sock');
    const agent = await startAgentProcess({
      args: ['--nbd', `unix:${socket}`],
      env: { NODE_OPTIONS: `--require ${preload}` },
    });
    try {
      const client = await AgentClient.connect(agent.url, { token: agent.token });
      await client.call('createContainer', { name: 'one', type: 'vdisk', size: MiB });
      client.close();
      const shown = await info(`nbd+unix:///one?socket=${socket}`);
      assert.equal(shown.can_multi_conn, false);
      assert.equal(shown.is_read_only, false);
      assert.match(agent.logs(), /optional koffi package is missing/);
    } finally {
      await agent.stop();
    }
  });

  describe('a FLUSH on connection B covers the writes acknowledged on connection A', () => {
    let agent: AgentProcess;
    after(async () => {
      await agent?.kill();
    });

    it('SIGKILL right after B flushed: the reopened pool holds every write A had acknowledged', async () => {
      const args = ['--nbd', '127.0.0.1:0', '--nbd-insecure-no-auth'];
      agent = await startAgentProcess({ args });
      const { poolDir } = agent;
      const client = await AgentClient.connect(agent.url, { token: agent.token });
      await client.call('createContainer', { name: 'x', type: 'vdisk', size: 256 * BS });
      await client.call('snapshot', { container: 'x', name: 'empty' });
      const port = () => Number(new URL(agent.nbd!).port);
      // Without an identity a writable vdisk is not multi-conn; its snapshots are.
      assert.equal((await info(`nbd://127.0.0.1:${port()}/x`)).can_multi_conn, false);
      assert.equal((await info(`nbd://127.0.0.1:${port()}/x@empty`)).can_multi_conn, true);
      client.close();
      const expected = Buffer.alloc(256 * BS);
      for (let round = 0; round < 3; round++) {
        const a = (await RawClient.open(port(), 'x')).client;
        const b = (await RawClient.open(port(), 'x')).client;
        // A: 32 writes in flight at once, all acknowledged before B's flush.
        const writes = Array.from({ length: 32 }, (_, i) => ({
          offset: ((round * 32 + i) % 256) * BS,
          data: randomBytes(BS),
        }));
        for (const w of writes) a.request(CMD.WRITE, 0, w.offset, BS, w.data);
        for (const _ of writes) assert.equal((await a.reply()).error, 0, 'write acknowledged');
        for (const w of writes) w.data.copy(expected, w.offset);
        // More writes in flight on A when B flushes: not required to be covered, must not break anything.
        for (let i = 0; i < 8; i++) a.request(CMD.WRITE, 0, (200 + i) * BS, BS, Buffer.alloc(BS, 0xee));
        b.request(CMD.FLUSH, 0, 0, 0);
        assert.equal((await b.reply()).error, 0, 'flush on B');
        await agent.kill();
        const pool = Pool.open(poolDir);
        try {
          const disk = pool.read('x', 0, 256 * BS);
          for (const w of writes)
            assert.ok(
              disk.subarray(w.offset, w.offset + BS).equals(w.data),
              `round ${round}: A's write is durable`,
            );
          for (let i = 0; i < 8; i++) {
            const block = disk.subarray((200 + i) * BS, (201 + i) * BS);
            assert.ok(
              block.equals(Buffer.alloc(BS, 0xee)) ||
                block.equals(expected.subarray((200 + i) * BS, (201 + i) * BS)),
              'an unacknowledged write is whole or absent',
            );
            block.copy(expected, (200 + i) * BS);
          }
          assert.deepEqual((await pool.fsck()).problems, [], `round ${round}: fsck clean`);
        } finally {
          await pool.close();
        }
        a.destroy();
        b.destroy();
        agent = await startAgentProcess({ poolDir, args });
      }
    });
  });
});
