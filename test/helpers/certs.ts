/** A self-signed TLS certificate for 127.0.0.1, made with the real openssl, and its SHA-256 fingerprint. */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

export function selfSignedCertificate(dir: string): { key: string; cert: string; fingerprint: string } {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'pipe' },
  );
  const fingerprint = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], {
    encoding: 'utf8',
  })
    .split('=')[1]!
    .trim();
  return { key, cert, fingerprint };
}
