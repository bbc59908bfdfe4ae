/**
 * The protocol at the byte level: option haggling, every command, and every
 * way a client can get it wrong. Errors must come back as the right NBD
 * error, and the server must keep serving.
 */
import * as assert from 'node:assert/strict';
import { CMD, CMD_FLAG, NBD_ERR, OPT, REP, TFLAG } from '../../agent/nbd/constants';
import { cleanupTempDirs } from '../helpers/tmp';
import { infoRequest, metaRequest, RawClient } from './helpers/raw-client';
import { patternBytes, type ServedPool, servePool } from './helpers/served-pool';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 8 * MiB;

describe('nbd protocol', function () {
  this.timeout(60_000);
  let s: ServedPool;
  let port: number;

  before(async () => {
    s = await servePool();
    port = s.server.port;
    s.pool.createContainer({ name: 'disk', type: 'vdisk', size: SIZE });
    s.pool.write('disk', 0, patternBytes(MiB, 1));
    s.pool.snapshot('disk', 'snap');
  });
  after(async () => {
    await s.close();
    cleanupTempDirs();
  });

  /** The server still answers a fresh client after whatever a test did. */
  async function stillServing(): Promise<void> {
    const { client, size } = await RawClient.open(port, 'disk@snap');
    assert.equal(size, SIZE);
    client.request(CMD.READ, 0, 0, 4096);
    const r = await client.reply(4096);
    assert.equal(r.error, 0);
    assert.ok(RawClient.readData(r, 0, 4096).equals(patternBytes(MiB, 1).subarray(0, 4096)));
    client.disconnect();
    await client.closed;
  }

  describe('handshake', () => {
    it('greets fixed newstyle, lists exports, and answers unknown options with ERR_UNSUP', async () => {
      const c = await RawClient.handshake(port);
      c.option(99);
      assert.equal((await c.optionReply()).type, REP.ERR_UNSUP);
      c.option(OPT.LIST);
      const names: string[] = [];
      for (;;) {
        const r = await c.optionReply();
        if (r.type === REP.ACK) break;
        assert.equal(r.type, REP.SERVER);
        names.push(r.data.subarray(4, 4 + r.data.readUInt32BE(0)).toString());
      }
      assert.deepEqual(names.sort(), ['disk', 'disk@snap']);
      c.option(OPT.LIST, Buffer.from('x'));
      assert.equal((await c.optionReply()).type, REP.ERR_INVALID);
      c.option(OPT.ABORT);
      assert.equal((await c.optionReply()).type, REP.ACK);
      await c.closed;
    });

    it('INFO describes an export with block sizes; unknown exports get ERR_UNKNOWN', async () => {
      const c = await RawClient.handshake(port);
      const info = await c.go('disk', [3, 1], OPT.INFO);
      assert.equal(info.final.type, REP.ACK);
      assert.equal(info.size, SIZE);
      assert.ok(info.flags! & TFLAG.SEND_FLUSH && info.flags! & TFLAG.SEND_TRIM);
      const bs = info.infos.find((r) => r.data.readUInt16BE(0) === 3)!;
      assert.deepEqual(
        [bs.data.readUInt32BE(2), bs.data.readUInt32BE(6), bs.data.readUInt32BE(10)],
        [1, s.pool.blockSize, 32 * MiB],
      );
      assert.equal((await c.go('nope', [], OPT.INFO)).final.type, REP.ERR_UNKNOWN);
      assert.equal((await c.go('nope', [])).final.type, REP.ERR_UNKNOWN);
      // Haggling goes on after errors: GO still works.
      assert.equal((await c.go('disk@snap', [])).final.type, REP.ACK);
      c.disconnect();
      await c.closed;
    });

    it('refuses malformed option payloads with ERR_INVALID and keeps haggling', async () => {
      const c = await RawClient.handshake(port);
      const bad = infoRequest('disk', []);
      bad.writeUInt32BE(1000, 0); // name longer than the option
      c.option(OPT.GO, bad);
      assert.equal((await c.optionReply()).type, REP.ERR_INVALID);
      c.option(OPT.GO, Buffer.from([0, 0]));
      assert.equal((await c.optionReply()).type, REP.ERR_INVALID);
      c.option(OPT.STRUCTURED_REPLY, Buffer.from('x'));
      assert.equal((await c.optionReply()).type, REP.ERR_INVALID);
      // Meta contexts need structured replies first.
      c.option(OPT.SET_META_CONTEXT, metaRequest('disk', ['base:allocation']));
      assert.equal((await c.optionReply()).type, REP.ERR_INVALID);
      c.option(OPT.STRUCTURED_REPLY);
      assert.equal((await c.optionReply()).type, REP.ACK);
      c.option(OPT.LIST_META_CONTEXT, Buffer.from([0, 0, 0, 9]));
      assert.equal((await c.optionReply()).type, REP.ERR_INVALID);
      c.option(OPT.LIST_META_CONTEXT, metaRequest('disk', []));
      const listed = await c.optionReply();
      assert.equal(listed.type, REP.META_CONTEXT);
      assert.equal(listed.data.subarray(4).toString(), 'base:allocation');
      assert.equal((await c.optionReply()).type, REP.ACK);
      c.option(OPT.SET_META_CONTEXT, metaRequest('disk', ['x-other:thing', 'base:nothing']));
      assert.equal((await c.optionReply()).type, REP.ACK); // nothing selected, not an error
      // Oversized option data is skipped, not buffered.
      c.option(77, Buffer.alloc(MiB));
      assert.equal((await c.optionReply()).type, REP.ERR_TOO_BIG);
      c.option(OPT.STARTTLS);
      assert.equal((await c.optionReply()).type, REP.ERR_POLICY);
      c.option(OPT.ABORT);
      await c.optionReply();
      await c.closed;
    });

    it('drops clients that break the handshake, and keeps serving others', async () => {
      s.errors.length = 0;
      const flags = await RawClient.handshake(port, 0x80);
      await flags.closed;
      const magic = await RawClient.handshake(port);
      magic.option(OPT.LIST, Buffer.alloc(0), 0x1234n);
      await magic.closed;
      const unknown = await RawClient.handshake(port);
      unknown.option(OPT.EXPORT_NAME, Buffer.from('missing'));
      await unknown.closed;
      const truncated = await RawClient.connect(port);
      truncated.send(Buffer.from([0, 0]));
      truncated.destroy();
      await stillServing();
      assert.deepEqual(
        s.errors.filter((e) => !/client flags|option magic|no export|EXPORT_NAME/.test(String(e))),
        [],
      );
    });

    it('EXPORT_NAME enters transmission with (or without) the 124 zero bytes', async () => {
      for (const clientFlags of [1, 3]) {
        const c = await RawClient.handshake(port, clientFlags);
        c.option(OPT.EXPORT_NAME, Buffer.from('disk@snap'));
        const reply = await c.read(clientFlags === 3 ? 10 : 134);
        assert.equal(Number(reply.readBigUInt64BE(0)), SIZE);
        assert.ok(reply.readUInt16BE(8) & TFLAG.READ_ONLY);
        c.request(CMD.READ, 0, 0, 8);
        const r = await c.reply(8);
        assert.equal(r.kind, 'simple');
        assert.ok(r.data.equals(patternBytes(8, 1)));
        c.disconnect();
        await c.closed;
      }
    });
  });

  describe('transmission', () => {
    it('reads and writes with simple replies when structured replies were not negotiated', async () => {
      s.pool.createContainer({ name: 'simple', type: 'vdisk', size: SIZE });
      const { client } = await RawClient.open(port, 'simple', { structured: false });
      const data = patternBytes(100_000, 7);
      client.request(CMD.WRITE, 0, 12345, data.length, data);
      assert.equal((await client.reply()).error, 0);
      client.request(CMD.READ, 0, 12345, data.length);
      const r = await client.reply(data.length);
      assert.equal(r.kind, 'simple');
      assert.ok(r.data.equals(data));
      client.request(CMD.READ, 0, SIZE - 10, 20);
      assert.deepEqual([(await client.reply(20)).error], [NBD_ERR.EINVAL]);
      client.request(CMD.BLOCK_STATUS, 0, 0, 4096);
      assert.equal((await client.reply()).error, NBD_ERR.EINVAL);
      client.disconnect();
      await client.closed;
    });

    it('answers bad offsets, oversized lengths, unknown commands and bad flags with errors, and goes on', async () => {
      s.errors.length = 0;
      s.pool.createContainer({ name: 'errs', type: 'vdisk', size: SIZE });
      const { client } = await RawClient.open(port, 'errs');
      const expect = async (errno: number, readLength = 0) => {
        const r = await client.reply(readLength);
        assert.equal(r.error, errno);
        if (r.kind === 'structured' && errno !== 0) assert.equal(r.chunks[r.chunks.length - 1]!.type, 0x8001);
      };
      client.request(CMD.READ, 0, SIZE - 4096, 8192);
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.READ, 0, 2 ** 60, 512);
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.READ, 0, 0, 64 * MiB);
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.WRITE, 0, SIZE - 100, 4096, Buffer.alloc(4096, 1));
      await expect(NBD_ERR.ENOSPC);
      // An oversized write's payload is skipped, and the stream stays in sync.
      client.request(CMD.WRITE, 0, 0, 40 * MiB, Buffer.alloc(40 * MiB, 2));
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.TRIM, 0, SIZE, 1);
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.WRITE_ZEROES, 0, SIZE - 1, 2);
      await expect(NBD_ERR.ENOSPC);
      client.request(CMD.BLOCK_STATUS, 0, SIZE - 1, 2);
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.BLOCK_STATUS, 0, 0, 0);
      await expect(NBD_ERR.EINVAL);
      client.request(99, 0, 0, 0);
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.CACHE, 0, 0, 4096);
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.READ, CMD_FLAG.NO_HOLE, 0, 4096);
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.WRITE, CMD_FLAG.DF, 0, 4, Buffer.alloc(4));
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.FLUSH, CMD_FLAG.REQ_ONE, 0, 0);
      await expect(NBD_ERR.EINVAL);
      client.request(CMD.WRITE_ZEROES, CMD_FLAG.FAST_ZERO | CMD_FLAG.NO_HOLE, 0, 4096);
      await expect(NBD_ERR.ENOTSUP);
      // Zero-length requests are harmless.
      client.request(CMD.READ, 0, 0, 0);
      await expect(0);
      client.request(CMD.WRITE, 0, 0, 0);
      await expect(0);
      // Nothing was written by any of that.
      assert.deepEqual(s.pool.allocation('errs', 0, SIZE), [{ offset: 0, length: SIZE, state: 'hole' }]);
      client.request(CMD.WRITE, CMD_FLAG.FUA, 4096, 4, Buffer.from('abcd'));
      await expect(0);
      client.request(CMD.READ, 0, 4096, 4);
      const r = await client.reply();
      assert.equal(RawClient.readData(r, 4096, 4).toString(), 'abcd');
      client.disconnect();
      await client.closed;
      assert.deepEqual(s.errors, []);
    });

    it('drops a connection whose request magic is wrong; the server stays up', async () => {
      const { client } = await RawClient.open(port, 'disk@snap');
      client.send(Buffer.alloc(28, 0x41));
      await client.closed;
      s.errors.length = 0;
      await stillServing();
    });

    it('serves sparse reads as hole and data chunks, and DF reads as one chunk', async () => {
      const bs = s.pool.blockSize;
      s.pool.createContainer({ name: 'sparse', type: 'vdisk', size: SIZE });
      const data = patternBytes(bs, 5);
      s.pool.write('sparse', 2 * bs, data);
      const { client } = await RawClient.open(port, 'sparse');
      client.request(CMD.READ, 0, 0, 8 * bs);
      const r = await client.reply();
      assert.ok(r.kind === 'structured');
      assert.deepEqual(
        r.chunks.map((c) => c.type),
        [2, 1, 2],
      );
      const expected = Buffer.alloc(8 * bs);
      data.copy(expected, 2 * bs);
      assert.ok(RawClient.readData(r, 0, 8 * bs).equals(expected));
      client.request(CMD.READ, CMD_FLAG.DF, 0, 8 * bs);
      const df = await client.reply();
      assert.ok(df.kind === 'structured' && df.chunks.length === 1 && df.chunks[0]!.type === 1);
      assert.ok(RawClient.readData(df, 0, 8 * bs).equals(expected));
      client.disconnect();
      await client.closed;
    });

    it('BLOCK_STATUS reports holes, zeros and data; REQ_ONE gives one extent', async () => {
      const bs = s.pool.blockSize;
      s.pool.createContainer({ name: 'bst', type: 'vdisk', size: SIZE });
      s.pool.write('bst', bs, Buffer.alloc(2 * bs, 1));
      s.pool.snapshot('bst', 'a');
      s.pool.writeZeroes('bst', 2 * bs, bs);
      const { client } = await RawClient.open(port, 'bst');
      client.request(CMD.BLOCK_STATUS, 0, 0, SIZE);
      const r = await client.reply();
      assert.ok(r.kind === 'structured' && r.error === 0);
      const payload = r.chunks[0]!.data;
      const descriptors: number[][] = [];
      for (let at = 4; at < payload.length; at += 8)
        descriptors.push([payload.readUInt32BE(at), payload.readUInt32BE(at + 4)]);
      assert.deepEqual(descriptors, [
        [bs, 3],
        [bs, 0],
        [bs, 2],
        [SIZE - 3 * bs, 3],
      ]);
      client.request(CMD.BLOCK_STATUS, CMD_FLAG.REQ_ONE, bs + 10, 100);
      const one = await client.reply();
      assert.ok(one.kind === 'structured');
      assert.equal(one.chunks[0]!.data.length, 12);
      assert.deepEqual([one.chunks[0]!.data.readUInt32BE(4), one.chunks[0]!.data.readUInt32BE(8)], [100, 0]);
      client.disconnect();
      await client.closed;
    });

    it('TRIM and WRITE_ZEROES free blocks, but NO_HOLE keeps them allocated', async () => {
      const bs = s.pool.blockSize;
      s.pool.createContainer({ name: 'zero', type: 'vdisk', size: SIZE });
      s.pool.write('zero', 0, Buffer.alloc(6 * bs, 0xaa));
      const { client } = await RawClient.open(port, 'zero');
      client.request(CMD.TRIM, 0, 0, 2 * bs);
      client.request(CMD.WRITE_ZEROES, CMD_FLAG.FAST_ZERO, 2 * bs, 2 * bs);
      client.request(CMD.WRITE_ZEROES, CMD_FLAG.NO_HOLE | CMD_FLAG.FUA, 4 * bs, 2 * bs);
      for (let i = 0; i < 3; i++) assert.equal((await client.reply()).error, 0);
      assert.deepEqual(
        s.pool.allocation('zero', 0, 6 * bs).map((e) => [e.length / bs, e.state]),
        [
          [4, 'hole'],
          [2, 'data'],
        ],
      );
      assert.ok(s.pool.read('zero', 0, 6 * bs).every((b) => b === 0));
      client.disconnect();
      await client.closed;
    });

    it('snapshots are read-only (EPERM); a vdisk has one writer at a time', async () => {
      const snap = await RawClient.open(port, 'disk@snap');
      assert.ok(snap.flags & TFLAG.READ_ONLY);
      snap.client.request(CMD.WRITE, 0, 0, 4, Buffer.alloc(4));
      assert.equal((await snap.client.reply()).error, NBD_ERR.EPERM);
      snap.client.request(CMD.TRIM, 0, 0, 4096);
      assert.equal((await snap.client.reply()).error, NBD_ERR.EPERM);
      snap.client.request(CMD.FLUSH, 0, 0, 0);
      assert.equal((await snap.client.reply()).error, 0);
      snap.client.disconnect();

      s.pool.createContainer({ name: 'excl', type: 'vdisk', size: SIZE });
      const first = await RawClient.open(port, 'excl');
      assert.equal(first.flags & TFLAG.READ_ONLY, 0);
      const second = await RawClient.open(port, 'excl');
      assert.ok(second.flags & TFLAG.READ_ONLY, 'a second client gets the vdisk read-only');
      second.client.request(CMD.WRITE, 0, 0, 4, Buffer.alloc(4, 1));
      assert.equal((await second.client.reply()).error, NBD_ERR.EPERM);
      first.client.request(CMD.WRITE, 0, 0, 4, Buffer.alloc(4, 2));
      assert.equal((await first.client.reply()).error, 0);
      second.client.request(CMD.READ, 0, 0, 4);
      assert.ok(RawClient.readData(await second.client.reply(), 0, 4).equals(Buffer.alloc(4, 2)));
      first.client.destroy(); // a hard disconnect also frees the slot
      await first.client.closed;
      await new Promise((r) => setTimeout(r, 50));
      const third = await RawClient.open(port, 'excl');
      assert.equal(third.flags & TFLAG.READ_ONLY, 0);
      third.client.disconnect();
      second.client.disconnect();
      await Promise.all([third.client.closed, second.client.closed, snap.client.closed]);
    });

    it('maps engine errors: OUT_OF_SPACE → ENOSPC, IO_ERROR → EIO', async () => {
      const small = await servePool({ blockSize: 4096, capacityBytes: 4 * 4096 });
      try {
        small.pool.createContainer({ name: 'full', type: 'vdisk', size: 64 * 4096 });
        const { client } = await RawClient.open(small.server.port, 'full');
        client.request(CMD.WRITE, 0, 0, 8 * 4096, Buffer.alloc(8 * 4096, 1));
        assert.equal((await client.reply()).error, NBD_ERR.ENOSPC);
        client.request(CMD.WRITE, 0, 0, 4096, Buffer.alloc(4096, 1));
        assert.equal((await client.reply()).error, 0);
        small.pool.device.setFaultInjector((op) => {
          if (op === 'read') throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
        });
        client.request(CMD.READ, 0, 0, 4096);
        assert.equal((await client.reply()).error, NBD_ERR.EIO);
        small.pool.device.setFaultInjector(null);
        client.request(CMD.READ, 0, 0, 4096);
        assert.equal((await client.reply()).error, 0);
        client.disconnect();
        await client.closed;
        assert.equal(small.errors.length, 1, 'the EIO was reported to the server log');
      } finally {
        await small.close();
      }
    });

    it('small writes done at once: a payload split across reads, FUA, and a write queued behind a trim of its block', async () => {
      s.pool.createContainer({ name: 'now', type: 'vdisk', size: SIZE });
      const { client } = await RawClient.open(port, 'now');
      // Header and half the payload, then (after the server has read them) the rest.
      const split = patternBytes(8 * KiB, 3);
      const header = Buffer.alloc(28);
      header.writeUInt32BE(0x25609513, 0);
      header.writeUInt16BE(CMD.WRITE, 6);
      header.writeBigUInt64BE(77n, 8);
      header.writeBigUInt64BE(BigInt(100 * KiB), 16);
      header.writeUInt32BE(split.length, 24);
      client.send(Buffer.concat([header, split.subarray(0, 3000)]));
      await new Promise((r) => setTimeout(r, 20));
      client.send(split.subarray(3000));
      const wire = await client.nextReply();
      assert.equal(wire.error, 0);
      assert.ok(s.pool.read('now', 100 * KiB, split.length).equals(split));
      const fua = patternBytes(4 * KiB, 4);
      client.request(CMD.WRITE, CMD_FLAG.FUA, 0, fua.length, fua);
      assert.equal((await client.reply()).error, 0);
      // A trim of the whole block, then a write into it: the write lands after the trim.
      client.request(CMD.TRIM, 0, 0, 64 * KiB);
      const after = patternBytes(4 * KiB, 5);
      client.request(CMD.WRITE, 0, 8 * KiB, after.length, after);
      assert.equal((await client.reply()).error, 0);
      assert.equal((await client.reply()).error, 0);
      const block = s.pool.read('now', 0, 64 * KiB);
      assert.ok(block.subarray(0, 8 * KiB).equals(Buffer.alloc(8 * KiB)));
      assert.ok(block.subarray(8 * KiB, 12 * KiB).equals(after));
      client.disconnect();
      await client.closed;
    });

    it('large writes still in flight keep their payloads: 40 writes sent at once, the device slowed, land exactly', async () => {
      // Payloads of large writes are lent from the receive arenas, not copied; an arena must not take new
      // bytes while a write still reads from it. Short device writes (64 KiB per system call) keep the
      // writes in flight while the rest arrives.
      s.pool.createContainer({ name: 'lent', type: 'vdisk', size: 64 * MiB });
      const { client } = await RawClient.open(port, 'lent');
      const writes = Array.from({ length: 40 }, (_, i) => {
        const length = MiB + (i % 5) * 96 * KiB - (i % 3) * 512;
        return { offset: i * ((3 * MiB) / 2), data: patternBytes(length, 100 + i) };
      });
      s.pool.device.setFaultInjector((op) => (op === 'write' ? 64 * KiB : undefined));
      try {
        for (const w of writes) client.request(CMD.WRITE, 0, w.offset, w.data.length, w.data);
        for (const _ of writes) assert.equal((await client.reply()).error, 0);
      } finally {
        s.pool.device.setFaultInjector(null);
      }
      for (const [i, w] of writes.entries())
        assert.ok(s.pool.read('lent', w.offset, w.data.length).equals(w.data), `write ${i} landed exactly`);
      client.disconnect();
      await client.closed;
    });

    it('a client that vanishes mid-write loses nothing it flushed', async () => {
      s.pool.createContainer({ name: 'vanish', type: 'vdisk', size: SIZE });
      const { client } = await RawClient.open(port, 'vanish');
      const flushed = patternBytes(256 * KiB, 9);
      client.request(CMD.WRITE, 0, 0, flushed.length, flushed);
      client.request(CMD.FLUSH, 0, 0, 0);
      assert.equal((await client.reply()).error, 0);
      assert.equal((await client.reply()).error, 0);
      // Header and half the payload of a second write, then gone.
      const half = Buffer.alloc(128 * KiB, 0xee);
      const header = Buffer.alloc(28);
      header.writeUInt32BE(0x25609513, 0);
      header.writeUInt16BE(CMD.WRITE, 6);
      header.writeBigUInt64BE(0n, 16);
      header.writeUInt32BE(256 * KiB, 24);
      client.send(Buffer.concat([header, half]));
      await new Promise((r) => setTimeout(r, 50));
      client.destroy();
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(s.pool.read('vanish', 0, flushed.length).equals(flushed));
      assert.deepEqual(s.server.exports.activeWriters().includes('vanish'), false);
      await stillServing();
    });
  });
});
