/** Small pure pieces of the NBD layer: byte queue, error mapping, address parsing, meta-context queries. */
import * as assert from 'node:assert/strict';
import { SnapsyncError } from '../../agent/engine/errors';
import { parseNbdAddress } from '../../agent/nbd';
import { ByteQueue } from '../../agent/nbd/byte-queue';
import { NBD_ERR } from '../../agent/nbd/constants';
import { isNbdError, NbdError, toNbdErrno } from '../../agent/nbd/errors';
import { matchContexts } from '../../agent/nbd/meta-context';
import { parseInfoRequest, parseMetaContextRequest } from '../../agent/nbd/option-codec';
import { ReplyBuffers } from '../../agent/nbd/replies';

describe('nbd units', () => {
  it('ReplyBuffers hands back deep queues of reply buffers, and keeps no more than its budget', () => {
    const buffers = new ReplyBuffers(16 * 1024 * 1024);
    const size = 256 * 1024 + 24;
    const queue = Array.from({ length: 64 }, () => buffers.get(size));
    for (const b of queue) buffers.release(b);
    const again = Array.from({ length: 64 }, () => buffers.get(size));
    assert.equal(again.filter((b) => queue.includes(b)).length, 63, 'all that fit in 16 MiB are reused');
    const big = Array.from({ length: 40 }, () => buffers.get(1024 * 1024));
    for (const b of big) buffers.release(b);
    const kept = Array.from({ length: 40 }, () => buffers.get(1024 * 1024)).filter((b) => big.includes(b));
    assert.equal(kept.length, 16, 'at most the budget held for reuse');
    assert.equal(buffers.get(4096).length, 4096, 'small replies come from Node');
  });

  it('ByteQueue joins bytes across chunks, skips, and tracks which memory it holds', async () => {
    const q = new ByteQueue();
    // Buffer.alloc, not Buffer.from: small Buffer.from results share one pooled slab.
    const a = Buffer.alloc(3, 'abc');
    const b = Buffer.alloc(5, 'defgh');
    q.push(a);
    const waiting = q.need(6);
    q.push(b);
    await waiting;
    assert.equal(q.peek(5).toString(), 'abcde');
    assert.equal(q.take(2).toString(), 'ab');
    assert.equal(q.skip(1), 1);
    const scratch = Buffer.alloc(16);
    q.push(Buffer.alloc(2, 'ij'));
    assert.equal(q.takeTransient(4, scratch).toString(), 'defg');
    assert.equal(q.takeTransient(1, scratch).toString(), 'h');
    assert.equal(q.holds(b.buffer), false);
    assert.equal(q.length, 2);
    q.fail();
    await assert.rejects(q.need(3), (err) => isNbdError(err, 'CONNECTION_CLOSED'));
  });

  it('ByteQueue: reads that landed side by side in one buffer are one chunk, taken whole without a copy', () => {
    const q = new ByteQueue();
    const arena = Buffer.alloc(64);
    arena.write('0123456789abcdef');
    q.push(arena.subarray(0, 3));
    q.push(arena.subarray(3, 10));
    q.push(Buffer.alloc(4, 'x')); // other memory: a chunk of its own
    assert.equal(q.take(1).toString(), '0');
    const whole = q.takeWhole(9);
    assert.ok(whole, 'one view across both reads');
    assert.equal(whole.toString(), '123456789');
    assert.equal(whole.buffer, arena.buffer, 'a view of the arena, not a copy');
    q.push(arena.subarray(10, 12));
    assert.equal(q.takeWhole(6), null, 'straddles two buffers: nothing taken');
    assert.equal(q.length, 6);
    assert.equal(q.takeTransient(6, Buffer.alloc(8)).toString(), 'xxxxab');
  });

  it('maps engine and NBD errors to wire errnos', () => {
    const engine = (code: ConstructorParameters<typeof SnapsyncError>[0]) => new SnapsyncError(code, 'x');
    assert.equal(toNbdErrno(engine('OUT_OF_RANGE')), NBD_ERR.EINVAL);
    assert.equal(toNbdErrno(engine('OUT_OF_SPACE')), NBD_ERR.ENOSPC);
    assert.equal(toNbdErrno(engine('IO_ERROR')), NBD_ERR.EIO);
    assert.equal(toNbdErrno(engine('CLOSED')), NBD_ERR.ESHUTDOWN);
    assert.equal(toNbdErrno(new NbdError('READ_ONLY', 'ro', NBD_ERR.EPERM)), NBD_ERR.EPERM);
    assert.equal(toNbdErrno(Object.assign(new Error('full'), { code: 'ENOSPC' })), NBD_ERR.ENOSPC);
    assert.equal(toNbdErrno(new Error('?')), NBD_ERR.EIO);
  });

  it('parses --nbd addresses', () => {
    assert.deepEqual(parseNbdAddress('127.0.0.1:10809'), { host: '127.0.0.1', port: 10809 });
    assert.deepEqual(parseNbdAddress('[::1]:1234'), { host: '::1', port: 1234 });
    assert.deepEqual(parseNbdAddress('10810'), { host: '127.0.0.1', port: 10810 });
    assert.deepEqual(parseNbdAddress('localhost'), { host: 'localhost', port: 10809 });
    assert.throws(
      () => parseNbdAddress('host:port'),
      (err) => isNbdError(err, 'INVALID_ADDRESS'),
    );
    assert.throws(
      () => parseNbdAddress('host:70000'),
      (err) => isNbdError(err, 'INVALID_ADDRESS'),
    );
  });

  it('matches metadata context queries and parses option payloads strictly', () => {
    assert.deepEqual(matchContexts([], 'list'), ['base:allocation']);
    assert.deepEqual(matchContexts([], 'set'), []);
    assert.deepEqual(matchContexts(['base:'], 'list'), ['base:allocation']);
    assert.deepEqual(matchContexts(['base:'], 'set'), []);
    assert.deepEqual(matchContexts(['qemu:dirty-bitmap:x', 'base:allocation'], 'set'), ['base:allocation']);
    assert.equal(matchContexts(['nocolon'], 'set'), null);
    assert.equal(parseInfoRequest(Buffer.from([0, 0, 0, 1, 0x41, 0, 1])), null); // count says 1, no entry
    assert.deepEqual(parseInfoRequest(Buffer.from([0, 0, 0, 1, 0x41, 0, 1, 0, 3])), {
      name: 'A',
      requests: [3],
    });
    assert.equal(parseMetaContextRequest(Buffer.from([0, 0, 0, 0, 0, 0, 0, 1])), null);
    assert.equal(parseInfoRequest(Buffer.from([0, 0, 0, 1, 0, 0, 0])), null); // NUL in the name
  });
});
