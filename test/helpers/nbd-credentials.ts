/**
 * Real NBD client credentials made with openssl: a CA, a server certificate
 * for 127.0.0.1/localhost, client certificates signed by that CA (one per
 * common name) and one signed by an unrelated CA, plus PSK key files in the
 * `identity:hexkey` format QEMU (`tls-creds-psk`, `keys.psk`) and libnbd
 * (`tls-psk-file=`) read. Client directories hold what QEMU's
 * `tls-creds-x509,dir=` and libnbd's `tls-certificates=` expect.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface NbdCredentials {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** Client directory (ca-cert.pem, client-cert.pem, client-key.pem) for a CN signed by the CA. */
  clientDir(cn: string): string;
  /** Client directory whose client certificate (CN `cn`) comes from another CA. */
  rogueClientDir(cn: string): string;
  /** Client directory with the CA but no client certificate. */
  noCertDir: string;
  /** DIR/keys.psk with one `identity:hexkey` line (the same key each time for an identity). */
  pskFile(identity: string): string;
  /** A PSK file for `identity` with a key the server does not know. */
  wrongPskFile(identity: string): string;
  /** The server's PSK file: every identity pskFile() was asked for so far. */
  serverPskFile: string;
}

function ssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function makeCa(dir: string, name: string): void {
  ssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}-key.pem`,
    '-out',
    `${name}-cert.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
}

/** Signs a new key for `cn` with CA `ca` (files `${ca}-cert.pem`/`${ca}-key.pem` in dir). */
function sign(dir: string, ca: string, out: string, cn: string, ext: string): void {
  fs.writeFileSync(path.join(dir, `${out}.cnf`), ext);
  ssl(
    dir,
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${out}-key.pem`,
    '-out',
    `${out}.csr`,
    '-subj',
    `/CN=${cn}`,
  );
  ssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${out}.csr`,
    '-CA',
    `${ca}-cert.pem`,
    '-CAkey',
    `${ca}-key.pem`,
    '-CAcreateserial',
    '-out',
    `${out}-cert.pem`,
    '-days',
    '2',
    '-extfile',
    `${out}.cnf`,
  );
}

export function makeNbdCredentials(dir: string): NbdCredentials {
  fs.mkdirSync(dir, { recursive: true });
  makeCa(dir, 'ca');
  makeCa(dir, 'rogue-ca');
  sign(
    dir,
    'ca',
    'server',
    'localhost',
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  const clientDirFor = (ca: string, cn: string, tag: string) => {
    const out = path.join(dir, `${tag}-${cn}`);
    if (fs.existsSync(out)) return out;
    sign(dir, ca, `${tag}-${cn}`, cn, 'extendedKeyUsage=clientAuth\n');
    fs.mkdirSync(out);
    // The client trusts the server's CA either way; only the client certificate's issuer differs.
    fs.copyFileSync(path.join(dir, 'ca-cert.pem'), path.join(out, 'ca-cert.pem'));
    fs.copyFileSync(path.join(dir, `${tag}-${cn}-cert.pem`), path.join(out, 'client-cert.pem'));
    fs.copyFileSync(path.join(dir, `${tag}-${cn}-key.pem`), path.join(out, 'client-key.pem'));
    return out;
  };
  const noCertDir = path.join(dir, 'no-cert');
  fs.mkdirSync(noCertDir);
  fs.copyFileSync(path.join(dir, 'ca-cert.pem'), path.join(noCertDir, 'ca-cert.pem'));
  const keys = new Map<string, string>();
  const serverPskFile = path.join(dir, 'server-keys.psk');
  fs.writeFileSync(serverPskFile, '', { mode: 0o600 });
  /** QEMU's tls-creds-psk wants the file as DIR/keys.psk. */
  const writePsk = (tag: string, identity: string, key: string) => {
    const keyDir = path.join(dir, `${tag}-${identity}`);
    fs.mkdirSync(keyDir, { recursive: true });
    const file = path.join(keyDir, 'keys.psk');
    fs.writeFileSync(file, `${identity}:${key}\n`, { mode: 0o600 });
    return file;
  };
  return {
    dir,
    caCert: path.join(dir, 'ca-cert.pem'),
    serverCert: path.join(dir, 'server-cert.pem'),
    serverKey: path.join(dir, 'server-key.pem'),
    clientDir: (cn) => clientDirFor('ca', cn, 'client'),
    rogueClientDir: (cn) => clientDirFor('rogue-ca', cn, 'rogue'),
    noCertDir,
    pskFile: (identity) => {
      let key = keys.get(identity);
      if (!key) {
        key = randomBytes(32).toString('hex');
        keys.set(identity, key);
        fs.appendFileSync(serverPskFile, `${identity}:${key}\n`);
      }
      return writePsk('psk', identity, key);
    },
    wrongPskFile: (identity) => writePsk('wrong-psk', identity, randomBytes(32).toString('hex')),
    serverPskFile,
  };
}

/** `serve` arguments for NBD on a free loopback port with x509 client authentication by these credentials. */
export function nbdX509ServeArgs(creds: NbdCredentials): string[] {
  return [
    '--nbd',
    '127.0.0.1:0',
    '--nbd-tls-cert',
    creds.serverCert,
    '--nbd-tls-key',
    creds.serverKey,
    '--nbd-tls-ca',
    creds.caCert,
  ];
}
