/**
 * NBD_OPT_STARTTLS with a throwaway CA: libnbd (nbdinfo) and QEMU connect over
 * TLS; clients that skip TLS are refused on a TLS-only server.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OPT, REP } from '../../agent/nbd/constants';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { RawClient } from './helpers/raw-client';
import { parseMap, run, runOk, type ServedPool, servePool } from './helpers/served-pool';

const MiB = 1024 * 1024;

/** A CA and a server certificate for localhost/127.0.0.1; the client dir holds what libnbd and QEMU expect. */
function makeCertificates(): { dir: string; clientDir: string } {
  const dir = tempDir('snapsync-tls-');
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca-key.pem',
    '-out',
    'ca-cert.pem',
    '-days',
    '1',
    '-subj',
    '/CN=snapsync test CA',
  );
  ssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'server-key.pem',
    '-out',
    'server.csr',
    '-subj',
    '/CN=localhost',
  );
  fs.writeFileSync(
    path.join(dir, 'ext.cnf'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  ssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca-cert.pem',
    '-CAkey',
    'ca-key.pem',
    '-CAcreateserial',
    '-out',
    'server-cert.pem',
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
  );
  const clientDir = path.join(dir, 'client');
  fs.mkdirSync(clientDir);
  fs.copyFileSync(path.join(dir, 'ca-cert.pem'), path.join(clientDir, 'ca-cert.pem'));
  return { dir, clientDir };
}

describe('nbd over TLS', function () {
  this.timeout(60_000);
  let s: ServedPool;
  let clientDir: string;

  before(async () => {
    // openssl makes the test certificates; .ci/run installs it.
    const certs = makeCertificates();
    clientDir = certs.clientDir;
    s = await servePool({
      tls: {
        cert: fs.readFileSync(path.join(certs.dir, 'server-cert.pem')),
        key: fs.readFileSync(path.join(certs.dir, 'server-key.pem')),
      },
    });
    s.pool.createContainer({ name: 'secret', type: 'vdisk', size: 16 * MiB });
    s.pool.write('secret', 3 * MiB, Buffer.alloc(MiB, 0x33));
  });
  after(async () => {
    await s?.close();
    cleanupTempDirs();
  });

  it('nbdinfo --map over nbds:// equals the engine allocation', async () => {
    const url = `${s.url('secret')}?tls-certificates=${clientDir}`;
    assert.match(url, /^nbds:/);
    const map = parseMap(await runOk('nbdinfo', ['--map', url]));
    assert.deepEqual(map, [
      { offset: 0, length: 3 * MiB, type: 3 },
      { offset: 3 * MiB, length: MiB, type: 0 },
      { offset: 4 * MiB, length: 12 * MiB, type: 3 },
    ]);
    const info = await runOk('nbdinfo', [url]);
    assert.match(info, /with TLS/);
  });

  it('qemu-io writes and verifies over TLS (QEMU x509 credentials)', async () => {
    const image = `driver=nbd,host=127.0.0.1,port=${s.server.port},export=secret,tls-creds=tls0`;
    await runOk('qemu-io', [
      '--object',
      `tls-creds-x509,id=tls0,endpoint=client,dir=${clientDir}`,
      '--image-opts',
      image,
      '-c',
      'write -P 0x5e 8M 1M',
      '-c',
      'read -P 0x5e 8M 1M',
      '-c',
      'read -P 0x33 3M 1M',
    ]);
    assert.ok(s.pool.read('secret', 8 * MiB, MiB).every((b) => b === 0x5e));
  });

  it('refuses clients that do not start TLS', async () => {
    const plain = await run('nbdinfo', [s.url('secret').replace(/^nbds:/, 'nbd:')]);
    assert.notEqual(plain.code, 0);
    const c = await RawClient.handshake(s.server.port);
    c.option(OPT.LIST);
    assert.equal((await c.optionReply()).type, REP.ERR_TLS_REQD);
    c.option(OPT.EXPORT_NAME, Buffer.from('secret'));
    await c.closed;
  });
});
