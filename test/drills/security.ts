/**
 * Security drill: every way in without the right credentials is refused —
 * no token, a wrong token, the token in the URL, a wrong TLS pin, paths
 * outside the allowed directories, a flood of failed logins — each with the
 * code that names why (a path that got through and failed later, say with
 * NOT_FOUND, is not a refusal), and the token appears in no log line.
 */
import * as fs from 'node:fs';
import { AgentClient, AgentError } from '../../agent/client/client';
import { startAgentProcess } from '../helpers/agent-process';
import { selfSignedCertificate } from '../helpers/certs';
import { tempDir } from '../helpers/tmp';

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
    // After the flood even the right token waits (back-off), and says so.
    await expectRefused('the right token after the flood', ['AUTH_BACKOFF'], () =>
      AgentClient.connect(secure.url, { token: secure.token, ca: fs.readFileSync(cert) }),
    );
  } finally {
    await plain.stop();
    await secure.stop();
  }
  result.tokenInLogs = [plain, secure].some((a) => a.logs().includes(a.token));
  return result;
}
