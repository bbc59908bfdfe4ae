/**
 * A pool with a metadata record LMDB reads but msgpack cannot decode (bytes
 * changed inside a page that stays well-formed): `serve` and `migrate --pool`
 * refuse it with CORRUPT naming the record and the recovery, as `fsck --pool`
 * names it (RECORD_INVALID), instead of msgpack's own error under code ERROR
 * or "nothing to do".
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open } from 'lmdb';
import { Pool } from '../../agent/engine';
import { runCli } from '../helpers/run-cli';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

/** A msgpack nil followed by a stray byte: read whole, it does not decode ("end of buffer not reached"). */
const UNDECODABLE = Buffer.from([0xc0, 0xc0]);

describe('a pool with a metadata record that does not decode', function () {
  this.timeout(120_000);
  let dir: string;
  let table: number;

  before(async () => {
    dir = path.join(tempDir(), 'pool');
    const pool = Pool.create(dir, { blockSize: 4096, capacityBytes: 1 << 24 });
    pool.createContainer({ name: 'd', type: 'vdisk', size: 1 << 20 });
    pool.write('d', 0, Buffer.from('x'));
    await pool.close();
    const root = open({ path: path.join(dir, 'meta'), maxDbs: 16 });
    const tables = root.openDB({ name: 'tables', encoding: 'binary', keyEncoding: 'ordered-binary' });
    table = [...tables.getKeys({})][0] as number;
    tables.putSync(table, UNDECODABLE);
    await root.close();
  });
  after(cleanupTempDirs);

  const names = () => new RegExp(`table record ${table} does not decode`);

  it('serve exits 1 with CORRUPT naming the record, fsck and the recovery', () => {
    const before = fs.readFileSync(path.join(dir, 'meta', 'data.mdb'));
    const r = runCli(['serve', '--pool', dir, '--listen', '127.0.0.1:0', '--insecure-no-auth']);
    assert.equal(r.status, 1, r.err);
    assert.match(r.err, /error: \[CORRUPT\] pool metadata .*data\.mdb is damaged: /);
    assert.match(r.err, names());
    assert.match(r.err, /fsck --pool/);
    assert.match(r.err, /put back <pool>\/meta\/ together with the data files/);
    assert.ok(fs.readFileSync(path.join(dir, 'meta', 'data.mdb')).equals(before), 'serve changed the file');
  });

  it('migrate --pool refuses it the same way instead of saying there is nothing to do', () => {
    const r = runCli(['migrate', '--pool', dir, '--json']);
    assert.equal(r.status, 1, r.out + r.err);
    const { error } = JSON.parse(r.out);
    assert.equal(error.code, 'CORRUPT');
    assert.match(error.message, names());
    assert.deepEqual({ db: error.details.db, key: error.details.key }, { db: 'tables', key: String(table) });
  });

  it('fsck --pool reports the record (exit 4)', () => {
    const r = runCli(['fsck', '--pool', dir]);
    assert.equal(r.status, 4, r.out + r.err);
    assert.match(r.out, new RegExp(`RECORD_INVALID +table record ${table} is invalid`));
  });
});
