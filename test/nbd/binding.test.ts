/**
 * A session is bound to the disk it opened (uuid, generation, size), never to
 * its name: whatever the engine does under an attached client — a direct
 * sync, revert, resize, or delete and re-create under the same name — the
 * client's later requests fail with NBD_ESHUTDOWN and reach no container.
 * (The agent refuses these while a client is attached; this is the layer
 * below, which holds even if a change gets past it.)
 */
import * as assert from 'node:assert/strict';
import { CMD, NBD_ERR } from '../../agent/nbd/constants';
import { cleanupTempDirs } from '../helpers/tmp';
import { RawClient } from './helpers/raw-client';
import { type ServedPool, servePool } from './helpers/served-pool';

const BS = 4096;
const SIZE = 64 * BS;

/** Errno of the reply to one request, or 'closed' when the server ended the connection instead. */
async function outcome(client: RawClient, readLength = 0): Promise<number | 'closed'> {
  try {
    return (await client.reply(readLength)).error;
  } catch {
    return 'closed';
  }
}

describe('nbd sessions are bound to the disk they opened, not to its name', () => {
  let s: ServedPool;

  beforeEach(async () => {
    s = await servePool({ blockSize: BS });
    s.pool.createContainer({ name: 'a', type: 'vdisk', size: SIZE });
    s.pool.write('a', 0, Buffer.alloc(BS, 0xaa));
    s.pool.snapshot('a', 's1');
    s.pool.createContainer({ name: 'b', type: 'vdisk', size: SIZE });
    s.pool.write('b', 0, Buffer.alloc(BS, 0xbb));
  });
  afterEach(async () => {
    await s.close();
  });
  after(cleanupTempDirs);

  it('a client of a deleted vdisk never reaches a new vdisk of the same name', async () => {
    const { client } = await RawClient.open(s.server.port, 'b', { structured: false });
    s.pool.deleteContainer('b');
    s.pool.createContainer({ name: 'b', type: 'vdisk', size: SIZE });
    client.request(CMD.WRITE, 0, 0, BS, Buffer.alloc(BS, 0x44));
    assert.equal(await outcome(client), NBD_ERR.ESHUTDOWN);
    assert.deepEqual(s.pool.read('b', 0, BS), Buffer.alloc(BS), 'the new b was not written');
    client.request(CMD.READ, 0, 0, 16);
    assert.equal(await outcome(client, 16), NBD_ERR.ESHUTDOWN);
    // The new b has its own writer slot: a new client writes it.
    const fresh = await RawClient.open(s.server.port, 'b', { structured: false });
    fresh.client.request(CMD.WRITE, 0, 0, BS, Buffer.alloc(BS, 0x55));
    assert.equal(await outcome(fresh.client), 0);
    fresh.client.disconnect();
    client.disconnect();
  });

  it('a sync, revert or resize under a client ends its session instead of handing it other data', async () => {
    const { client } = await RawClient.open(s.server.port, 'b', { structured: false });
    s.pool.sync('b', 'a@s1');
    client.request(CMD.READ, 0, 0, 16);
    assert.equal(await outcome(client, 16), NBD_ERR.ESHUTDOWN, 'no read of a@s1 under the old session');
    client.request(CMD.WRITE, 0, 0, BS, Buffer.alloc(BS, 0x44));
    assert.equal(await outcome(client), NBD_ERR.ESHUTDOWN);
    assert.deepEqual(s.pool.read('b', 0, BS), Buffer.alloc(BS, 0xaa));
    client.disconnect();

    const second = (await RawClient.open(s.server.port, 'b', { structured: false })).client;
    s.pool.snapshot('b', 'keep'); // a snapshot keeps the session: it changes nothing the client sees
    second.request(CMD.WRITE, 0, BS, BS, Buffer.alloc(BS, 0x11));
    assert.equal(await outcome(second), 0);
    s.pool.revert('b', 'keep');
    second.request(CMD.WRITE, 0, BS, BS, Buffer.alloc(BS, 0x22));
    assert.equal(await outcome(second), NBD_ERR.ESHUTDOWN);
    assert.deepEqual(s.pool.read('b', BS, BS), Buffer.alloc(BS));
    second.disconnect();

    const third = (await RawClient.open(s.server.port, 'b', { structured: false })).client;
    s.pool.resize('b', 2 * SIZE);
    third.request(CMD.READ, 0, 0, 16);
    assert.equal(await outcome(third, 16), NBD_ERR.ESHUTDOWN);
    third.disconnect();
  });

  it('a snapshot reader survives writes, syncs and snapshots of its container, not the snapshot deletion', async () => {
    const { client } = await RawClient.open(s.server.port, 'a@s1', { structured: false });
    s.pool.write('a', 0, Buffer.alloc(BS, 0x01));
    s.pool.snapshot('a', 's2');
    s.pool.sync('a', 'a@s2');
    client.request(CMD.READ, 0, 0, 16);
    const r = await client.reply(16);
    assert.equal(r.error, 0);
    assert.deepEqual(RawClient.readData(r, 0, 16), Buffer.alloc(16, 0xaa));
    s.pool.deleteSnapshot('a@s1');
    client.request(CMD.READ, 0, 0, 16);
    assert.equal(await outcome(client, 16), NBD_ERR.ESHUTDOWN);
    client.disconnect();
  });

  it('registers every session with its binding, mode and client, and forgets it when it goes', async () => {
    const writer = await RawClient.open(s.server.port, 'b', { structured: false });
    const reader = await RawClient.open(s.server.port, 'a@s1', { structured: false });
    const infos = s.server.sessions.all().map((x) => x.info());
    assert.deepEqual(
      infos.map(({ container, export: name, mode }) => ({ container, export: name, mode })),
      [
        { container: 'b', export: 'b', mode: 'read-write' },
        { container: 'a', export: 'a@s1', mode: 'read-only' },
      ],
    );
    assert.match(infos[0]!.client, /^127\.0\.0\.1:\d+$/);
    writer.client.disconnect();
    reader.client.disconnect();
    await Promise.all([writer.client.closed, reader.client.closed]);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(s.server.sessions.all(), []);
  });
});
