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
  const refused = (args: string[], timeout = 60_000, token = '') => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--pool', pool, ...args], {
      encoding: 'utf8',
      timeout,
      env: { ...process.env, SNAPSYNC_TOKEN: token },
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

  /** Resolves with the agent's first log line matching `pattern` (lines may arrive after the startup line). */
  const logLine = async (agent: Served, pattern: RegExp): Promise<Record<string, unknown>> => {
    for (let waited = 0; waited < 5_000; waited += 50) {
      const line = agent
        .logs()
        .split('\n')
        .find((l) => pattern.test(l));
      if (line) return JSON.parse(line);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.fail(`no log line matches ${pattern}:\n${agent.logs()}`);
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

  it('refuses an --nbd socket path that holds another file (exit 2) and leaves the file alone', () => {
    const file = path.join(dir, 'not-a-socket');
    fs.writeFileSync(file, 'keep me');
    const r = refused(['--listen', '127.0.0.1:0', '--insecure-no-auth', '--nbd', `unix:${file}`]);
    assert.equal(r.status, 2, r.err);
    assert.match(r.err, /^error: .*not-a-socket exists and is not a socket$/m);
    assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
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

  it('refuses a token shorter than 16 characters (exit 2, TOKEN_TOO_SHORT naming where it came from)', () => {
    const weak = path.join(dir, 'weak-token');
    fs.writeFileSync(weak, 'a\n', { mode: 0o600 });
    const fromFile = refused(['--token-file', weak, '--listen', '127.0.0.1:0'], 20_000);
    assert.equal(fromFile.status, 2, fromFile.err);
    assert.match(
      fromFile.err,
      /^error: \[TOKEN_TOO_SHORT\] the token in \S*weak-token is shorter than 16 characters/,
    );
    assert.equal(fromFile.out, '', 'nothing listened');
    const fromEnv = refused(['--listen', '127.0.0.1:0'], 20_000, 'fifteen-chars-x');
    assert.equal(fromEnv.status, 2, fromEnv.err);
    assert.match(fromEnv.err, /\[TOKEN_TOO_SHORT\] the token in \$SNAPSYNC_TOKEN is shorter than 16/);
  });

  it('warns (TOKEN_FILE_NOT_PRIVATE) when group or others can read the token file, not when it is 0600', async () => {
    const open = path.join(dir, 'open-token');
    fs.writeFileSync(open, 'a-long-enough-token-for-serve');
    fs.chmodSync(open, 0o644);
    const agent = await served(['--token-file', open, '--listen', '127.0.0.1:0']);
    try {
      const warning = await logLine(agent, /TOKEN_FILE_NOT_PRIVATE/);
      assert.equal(warning.level, 'warn');
      assert.equal(warning.file, open);
      assert.equal(warning.mode, '0644');
      assert.doesNotMatch(agent.logs(), /a-long-enough-token-for-serve/);
      assert.match(agent.logs(), /"auth":"token","tls":false/, 'log lines are not mangled');
    } finally {
      assert.equal(await agent.stop(), 0);
    }
    const private0600 = await served(['--token-file', tokenFile, '--listen', '127.0.0.1:0']);
    try {
      await logLine(private0600, /"msg":"listening"/);
      assert.doesNotMatch(private0600.logs(), /TOKEN_FILE_NOT_PRIVATE|LISTEN_WITHOUT_TLS/);
    } finally {
      assert.equal(await private0600.stop(), 0);
    }
  });

  it('refuses every numeric option out of its range with exit 2 and a line naming it, before listening', () => {
    for (const [flag, value] of [
      ['--max-in-flight', '0'],
      ['--max-in-flight', '-3'],
      ['--max-in-flight', '1.5'],
      ['--max-message-bytes', '10'],
      ['--max-message-bytes', 'abc'],
      ['--max-held-bytes', '5'],
      ['--max-held-bytes', String(2 * 1024 ** 3)],
      ['--max-held-bytes-total', '5'],
      ['--max-held-bytes-total', String(128 * 1024 ** 3)],
      ['--nbd-threads', '-1'],
      ['--nbd-max-connections', '0'],
      ['--nbd-max-connections-per-address', '2.5'],
      ['--nbd-handshake-timeout', '0'],
      ['--max-connections', '0'],
      ['--max-connections-per-address', '1.5'],
      ['--handshake-timeout', '-1'],
      // Beyond what a Node timer holds (about 24.8 days): it would fire at once.
      ['--idle-timeout', '3000000'],
    ] as const) {
      const r = refused(['--token-file', tokenFile, '--listen', '127.0.0.1:0', flag, value], 20_000);
      assert.equal(r.status, 2, `${flag} ${value}: ${r.err}`);
      assert.match(r.err, new RegExp(`^error: ${flag} must be a (whole )?number`), `${flag} ${value}`);
      assert.equal(r.out, '', `${flag} ${value}: nothing listened`);
    }
  });

  it('refuses --max-held-bytes-total below --max-held-bytes with exit 2, naming both', () => {
    const r = refused(
      ['--token-file', tokenFile, '--listen', '127.0.0.1:0', '--max-held-bytes', String(512 * 1024 ** 2)],
      20_000,
    );
    assert.equal(r.status, 2, r.err);
    assert.match(
      r.err,
      /^error: --max-held-bytes-total must be at least --max-held-bytes \(536870912\), not 268435456/,
    );
    assert.equal(r.out, '');
  });

  it('--help describes --max-message-bytes and --max-held-bytes-total', () => {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /--max-message-bytes\s+Largest WebSocket frame/);
    assert.match(r.stdout, /--max-held-bytes-total\s+Bytes all API connections may hold together/);
  });

  it('warns (LISTEN_WITHOUT_TLS) when ws:// listens off loopback: the token would travel in clear text', async () => {
    const agent = await served(['--token-file', tokenFile, '--listen', '0.0.0.0:0']);
    try {
      const warning = await logLine(agent, /LISTEN_WITHOUT_TLS/);
      assert.equal(warning.level, 'warn');
      assert.match(String(warning.msg), /^ws:\/\/0\.0\.0\.0:\d+ .*token.*clear text/);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });

  it('warns (NBD_SOCKET_OPEN_TO_ALL) when --nbd-socket-mode lets every local user write', async () => {
    const socket = path.join(dir, 'open-nbd.sock');
    const agent = await served([
      '--token-file',
      tokenFile,
      '--listen',
      '127.0.0.1:0',
      '--nbd',
      `unix:${socket}`,
      '--nbd-socket-mode',
      '0666',
    ]);
    try {
      const warning = await logLine(agent, /NBD_SOCKET_OPEN_TO_ALL/);
      assert.equal(warning.level, 'warn');
      assert.match(String(warning.msg), /mode 0666.*every vdisk/);
      assert.equal(fs.statSync(socket).mode & 0o777, 0o666);
    } finally {
      assert.equal(await agent.stop(), 0);
    }
  });
});
