/**
 * `snapsync-agent serve` as an operator starts it: flags that would expose the
 * pool (NBD off loopback without TLS, no token off loopback, half a TLS pair)
 * are refused with exit 2 before anything listens; TLS covers NBD too.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { AgentClient } from '../../agent/client/client';
import { Pool } from '../../agent/engine';
import { OPT, REP } from '../../agent/nbd/constants';
import { selfSignedCertificate } from '../helpers/certs';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { RawClient } from '../nbd/helpers/raw-client';

const BIN = path.resolve(__dirname, '../../bin/snapsync-agent');

interface Served {
  listening: string;
  port: number;
  nbd?: string;
  /** Its log lines so far (stderr). */
  logs(): string;
  stop(): Promise<number | null>;
}

describe('snapsync-agent serve flags', function () {
  this.timeout(120_000);
  let dir: string;
  let pool: string;
  let tokenFile: string;
  let cert: { cert: string; key: string; fingerprint: string };

  /** Runs serve to completion (the refusals): exit code and stderr. */
  const refused = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--pool', pool, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SNAPSYNC_TOKEN: '' },
    });
    return { status: r.status, err: r.stderr, out: r.stdout };
  };

  /** Starts serve and resolves with its startup line. */
  const served = (args: string[]): Promise<Served> => {
    const child = spawn(process.execPath, [BIN, 'serve', '--pool', pool, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line)
          resolve({
            ...JSON.parse(line),
            logs: () => stderr,
            stop: () => {
              child.kill('SIGTERM');
              return exited;
            },
          });
      });
      child.on('exit', (code) => reject(new Error(`serve exited (${code}): ${stderr}`)));
    });
  };

  before(async () => {
    dir = tempDir('snapsync-serve-');
    pool = path.join(dir, 'pool');
    await Pool.create(pool, { blockSize: 4096, capacityBytes: 1 << 30 }).close();
    tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'serve-test-token', { mode: 0o600 });
    cert = selfSignedCertificate(dir);
  });
  after(cleanupTempDirs);

  it('refuses --nbd on TCP without client authentication (exit 2), before listening', () => {
    const r = refused(['--token-file', tokenFile, '--listen', '127.0.0.1:0', '--nbd', '0.0.0.0:0']);
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, /--nbd 0\.0\.0\.0:0 is TCP, where NBD clients must authenticate: .*--nbd-tls-ca/);
    assert.equal(r.out, '', 'nothing listened');
  });

  it('refuses half a TLS pair (exit 2) instead of serving plain ws://', () => {
    for (const half of [
      ['--tls-cert', cert.cert],
      ['--tls-key', cert.key],
    ]) {
      const r = refused(['--token-file', tokenFile, '--listen', '127.0.0.1:0', ...half]);
      assert.equal(r.status, 2, `${half[0]}: ${r.err}`);
      assert.match(r.err, /--tls-cert and --tls-key go together/);
      assert.equal(r.out, '');
    }
  });

  it('refuses a bad --listen with exit 2 and one line, not a stack trace', () => {
    const r = refused(['--token-file', tokenFile, '--listen', 'localhost']);
    assert.equal(r.status, 2);
    assert.match(r.err, /^error: --listen "localhost" is not HOST:PORT/);
    assert.doesNotMatch(r.err, /\n\s+at /);
  });

  it('refuses an --allow-dir that does not exist with INVALID_ARGUMENT naming it (exit 1), before listening', () => {
    const missing = path.join(dir, 'no-such-images');
    const r = refused(['--token-file', tokenFile, '--listen', '127.0.0.1:0', '--allow-dir', missing]);
    assert.equal(r.status, 1, r.err);
    assert.equal(
      r.err,
      `error: [INVALID_ARGUMENT] --allow-dir ${missing} does not exist: create it (mode 0700) or leave the flag out\n`,
    );
    assert.equal(r.out, '');
  });

  it('the shipped systemd unit has systemd create every --allow-dir it serves (StateDirectory=)', () => {
    const unit = fs.readFileSync(path.resolve(__dirname, '../../deploy/snapsync-agent.service'), 'utf8');
    const allowed = [...unit.matchAll(/--allow-dir (\/\S+)/g)].map((m) => m[1]!);
    assert.ok(allowed.length > 0);
    const stateDirs = (unit.match(/^StateDirectory=(.*)$/m)?.[1] ?? '').split(/\s+/).filter(Boolean);
    for (const dir of allowed)
      assert.ok(stateDirs.map((d) => `/var/lib/${d}`).includes(dir), `${dir} is created by the unit`);
  });

  it('serves NBD over TLS with the agent certificate (clients verified by --nbd-tls-ca): plain clients are refused', async () => {
    const agent = await served([
      '--token-file',
      tokenFile,
      '--listen',
      '127.0.0.1:0',
      '--tls-cert',
      cert.cert,
      '--tls-key',
      cert.key,
      '--nbd',
      '127.0.0.1:0',
      '--nbd-tls-ca',
      cert.cert,
    ]);
    try {
      assert.match(agent.listening, /^wss:\/\//);
      assert.match(agent.nbd ?? '', /^nbds:\/\/127\.0\.0\.1:\d+$/);
      const port = Number(new URL(agent.nbd!).port);
      const plain = await RawClient.handshake(port);
      plain.option(OPT.LIST);
      assert.equal((await plain.optionReply()).type, REP.ERR_TLS_REQD, 'no export list without TLS');
      plain.destroy();

      const c = await RawClient.handshake(port);
      c.option(OPT.STARTTLS);
      assert.equal((await c.optionReply()).type, REP.ACK);
      const secure = tls.connect({
        socket: c.socket,
        rejectUnauthorized: false,
        cert: fs.readFileSync(cert.cert),
        key: fs.readFileSync(cert.key),
      });
      await new Promise((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
      const seen = secure.getPeerCertificate().fingerprint256;
      secure.destroy();
      assert.equal(seen, cert.fingerprint, "NBD presents the agent's --tls-cert");
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });

  it('--insecure-no-auth serves without a token on loopback, and is refused elsewhere (exit 2)', async () => {
    const off = refused(['--insecure-no-auth', '--listen', '0.0.0.0:0']);
    assert.equal(off.status, 2, off.err);
    assert.match(
      off.err,
      /--insecure-no-auth is only allowed on a loopback --listen address, not 0\.0\.0\.0/,
    );
    assert.equal(off.out, '');

    const agent = await served(['--insecure-no-auth', '--listen', '127.0.0.1:0']);
    try {
      const client = await AgentClient.connect(agent.listening);
      assert.equal((await client.call('info', {})).blockSize, 4096);
      await client.close();
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });
  it('a SIGTERM sent as soon as the startup line arrives stops the agent cleanly (exit 0)', async () => {
    for (let i = 0; i < 3; i++) {
      const agent = await served(['--token-file', tokenFile, '--listen', '127.0.0.1:0']);
      assert.equal(await agent.stop(), 0, agent.logs());
      assert.match(agent.logs(), /"msg":"stopped"/);
    }
  });
});
