/**
 * Security drill: every way in without the right credentials is refused —
 * no token, a wrong token, the token in the URL, a wrong TLS pin, paths
 * outside the allowed directories, a flood of failed logins — each with the
 * code that names why (a path that got through and failed later, say with
 * NOT_FOUND, is not a refusal), and the token appears in no log line. Neither
 * the flood nor idle sockets held without the token lock the right token out.
 */
import * as fs from 'node:fs';
import { AgentClient, AgentError } from '../../agent/client/client';
import { startAgentProcess } from '../helpers/agent-process';
import { selfSignedCertificate } from '../helpers/certs';
import { holdIdle } from '../helpers/idle-holder';
import { makeNbdCredentials } from '../helpers/nbd-credentials';
import { tempDir } from '../helpers/tmp';
import { run } from '../nbd/helpers/served-pool';

export interface SecurityDrillResult {
  attempts: number;
  refused: number;
  tokenInLogs: boolean;
  /** Attempts that were not refused as they must be: what was tried and what happened. */
  wrong: string[];
}

export async function securityDrill(floodAttempts: number): Promise<SecurityDrillResult> {
  const dir = tempDir('snapsync-sec-');
  const { key, cert } = selfSignedCertificate(dir);
  const plain = await startAgentProcess();
  const secure = await startAgentProcess({ args: ['--tls-cert', cert, '--tls-key', key] });
  const result: SecurityDrillResult = { attempts: 0, refused: 0, tokenInLogs: true, wrong: [] };
  /** Counts a refusal only with one of `codes` (and, when given, the detail `also` checks). */
  const expectRefused = async (
    what: string,
    codes: string[],
    attempt: () => Promise<unknown>,
    also: (err: AgentError) => boolean = () => true,
  ) => {
    result.attempts++;
    let outcome = 'accepted';
    try {
      await attempt();
    } catch (err) {
      if (err instanceof AgentError && codes.includes(err.code) && also(err)) {
        result.refused++;
        return;
      }
      outcome = err instanceof AgentError ? `${err.code}: ${err.message}` : String(err);
    }
    result.wrong.push(`${what}: expected ${codes.join(' or ')}, got ${outcome}`);
  };
  try {
    await expectRefused('no token', ['UNAUTHORIZED'], () => AgentClient.connect(plain.url));
    await expectRefused('wrong token', ['UNAUTHORIZED'], () =>
      AgentClient.connect(plain.url, { token: `${plain.token}x` }),
    );
    // The agent answers a token in the URL with 400 before looking at anything else.
    await expectRefused(
      'token in the URL',
      ['CONNECTION_REFUSED'],
      () => AgentClient.connect(`${plain.url}/?access_token=${plain.token}`),
      (err) => err.details.status === 400,
    );
    await expectRefused('wrong TLS pin', ['TLS_PIN_MISMATCH'], () =>
      AgentClient.connect(secure.url, { token: secure.token, fingerprint: '00'.repeat(32) }),
    );
    await expectRefused(
      'unverified self-signed certificate',
      ['CONNECTION_FAILED'],
      () => AgentClient.connect(secure.url, { token: secure.token }),
      (err) => /self-signed certificate/.test(err.message),
    );
    const client = await AgentClient.connect(plain.url, { token: plain.token });
    for (const p of [
      '/etc/passwd',
      `${plain.dir}/../../etc/shadow`,
      'relative/path.img',
      `${plain.dir}/link-out`,
    ]) {
      if (p.endsWith('link-out')) fs.symlinkSync('/etc', p);
      const importPath = p.endsWith('link-out') ? `${p}/hostname` : p;
      await expectRefused(`import from ${importPath}`, ['PATH_NOT_ALLOWED'], () =>
        client.call('import', { path: importPath, container: 'x', create: true }),
      );
      // The container does not exist: a path let through would fail with NOT_FOUND instead.
      const exportPath = p.endsWith('link-out') ? `${p}/out.img` : p;
      await expectRefused(`export to ${exportPath}`, ['PATH_NOT_ALLOWED'], () =>
        client.call('export', { container: 'none', path: exportPath }),
      );
    }
    await client.close();
    // Failed logins are refused as such until the back-off starts, then for the back-off.
    for (let i = 0; i < floodAttempts; i++)
      await expectRefused(`flood login ${i + 1}`, ['UNAUTHORIZED', 'AUTH_BACKOFF'], () =>
        AgentClient.connect(secure.url, {
          token: 'guess',
          fingerprint: undefined,
          ca: fs.readFileSync(cert),
        }),
      );
    // After the flood a wrong token waits (back-off) and says so...
    await expectRefused('a wrong token after the flood', ['AUTH_BACKOFF'], () =>
      AgentClient.connect(secure.url, { token: 'guess', ca: fs.readFileSync(cert) }),
    );
    // ...but the flood must not lock the operator out: the right token still gets in.
    try {
      await (
        await AgentClient.connect(secure.url, { token: secure.token, ca: fs.readFileSync(cert) })
      ).close();
    } catch (err) {
      result.wrong.push(`the right token after the flood: expected to connect, got ${String(err)}`);
    }
    // Nor may idle sockets held without the token: more than --max-connections-per-address (64), reopened as closed.
    const holder = await holdIdle(plain.port, 80);
    try {
      const held = await AgentClient.connect(plain.url, { token: plain.token });
      await held.call('listContainers', {});
      await held.close();
    } catch (err) {
      result.wrong.push(
        `the right token while 80 idle connections are held: expected to get in, got ${String(err)}`,
      );
    } finally {
      holder.stop();
    }
    await nbdRefusals(dir, result);
  } finally {
    await plain.stop();
    await secure.stop();
  }
  result.tokenInLogs = [plain, secure].some((a) => a.logs().includes(a.token));
  return result;
}

