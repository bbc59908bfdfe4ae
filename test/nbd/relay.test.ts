/**
 * Transmission threads (agent/nbd/relay/): after the handshake a worker
 * thread owns the connection's socket and answers reads from the data file
 * at the addresses the engine gave it; everything else goes through the
 * event loop. A real pool served in-process, raw NBD clients, a real
 * worker thread. What a user would check:
 * - reads answered there are the engine's bytes (data, holes, zeros,
 *   partial and multi-block, simple and structured replies), and most reads
 *   are answered there; so are reads that miss the page cache, a burst of
 *   them at once;
 * - a write, a trim or a snapshot is seen by the next read, on the writing
 *   connection and on another one;
 * - a block freed by one vdisk and handed to another is never read through
 *   an old address: the first vdisk reads zeros, not the second's data;
 * - an ended session answers ESHUTDOWN, an injected device fault EIO;
 * - DISC, a vanished client and a server close end the connection and free its thread.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { CMD, NBD_ERR } from '../../agent/nbd/constants';
import { dropFromPageCache } from '../helpers/page-cache';
import { seededRandom } from '../helpers/seeded-random';
import { cleanupTempDirs } from '../helpers/tmp';
import { RawClient, type Reply } from './helpers/raw-client';
import { patternBytes, type ServedPool, servePool } from './helpers/served-pool';

const BS = 64 * 1024;
const SIZE = 4 * 1024 * 1024;

async function until(what: string, test: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Opens `name`, reads from it (a connection moves to a thread once it reads)
 * and waits until a thread serves it (the server's count reaches `serving`).
 */
async function openThreaded(
  s: ServedPool,
  name: string,
  serving: number,
  structured = true,
): Promise<RawClient> {
  const { client } = await RawClient.open(s.server.port, name, { structured, meta: structured });
  assert.equal(await outcome(client, CMD.READ, 0, 512), 0);
  await until(`${serving} threaded connections`, () => s.server.threadStats().connections >= serving);
  return client;
}

async function read(client: RawClient, offset: number, length: number): Promise<Buffer> {
  const handle = client.request(CMD.READ, 0, offset, length);
  const reply = await client.replyFor(handle);
  assert.equal(reply.error, 0, `read ${offset}+${length} failed: ${reply.error}`);
  return RawClient.readData(reply, offset, length);
}

/** Buffers compared by bytes, reporting the first difference (a diff of large buffers would take the test down). */
function same(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.equals(expected)) return;
  let at = 0;
  while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++;
  assert.fail(`${what}: ${actual.length} bytes against ${expected.length}, first difference at byte ${at}`);
}

async function outcome(client: RawClient, type: number, offset: number, length: number, payload?: Buffer) {
  const reply: Reply = await client.replyFor(client.request(type, 0, offset, length, payload));
  return reply.error;
}

