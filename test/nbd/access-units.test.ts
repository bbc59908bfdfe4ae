/**
 * The pieces of NBD access control without sockets: the access file (parse
 * errors by code, glob patterns, unknown clients see nothing), the PSK key
 * file, connection counting, and the server's refusal to listen on TCP
 * without client authentication.
 */
import * as assert from 'node:assert/strict';
import { Pool } from '../../agent/engine';
import { isNbdError, NbdAccessList, parseNbdListen, parsePskKeys, startNbdServer } from '../../agent/nbd';
import { restrictExports } from '../../agent/nbd/access-list';
import { ConnectionLimits } from '../../agent/server/connection-limits';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';

describe('nbd access control units', () => {
  after(cleanupTempDirs);

  it('access file: patterns per client; unknown or unauthenticated clients get nothing', () => {
    const list = NbdAccessList.parse(
      '# comment\ncn:hv1  vm-a vm-a@*  # trailing\npsk:b ?m-* \ncn:hv1 extra\n',
    );
    assert.ok(list.allows('cn:hv1', 'vm-a'));
    assert.ok(list.allows('cn:hv1', 'vm-a@snap-1'));
    assert.ok(list.allows('cn:hv1', 'extra'), 'lines for one client add up');
    assert.ok(!list.allows('cn:hv1', 'vm-ab'), 'a name matches whole, not as a prefix');
    assert.ok(list.allows('psk:b', 'vm-z'));
    assert.ok(!list.allows('cn:b', 'vm-z'), 'cn: and psk: are different clients');
    assert.ok(!list.allows('cn:nobody', 'vm-a'));
    assert.ok(!list.allows(null, 'vm-a'));
    assert.ok(!NbdAccessList.parse('cn:x a.b').allows('cn:x', 'axb'), '. is literal');
    assert.deepEqual(list.clients(), ['cn:hv1', 'psk:b']);
  });

  it('access file: bad lines are INVALID_ACCESS_FILE with the line number', () => {
    for (const text of ['hv1 vm-a', 'cn:hv1', 'user:x vm']) {
      assert.throws(
        () => NbdAccessList.parse(text, 'f'),
        (err: unknown) => isNbdError(err, 'INVALID_ACCESS_FILE') && /f line 1/.test((err as Error).message),
      );
    }
  });

  it('restricted exports hide names in list, describe and open', () => {
    const dir = tempDir('snapsync-acl-');
    const pool = Pool.create(dir, { blockSize: 4096, capacityBytes: 1 << 26 });
    pool.createContainer({ name: 'a', type: 'vdisk', size: 1 << 20 });
    pool.createContainer({ name: 'b', type: 'vdisk', size: 1 << 20 });
    return (async () => {
      const server = await startNbdServer({ pool, socketPath: `${dir}/s.sock` });
      try {
        const only = restrictExports(server.exports, (n) => n === 'a');
        assert.deepEqual(
          only.list().map((e) => e.name),
          ['a'],
        );
        assert.equal(only.describe('b'), null);
        assert.equal(only.open('b'), null);
        const a = only.open('a');
        assert.ok(a);
        a.close();
      } finally {
        await server.close();
        await pool.close();
      }
    })();
  });

  it('PSK file: identity:hexkey lines, QEMU format; errors are INVALID_PSK_FILE', () => {
    const keys = parsePskKeys(`# keys\nhv1:${'ab'.repeat(16)}\nuser:with:colon:${'01'.repeat(32)}\n`);
    assert.equal(keys.get('hv1')!.length, 16);
    assert.equal(keys.get('user:with:colon')!.length, 32);
    for (const text of [
      'hv1',
      `:${'ab'.repeat(16)}`,
      'hv1:zz',
      'hv1:abcd',
      `a:${'ab'.repeat(16)}\na:${'cd'.repeat(16)}`,
    ])
      assert.throws(
        () => parsePskKeys(text),
        (err: unknown) => isNbdError(err, 'INVALID_PSK_FILE'),
        text,
      );
  });

  it('listen addresses: unix:PATH, the default socket, TCP forms', () => {
    assert.deepEqual(parseNbdListen(''), { kind: 'unix', path: '/run/snapsync/nbd.sock' });
    assert.deepEqual(parseNbdListen('unix:/tmp/x.sock'), { kind: 'unix', path: '/tmp/x.sock' });
    assert.deepEqual(parseNbdListen('127.0.0.1:0'), { kind: 'tcp', host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseNbdListen('[::1]:99'), { kind: 'tcp', host: '::1', port: 99 });
    assert.throws(
      () => parseNbdListen('unix:relative.sock'),
      (err: unknown) => isNbdError(err, 'INVALID_ADDRESS'),
    );
  });

  it('connection limits: authenticated per address and in all, addressless clients against the total only', () => {
    const limits = new ConnectionLimits({ perAddress: 2, total: 3 });
    const authenticated = (address: string | null) => {
      const slot = limits.admit(address, () => assert.fail('nothing is evicted here'));
      assert.ok('release' in slot);
      return { slot, refused: slot.authenticated() };
    };
    const a1 = authenticated('a');
    const a2 = authenticated('a');
    assert.equal(a1.refused, null);
    assert.equal(a2.refused, null);
    assert.equal(authenticated('a').refused, 'per-address-limit');
    authenticated(null);
    assert.deepEqual(
      limits.admit(null, () => {}),
      { refused: 'total-limit' },
    );
    assert.equal(authenticated('b').refused, 'total-limit');
    a1.slot.release();
    a1.slot.release(); // idempotent
    assert.equal(limits.size, 2);
    assert.equal(authenticated('a').refused, null);
  });

  it('connection limits: a full unauthenticated budget closes the oldest unauthenticated connection, never an authenticated one', () => {
    const limits = new ConnectionLimits({ perAddress: 2, total: 3 });
    const evicted: string[] = [];
    const admit = (address: string, name: string) => {
      const slot = limits.admit(address, () => evicted.push(name));
      assert.ok('release' in slot, `${name} is admitted`);
      return slot;
    };
    const signedIn = admit('a', 'signed-in');
    assert.equal(signedIn.authenticated(), null);
    admit('a', 'idle-1');
    admit('a', 'idle-2');
    const client = admit('a', 'client'); // the address's budget is full: the oldest idle one goes
    assert.deepEqual(evicted, ['idle-1']);
    admit('b', 'b-1');
    admit('b', 'b-2'); // a fourth unauthenticated one in all: the oldest of all goes
    assert.deepEqual(evicted, ['idle-1', 'idle-2']);
    assert.equal(client.authenticated(), null, 'the newest connection still authenticates');
    assert.equal(limits.size, 4, 'signed-in and client authenticated, b-1 and b-2 not');
  });

  it('refuses TCP without client authentication unless opted out on loopback (AUTH_REQUIRED)', async () => {
    const dir = tempDir('snapsync-acl-');
    const pool = Pool.create(dir, { blockSize: 4096, capacityBytes: 1 << 26 });
    try {
      await assert.rejects(startNbdServer({ pool, port: 0 }), (err: unknown) =>
        isNbdError(err, 'AUTH_REQUIRED'),
      );
      await assert.rejects(
        startNbdServer({ pool, host: '0.0.0.0', port: 0, insecureNoAuth: true }),
        (err: unknown) => isNbdError(err, 'AUTH_REQUIRED'),
      );
      const ok = await startNbdServer({ pool, port: 0, insecureNoAuth: true });
      await ok.close();
    } finally {
      await pool.close();
    }
  });
});
