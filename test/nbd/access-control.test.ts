/**
 * NBD access control as an operator sets it up with `serve`, checked with the
 * real clients (nbdinfo, qemu-io, qemu-img) and real credentials made with
 * openssl: on TCP every client authenticates with an x509 client certificate
 * signed by the configured CA or with a TLS-PSK key, and sees and opens only
 * the exports the access file grants its identity; the Unix socket is
 * created 0660 in the configured group; TCP without authentication needs the
 * explicit loopback opt-out, which is logged loudly.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { type AgentProcess, killAgentsTestsLeave, startAgentProcess } from '../helpers/agent-process';
import { makeNbdCredentials, type NbdCredentials, nbdX509ServeArgs } from '../helpers/nbd-credentials';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { run, runOk } from './helpers/served-pool';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');
const MiB = 1024 * 1024;

/** A pool with vdisks vm-a (and a snapshot vm-a@s1) and vm-b. */
async function makePool(dir: string): Promise<string> {
  const poolDir = path.join(dir, 'pool');
  const pool = Pool.create(poolDir, { blockSize: 4096, capacityBytes: 1 << 30 });
  pool.createContainer({ name: 'vm-a', type: 'vdisk', size: 8 * MiB });
  pool.createContainer({ name: 'vm-b', type: 'vdisk', size: 8 * MiB });
  pool.write('vm-a', 0, Buffer.alloc(MiB, 0xaa));
  pool.snapshot('vm-a', 's1');
  await pool.close();
  return poolDir;
}

/** Export names in `nbdinfo --list --json` output. */
function listed(json: string): string[] {
  return (JSON.parse(json) as { exports: Array<{ 'export-name': string }> }).exports
    .map((e) => e['export-name'])
    .sort();
}