describe('nbd transmission threads: reads answered off the event loop', function () {
  this.timeout(60_000);
  let s: ServedPool;

  afterEach(async () => {
    await s?.close();
  });
  after(cleanupTempDirs);

  it('answers reads with exactly the engine bytes: data, holes, zeros, partial and multi-block, simple and structured', async () => {
    s = await servePool({ blockSize: BS });
    s.pool.createContainer({ name: 'a', type: 'vdisk', size: SIZE });
    s.pool.write('a', 0, patternBytes(10 * BS, 1));
    s.pool.write('a', 20 * BS + 100, patternBytes(3 * BS, 2));
    s.pool.trim('a', 5 * BS, BS); // explicit zeros over the parent's data once snapshotted below
    s.pool.snapshot('a', 's1');
    s.pool.write('a', 3 * BS + 7, patternBytes(5000, 3)); // copy-on-write of one block
    s.pool.createContainer({ name: 'clone', type: 'vdisk', size: SIZE });
    s.pool.sync('clone', 'a@s1');
    const structured = await openThreaded(s, 'a', 1, true);
    const simple = await openThreaded(s, 'clone', 2, false);
    const snapshot = await openThreaded(s, 'a@s1', 3, true);
    const seed = Number(process.env.SNAPSYNC_MODEL_SEED ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);
    for (let i = 0; i < 300; i++) {
      const length = 1 + Math.floor(random() * (random() < 0.2 ? 300 * 1024 : 9000));
      const offset = Math.floor(random() * (SIZE - length));
      const where = `${offset}+${length} (SNAPSYNC_MODEL_SEED=${seed})`;
      same(await read(structured, offset, length), s.pool.read('a', offset, length), `a ${where}`);
      same(await read(simple, offset, length), s.pool.read('clone', offset, length), `clone ${where}`);
      same(
        await read(snapshot, offset, length),
        s.pool.readSnapshot('a@s1', offset, length),
        `a@s1 ${where}`,
      );
    }
    // Not the event loop's doing: most of the 900 reads never left their threads.
    assert.ok(
      s.server.threadStats().reads > 600,
      `threads answered ${s.server.threadStats().reads} of 900 reads`,
    );
    for (const c of [structured, simple, snapshot]) c.disconnect();
  });

  it('a burst of reads that miss the page cache is answered by the thread with the engine bytes, none passed to the event loop', async () => {
    s = await servePool({ blockSize: BS });
    s.pool.createContainer({ name: 'a', type: 'vdisk', size: SIZE });
    s.pool.write('a', 0, patternBytes(SIZE, 7));
    await s.pool.flush();
    const client = await openThreaded(s, 'a', 1);
    // Every block's address reaches the thread (its first read of them asks the event loop).
    same(await read(client, 0, SIZE), s.pool.read('a', 0, SIZE), 'the whole vdisk');
    same(await read(client, 0, SIZE), s.pool.read('a', 0, SIZE), 'the whole vdisk again');
    const seed = Number(process.env.SNAPSYNC_MODEL_SEED ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);
    // The last round ends with a DISC right behind the reads: every one is still answered.
    for (let round = 0; round < 4; round++) {
      dropFromPageCache(path.join(s.dir, 'data'));
      const before = s.server.threadStats().reads;
      // 32 in flight at once, as a VM's queue: 4 KiB to 64 KiB, anywhere (across blocks too).
      const asks = Array.from({ length: 32 }, () => {
        const length = 4096 * (1 + Math.floor(random() * 16));
        return { offset: 512 * Math.floor(random() * ((SIZE - length) / 512)), length };
      });
      const handles = asks.map((a) => client.request(CMD.READ, 0, a.offset, a.length));
      if (round === 3) client.disconnect();
      const replies = await Promise.all(handles.map((h) => client.replyFor(h)));
      for (const [i, a] of asks.entries()) {
        assert.equal(replies[i]!.error, 0);
        same(
          RawClient.readData(replies[i]!, a.offset, a.length),
          s.pool.read('a', a.offset, a.length),
          `round ${round}, ${a.offset}+${a.length} (SNAPSYNC_MODEL_SEED=${seed})`,
        );
      }
      assert.equal(
        s.server.threadStats().reads - before,
        32,
        `round ${round}: the thread answered all 32 (seed ${seed})`,
      );
    }
    await until('the thread to be free again', () => s.server.threadStats().connections === 0);
  });

  it('a write, a trim and a snapshot are seen by the next read, on the connection that wrote and on another', async () => {
    s = await servePool({ blockSize: BS });
    s.pool.createContainer({ name: 'w', type: 'vdisk', size: SIZE });
    s.pool.write('w', 0, patternBytes(4 * BS, 4));
    s.pool.snapshot('w', 'base');
    const writer = await openThreaded(s, 'w', 1);
    const other = await openThreaded(s, 'w', 2); // read-only: loopback TCP cannot tell clients apart
    // Both connections hold the addresses of blocks 0-3 (and of the hole at 8).
    same(await read(writer, 0, 4 * BS), s.pool.read('w', 0, 4 * BS), 'await read(writer, 0, 4 * BS)');
    same(await read(other, 0, 9 * BS), s.pool.read('w', 0, 9 * BS), 'await read(other, 0, 9 * BS)');
    // Copy-on-write (the block belongs to the snapshot), a write into a hole, a trim.
    const fresh = patternBytes(BS + 300, 5);
    assert.equal(await outcome(writer, CMD.WRITE, BS - 100, fresh.length, fresh), 0);
    assert.equal(await outcome(writer, CMD.WRITE, 8 * BS, 512, Buffer.alloc(512, 0x5a)), 0);
    assert.equal(await outcome(writer, CMD.TRIM, 3 * BS, BS), 0);
    same(await read(writer, BS - 100, fresh.length), fresh, 'await read(writer, BS - 100, fresh.length)');
    assert.equal(await outcome(writer, CMD.FLUSH, 0, 0), 0);
    const expected = s.pool.read('w', 0, 9 * BS);
    same(
      expected.subarray(BS - 100, BS - 100 + fresh.length),
      fresh,
      'expected.subarray(BS - 100, BS - 100 + fresh.length)',
    );
    same(expected.subarray(3 * BS, 4 * BS), Buffer.alloc(BS), 'expected.subarray(3 * BS, 4 * BS)');
    same(await read(writer, 0, 9 * BS), expected, 'await read(writer, 0, 9 * BS)');
    same(await read(other, 0, 9 * BS), expected, 'await read(other, 0, 9 * BS)');
    // A snapshot taken the way the agent takes it, then a write: the vdisk reads the new bytes.
    await s.pool.quiesce();
    s.pool.snapshot('w', 'later');
    assert.equal(await outcome(writer, CMD.WRITE, 0, 4096, Buffer.alloc(4096, 0x77)), 0);
    same(await read(writer, 0, 4096), Buffer.alloc(4096, 0x77), 'await read(writer, 0, 4096)');
    assert.equal(await outcome(writer, CMD.FLUSH, 0, 0), 0);
    same(await read(other, 0, 4096), Buffer.alloc(4096, 0x77), 'await read(other, 0, 4096)');
    same(
      s.pool.readSnapshot('w@later', 0, 4096),
      expected.subarray(0, 4096),
      's.pool.readSnapshot("w@later", 0, 4096)',
    );
    writer.disconnect();
    other.disconnect();
  });

  it('a stream of writes through the thread lands exactly: 32 in flight, 4 KiB to 1 MiB, read back over NBD and through the engine', async () => {
    s = await servePool({ blockSize: BS });
    const size = 16 * 1024 * 1024;
    s.pool.createContainer({ name: 'stream', type: 'vdisk', size });
    const client = await openThreaded(s, 'stream', 1);
    const model = Buffer.alloc(size);
    const seed = Number(process.env.SNAPSYNC_MODEL_SEED ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);
    for (let batch = 0; batch < 6; batch++) {
      // Disjoint ranges within a batch (their order is the server's), sent without waiting: the
      // thread passes them up from its receive slots while more arrive.
      const taken = new Uint8Array(size / 4096);
      const replies: Promise<Reply>[] = [];
      for (let i = 0; i < 32; i++) {
        const pages = random() < 0.5 ? 1 + Math.floor(random() * 4) : 64 + Math.floor(random() * 193);
        const page = Math.floor(random() * (size / 4096 - pages));
        if (taken.subarray(page, page + pages).some((t) => t)) continue;
        taken.fill(1, page, page + pages);
        const data = patternBytes(pages * 4096, seed + batch * 100 + i);
        data.copy(model, page * 4096);
        replies.push(client.replyFor(client.request(CMD.WRITE, 0, page * 4096, data.length, data)));
      }
      for (const r of await Promise.all(replies)) assert.equal(r.error, 0, `SNAPSYNC_MODEL_SEED=${seed}`);
      same(await read(client, 0, size), model, `batch ${batch} over NBD (SNAPSYNC_MODEL_SEED=${seed})`);
    }
    assert.equal(await outcome(client, CMD.FLUSH, 0, 0), 0);
    same(s.pool.read('stream', 0, size), model, `through the engine (SNAPSYNC_MODEL_SEED=${seed})`);
    client.disconnect();
  });

  it('a write arriving in many small pieces completes on a threaded connection: one request never waits for receive slots it holds itself', async () => {
    s = await servePool({ blockSize: BS });
    s.pool.createContainer({ name: 'pieces', type: 'vdisk', size: SIZE });
    const client = await openThreaded(s, 'pieces', 1);
    // More pieces than the thread has receive slots (8), each received on its own: before, every piece
    // went up in a slot of its own, the event loop held them all waiting for the rest, and both waited forever.
    const data = patternBytes(2 * 1024 * 1024, 7);
    const handle = await client.requestInPieces(CMD.WRITE, 0, data, 128 * 1024, 5);
    const reply = await Promise.race([
      client.replyFor(handle),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('no reply to the write within 10 s: the connection hung')), 10_000),
      ),
    ]);
    assert.equal(reply.error, 0);
    same(await read(client, 0, data.length), data, 'read back over NBD');
    same(s.pool.read('pieces', 0, data.length), data, 'through the engine');
    client.disconnect();
  });

  it('a client that only writes stays on the event loop; its first read moves it to a thread', async () => {
    s = await servePool({ blockSize: BS });
    s.pool.createContainer({ name: 'writer', type: 'vdisk', size: SIZE });
    const { client } = await RawClient.open(s.server.port, 'writer');
    for (let i = 0; i < 8; i++)
      assert.equal(await outcome(client, CMD.WRITE, i * BS, BS, patternBytes(BS, 40 + i)), 0);
    // No thread serves it (none is even started before a connection reads).
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.server.threadStats().connections, 0);
    same(await read(client, 0, 8 * BS), s.pool.read('writer', 0, 8 * BS), 'first read, on the event loop');
    await until('the connection on a thread', () => s.server.threadStats().connections === 1);
    // The first read there asks for the addresses (answered on the event loop), the next is the thread's.
    for (let i = 0; i < 2; i++) same(await read(client, BS, BS), patternBytes(BS, 41), 'read on the thread');
    assert.equal(s.server.threadStats().reads, 1);
    client.disconnect();
  });

  it("never reads a freed block through an old address: a trimmed block handed to another vdisk reads as zeros, not the other vdisk's data", async () => {
    s = await servePool({ blockSize: BS });
    s.pool.createContainer({ name: 'x', type: 'vdisk', size: SIZE });
    s.pool.createContainer({ name: 'y', type: 'vdisk', size: SIZE });
    s.pool.write('x', 0, patternBytes(BS, 6));
    await s.pool.flush();
    const reader = await openThreaded(s, 'x', 1);
    same(await read(reader, 0, BS), patternBytes(BS, 6), 'await read(reader, 0, BS)'); // the thread now holds the address
    const old = s.pool.locate('x', 0, 1)!.blocks[0]!;
    // Trimmed and committed: the block is free; y's next write takes it.
    await s.pool.quiesce();
    s.pool.trim('x', 0, BS);
    await s.pool.flush();
    const secret = Buffer.alloc(BS, 0xee);
    s.pool.write('y', 0, secret);
    assert.equal(
      s.pool.locate('y', 0, 1)!.blocks[0],
      old,
      'y reuses the block x freed (the case under test)',
    );
    const got = await read(reader, 0, BS);
    same(got, Buffer.alloc(BS), 'x reads zeros where it was trimmed');
    reader.disconnect();
  });

  it('an ended session answers ESHUTDOWN, an injected read fault EIO, from a connection a thread serves', async () => {
    s = await servePool({ blockSize: BS });
    s.pool.createContainer({ name: 'b', type: 'vdisk', size: SIZE });
    s.pool.createContainer({ name: 'c', type: 'vdisk', size: SIZE });
    s.pool.write('b', 0, patternBytes(BS, 7));
    s.pool.write('c', 0, patternBytes(BS, 8));
    const b = await openThreaded(s, 'b', 1);
    const c = await openThreaded(s, 'c', 2);
    same(await read(b, 0, 4096), patternBytes(4096, 7), 'await read(b, 0, 4096)');
    same(await read(c, 0, 4096), patternBytes(4096, 8), 'await read(c, 0, 4096)');
    s.pool.deleteContainer('b');
    assert.equal(await outcome(b, CMD.READ, 0, 4096), NBD_ERR.ESHUTDOWN);
    s.pool.device.setFaultInjector((op) => {
      if (op === 'read') throw Object.assign(new Error('injected'), { code: 'EIO' });
    });
    assert.equal(await outcome(c, CMD.READ, 0, 4096), NBD_ERR.EIO);
    s.pool.device.setFaultInjector(null);
    same(await read(c, 0, 4096), patternBytes(4096, 8), 'await read(c, 0, 4096)');
    // A detached session (a forced operation) is stopped on its thread too.
    const session = s.server.sessions.all().find((x) => x.target.container === 'c');
    await session!.detach();
    assert.equal(await outcome(c, CMD.READ, 0, 4096), NBD_ERR.ESHUTDOWN);
    s.errors.length = 0; // the injected EIO was reported, as it should be
  });

  it('DISC, a vanished client and a server close end the connection and free its thread; with 0 threads all stay on the event loop', async () => {
    s = await servePool({ blockSize: BS });
    s.pool.createContainer({ name: 'd', type: 'vdisk', size: SIZE });
    const polite = await openThreaded(s, 'd', 1);
    polite.disconnect();
    await polite.closed;
    await until('the thread freed after DISC', () => s.server.threadStats().connections === 0);
    const rude = await openThreaded(s, 'd', 1);
    rude.destroy();
    await until('the thread freed after the client vanished', () => s.server.threadStats().connections === 0);
    await until('the connection gone', () => s.server.connections() === 0);
    const last = await openThreaded(s, 'd', 1);
    await s.server.close();
    await last.closed;
    await s.pool.close();

    s = await servePool({ blockSize: BS, transmissionThreads: 0 });
    s.pool.createContainer({ name: 'e', type: 'vdisk', size: SIZE });
    const { client } = await RawClient.open(s.server.port, 'e');
    same(await read(client, 0, 4096), Buffer.alloc(4096), 'await read(client, 0, 4096)');
    assert.deepEqual(s.server.threadStats(), { threads: 0, connections: 0, reads: 0 });
    client.disconnect();
  });
});