/**
 * NBD without the right credentials, with the real nbdinfo: no TLS, no client
 * certificate, a certificate from another CA, a wrong PSK, and an export the
 * access file does not grant (absent from the list, refused on open). Each
 * counts as refused only if the client fails (or the export is absent).
 */
async function nbdRefusals(dir: string, result: SecurityDrillResult): Promise<void> {
  const creds = makeNbdCredentials(`${dir}/nbd-creds`);
  const pskFile = creds.pskFile('hv2');
  fs.writeFileSync(`${dir}/nbd-access`, 'cn:hv1 granted\npsk:hv2 granted\n');
  const expect = async (what: string, attempt: () => Promise<boolean>) => {
    result.attempts++;
    if (await attempt()) result.refused++;
    else result.wrong.push(`NBD ${what}: let through`);
  };
  const fails = async (uri: string, ...args: string[]) => (await run('nbdinfo', [...args, uri])).code !== 0;
  const x509 = await startAgentProcess({
    args: [
      '--nbd',
      '127.0.0.1:0',
      '--nbd-tls-ca',
      creds.caCert,
      '--nbd-tls-cert',
      creds.serverCert,
      '--nbd-tls-key',
      creds.serverKey,
      '--nbd-access',
      `${dir}/nbd-access`,
    ],
  });
  const psk = await startAgentProcess({
    args: [
      '--nbd',
      '127.0.0.1:0',
      '--nbd-tls-psk-file',
      creds.serverPskFile,
      '--nbd-access',
      `${dir}/nbd-access`,
    ],
  });
  try {
    for (const agent of [x509, psk]) {
      const client = await AgentClient.connect(agent.url, { token: agent.token });
      for (const name of ['hidden', 'granted'])
        await client.call('createContainer', { name, type: 'vdisk', size: 1 << 20 });
      await client.close();
    }
    const at = (agent: typeof x509) => agent.nbd!.replace(/^nbds:\/\//, '');
    await expect('without TLS', () => fails(`nbd://${at(x509)}/hidden`));
    await expect('without a client certificate', () =>
      fails(`nbds://${at(x509)}/?tls-certificates=${creds.noCertDir}`, '--list'),
    );
    await expect('with a certificate from another CA', () =>
      fails(`nbds://${at(x509)}/?tls-certificates=${creds.rogueClientDir('hv1')}`, '--list'),
    );
    await expect('with a wrong PSK', () =>
      fails(`nbds://hv2@${at(psk)}/?tls-psk-file=${creds.wrongPskFile('hv2')}`, '--list'),
    );
    await expect('export not in the access list: absent from --list', async () => {
      const r = await run('nbdinfo', [
        '--list',
        `nbds://${at(x509)}/?tls-certificates=${creds.clientDir('hv1')}`,
      ]);
      return r.code === 0 && !r.stdout.includes('hidden');
    });
    await expect('export not in the access list: refused on open', () =>
      fails(`nbds://${at(x509)}/hidden?tls-certificates=${creds.clientDir('hv1')}`),
    );
    await expect('PSK client, export not in the access list', () =>
      fails(`nbds://hv2@${at(psk)}/hidden?tls-psk-file=${pskFile}`),
    );
  } finally {
    await x509.stop();
    await psk.stop();
  }
}