describe('nbd access control (serve)', function () {
  this.timeout(120_000);
  let dir: string;
  let creds: NbdCredentials;
  let poolDir: string;
  let hv3Psk: string;
  let agent: AgentProcess;
  let port: number;

  /** libnbd URI; a PSK username goes in the authority (nbds://USER@host/…?tls-psk-file=). */
  const nbds = (exportName: string, query: string, user = '') =>
    `nbds://${user ? `${user}@` : ''}127.0.0.1:${port}/${exportName}?${query}`;

  before(async () => {
    dir = tempDir('snapsync-nbdauth-');
    creds = makeNbdCredentials(path.join(dir, 'creds'));
    poolDir = await makePool(dir);
    hv3Psk = creds.pskFile('hv3');
    const access = path.join(dir, 'nbd-access');
    fs.writeFileSync(
      access,
      [
        '# client            exports it may list and open',
        'cn:hv1              vm-a vm-a@*',
        'psk:hv3             vm-b',
        '',
      ].join('\n'),
    );
    agent = await startAgentProcess({
      poolDir,
      args: [...nbdX509ServeArgs(creds), '--nbd-access', access],
    });
    assert.match(agent.nbd ?? '', /^nbds:\/\/127\.0\.0\.1:\d+$/);
    port = Number(new URL(agent.nbd!).port);
  });
  after(async () => {
    await agent?.stop();
    await pskAgent?.stop();
    cleanupTempDirs();
  });

  /** A second listener for the same pool authenticating with TLS-PSK (one listener does one or the other). */
  let pskAgent: AgentProcess;
  let pskPort: number;
  const pskUri = (exportName: string, file: string, user: string) =>
    `nbds://${user}@127.0.0.1:${pskPort}/${exportName}?tls-psk-file=${file}`;
  const startPskAgent = async () => {
    if (pskAgent) return;
    await agent.stop();
    pskAgent = await startAgentProcess({
      poolDir,
      args: [
        '--nbd',
        '127.0.0.1:0',
        '--nbd-tls-psk-file',
        creds.serverPskFile,
        '--nbd-access',
        path.join(dir, 'nbd-access'),
      ],
    });
    pskPort = Number(new URL(pskAgent.nbd!).port);
  };

  it('refuses a client without TLS: nothing listed, nothing opened', async () => {
    const list = await run('nbdinfo', ['--list', `nbd://127.0.0.1:${port}`]);
    assert.notEqual(list.code, 0, `plain --list must fail: ${list.stdout}`);
    const write = await run('qemu-io', [
      '-f',
      'raw',
      '-c',
      'write -P 0x66 0 64k',
      `nbd://127.0.0.1:${port}/vm-b`,
    ]);
    assert.notEqual(write.code, 0, 'plain qemu-io write must fail');
  });

  it('x509 client hv1 lists and opens only its exports (vm-a, vm-a@s1)', async () => {
    const certs = `tls-certificates=${creds.clientDir('hv1')}`;
    const json = await runOk('nbdinfo', ['--list', '--json', nbds('', certs)]);
    assert.deepEqual(listed(json), ['vm-a', 'vm-a@s1']);
    await runOk('qemu-io', [
      '--object',
      `tls-creds-x509,id=tls0,endpoint=client,dir=${creds.clientDir('hv1')}`,
      '--image-opts',
      `driver=nbd,host=127.0.0.1,port=${port},export=vm-a,tls-creds=tls0`,
      '-c',
      'write -P 0x5e 1M 1M',
      '-c',
      'read -P 0xaa 0 1M',
    ]);
    const other = await run('qemu-io', [
      '--object',
      `tls-creds-x509,id=tls0,endpoint=client,dir=${creds.clientDir('hv1')}`,
      '--image-opts',
      `driver=nbd,host=127.0.0.1,port=${port},export=vm-b,tls-creds=tls0`,
      '-c',
      'write -P 0x66 0 64k',
    ]);
    assert.notEqual(other.code, 0, 'vm-b is not in hv1 list: opening it must fail');
    const info = await run('nbdinfo', [nbds('vm-b', certs)]);
    assert.notEqual(info.code, 0);
    assert.match(info.stderr, /vm-b|export/i);
  });

  it('a client certificate signed by the CA but not in the access file sees nothing', async () => {
    const certs = `tls-certificates=${creds.clientDir('stranger')}`;
    const json = await runOk('nbdinfo', ['--list', '--json', nbds('', certs)]);
    assert.deepEqual(listed(json), []);
    assert.notEqual((await run('nbdinfo', [nbds('vm-a', certs)])).code, 0);
  });

  it('refuses TLS without a client certificate', async () => {
    const r = await run('nbdinfo', ['--list', nbds('', `tls-certificates=${creds.noCertDir}`)]);
    assert.notEqual(r.code, 0, r.stdout);
    const q = await run('qemu-img', [
      'info',
      '--object',
      `tls-creds-x509,id=tls0,endpoint=client,dir=${creds.noCertDir}`,
      '--image-opts',
      `driver=nbd,host=127.0.0.1,port=${port},export=vm-a,tls-creds=tls0`,
    ]);
    assert.notEqual(q.code, 0, q.stdout);
  });

  it('refuses a client certificate from another CA', async () => {
    const r = await run('nbdinfo', ['--list', nbds('', `tls-certificates=${creds.rogueClientDir('hv1')}`)]);
    assert.notEqual(r.code, 0, r.stdout);
    const q = await run('qemu-io', [
      '--object',
      `tls-creds-x509,id=tls0,endpoint=client,dir=${creds.rogueClientDir('hv1')}`,
      '--image-opts',
      `driver=nbd,host=127.0.0.1,port=${port},export=vm-a,tls-creds=tls0`,
      '-c',
      'write -P 0x66 0 64k',
    ]);
    assert.notEqual(q.code, 0, q.stdout);
  });

  it('TLS-PSK client hv3 lists and writes only vm-b (libnbd and QEMU)', async () => {
    await startPskAgent();
    assert.deepEqual(listed(await runOk('nbdinfo', ['--list', '--json', pskUri('', hv3Psk, 'hv3')])), [
      'vm-b',
    ]);
    await runOk('qemu-io', [
      '--object',
      `tls-creds-psk,id=tls0,endpoint=client,dir=${path.dirname(hv3Psk)},username=hv3`,
      '--image-opts',
      `driver=nbd,host=127.0.0.1,port=${pskPort},export=vm-b,tls-creds=tls0`,
      '-c',
      'write -P 0x3b 0 1M',
      '-c',
      'read -P 0x3b 0 1M',
    ]);
    assert.notEqual(
      (await run('nbdinfo', [pskUri('vm-a', hv3Psk, 'hv3')])).code,
      0,
      'vm-a is not in hv3 list',
    );
  });

  it('refuses a wrong PSK', async () => {
    await startPskAgent();
    const wrong = creds.wrongPskFile('hv3');
    const r = await run('nbdinfo', ['--list', pskUri('', wrong, 'hv3')]);
    assert.notEqual(r.code, 0, r.stdout);
    const q = await run('qemu-img', [
      'info',
      '--object',
      `tls-creds-psk,id=tls0,endpoint=client,dir=${path.dirname(wrong)},username=hv3`,
      '--image-opts',
      `driver=nbd,host=127.0.0.1,port=${pskPort},export=vm-b,tls-creds=tls0`,
    ]);
    assert.notEqual(q.code, 0, q.stdout);
    const unknown = await run('nbdinfo', ['--list', pskUri('', creds.wrongPskFile('nobody'), 'nobody')]);
    assert.notEqual(unknown.code, 0, 'an identity the server does not know is refused');
  });
});

