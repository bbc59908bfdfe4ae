/**
 * Security drill: every way in without the right credentials is refused —
 * no token, a wrong token, the token in the URL, a wrong TLS pin, paths
 * outside the allowed directories, a flood of failed logins — and the token
 * appears in no log line.
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
}

export async function securityDrill(floodAttempts: number): Promise<SecurityDrillResult> {
  const dir = tempDir('snapsync-sec-');
  const { key, cert } = selfSignedCertificate(dir);
  const plain = await startAgentProcess();
  const secure = await startAgentProcess({ args: ['--tls-cert', cert, '--tls-key', key] });
  const result: SecurityDrillResult = { attempts: 0, refused: 0, tokenInLogs: true };
  const expectRefused = async (attempt: () => Promise<unknown>) => {
    result.attempts++;
    try {
      await attempt();
    } catch (err) {
      if (err instanceof AgentError) result.refused++;
    }
  };
  try {
    await expectRefused(() => AgentClient.connect(plain.url));
    await expectRefused(() => AgentClient.connect(plain.url, { token: `${plain.token}x` }));
    await expectRefused(() => AgentClient.connect(`${plain.url}/?access_token=${plain.token}`));
    await expectRefused(() =>
      AgentClient.connect(secure.url, { token: secure.token, fingerprint: '00'.repeat(32) }),
    );
    await expectRefused(() => AgentClient.connect(secure.url, { token: secure.token })); // unverified self-signed certificate
    const client = await AgentClient.connect(plain.url, { token: plain.token });
    for (const p of [
      '/etc/passwd',
      `${plain.dir}/../../etc/shadow`,
      'relative/path.img',
      `${plain.dir}/link-out`,
    ]) {
      if (p.endsWith('link-out')) fs.symlinkSync('/etc', p);
      await expectRefused(() =>
        client.call('import', {
          path: p.endsWith('link-out') ? `${p}/hostname` : p,
          container: 'x',
          create: true,
        }),
      );
      await expectRefused(() =>
        client.call('export', { container: 'none', path: p.endsWith('link-out') ? `${p}/out.img` : p }),
      );
    }
    await client.close();
    for (let i = 0; i < floodAttempts; i++)
      await expectRefused(() =>
        AgentClient.connect(secure.url, {
          token: 'guess',
          fingerprint: undefined,
          ca: fs.readFileSync(cert),
        }),
      );
    // After the flood even the right token waits (back-off), and says so.
    await expectRefused(() =>
      AgentClient.connect(secure.url, { token: secure.token, ca: fs.readFileSync(cert) }),
    );
  } finally {
    await plain.stop();
    await secure.stop();
  }
  result.tokenInLogs = [plain, secure].some((a) => a.logs().includes(a.token));
  return result;
}