describe('nbd listen policy (serve)', function () {
  this.timeout(120_000);
  killAgentsTestsLeave();
  after(cleanupTempDirs);

  const serveRefused = (poolDir: string, args: string[]) =>
    spawnSync(process.execPath, [BIN, 'serve', '--pool', poolDir, '--insecure-no-auth', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('refuses NBD on loopback TCP without client authentication (exit 2)', async () => {
    const dir = tempDir('snapsync-nbdauth-');
    const poolDir = await makePool(dir);
    const r = serveRefused(poolDir, ['--listen', '127.0.0.1:0', '--nbd', '127.0.0.1:0']);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--nbd 127\.0\.0\.1:0 .*--nbd-tls-ca.*--nbd-tls-psk-file.*--nbd-insecure-no-auth/);
  });

  it('TCP without authentication only with --nbd-insecure-no-auth on loopback, logged as a warning', async () => {
    const dir = tempDir('snapsync-nbdauth-');
    const poolDir = await makePool(dir);
    const off = serveRefused(poolDir, [
      '--listen',
      '127.0.0.1:0',
      '--nbd',
      '0.0.0.0:0',
      '--nbd-insecure-no-auth',
    ]);
    assert.equal(off.status, 2, off.stderr);
    const agent = await startAgentProcess({
      poolDir,
      args: ['--nbd', '127.0.0.1:0', '--nbd-insecure-no-auth'],
    });
    try {
      const json = await runOk('nbdinfo', ['--list', '--json', agent.nbd!]);
      assert.deepEqual(listed(json), ['vm-a', 'vm-a@s1', 'vm-b']);
      assert.match(agent.logs(), /"level":"warn".*NBD without client authentication/);
    } finally {
      await agent.stop();
    }
  });

  it('serves a Unix socket with mode 0660 in the configured group (nbd+unix://)', async () => {
    const dir = tempDir('snapsync-nbdauth-');
    const poolDir = await makePool(dir);
    const socket = path.join(dir, 'run', 'nbd.sock');
    const gid = process.getgid!();
    const agent = await startAgentProcess({
      poolDir,
      args: ['--nbd', `unix:${socket}`, '--nbd-socket-group', String(gid)],
    });
    try {
      assert.equal(agent.nbd, `nbd+unix:///?socket=${socket}`);
      const st = fs.statSync(socket);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.gid, gid);
      const uri = `nbd+unix:///vm-a?socket=${socket}`;
      await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 2M 64k', '-c', 'read -P 0xaa 0 64k', uri]);
      assert.match(await runOk('nbdinfo', ['--size', uri]), /^8388608/);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
    assert.equal(fs.existsSync(socket), false, 'the socket is removed on stop');
  });
});
