/**
 * The concurrent data path against a model: a real pool served over NBD
 * in-process, a writer and a reader connection per vdisk, each writer with
 * up to 24 requests in flight (writes and trims whose byte ranges are
 * disjoint but share 64 KiB pool blocks, so copy-up and allocation of one
 * block race), reads on the other connection, FLUSHes on either, and
 * snapshots taken the way the agent takes them (`pool.quiesce()`, then the
 * synchronous snapshot) while requests are in flight. Against a Buffer per
 * vdisk:
 * - every request succeeds, and after each batch every vdisk reads exactly
 *   as the model, over NBD and through the engine;
 * - a snapshot taken mid-batch holds every write acknowledged before it and,
 *   of those in flight, each entirely or not at all; it never changes after;
 * - reads of ranges no request in flight touches return the model's bytes;
 * - fsck is clean after every few batches and at the end.
 * Reproduce a failure with SNAPSYNC_MODEL_SEED=<seed printed on failure>;
 * SNAPSYNC_MODEL_RUNS batches more.
 */
import * as assert from 'node:assert/strict';
import { CMD } from '../../agent/nbd/constants';
import { seededRandom } from '../helpers/seeded-random';
import { cleanupTempDirs } from '../helpers/tmp';
import { RawClient } from './helpers/raw-client';
import { type ServedPool, servePool } from './helpers/served-pool';

const POOL_BLOCK = 64 * 1024;
const SLOT = 4096;
const SIZE = 2 * 1024 * 1024;
const SLOTS = SIZE / SLOT;
const DISKS = ['d0', 'd1'];

interface Request {
  kind: 'write' | 'trim';
  offset: number;
  data: Buffer;
}

interface Disk {
  name: string;
  model: Buffer;
  writer: RawClient;
  reader: RawClient;
}

interface TakenSnapshot {
  disk: string;
  name: string;
  /** What it read when checked (then forever). */
  content: Buffer;
}

/** Disjoint requests: 1–4 slots each, some starting or ending mid-slot. */
function batch(random: () => number, count: number): Request[] {
  const used = new Uint8Array(SLOTS);
  const out: Request[] = [];
  for (let tries = 0; out.length < count && tries < count * 8; tries++) {
    const slot = Math.floor(random() * SLOTS);
    const slots = 1 + Math.floor(random() * 4);
    if (slot + slots > SLOTS || used.subarray(slot, slot + slots).some((u) => u)) continue;
    used.fill(1, slot, slot + slots);
    const head = random() < 0.3 ? 512 * Math.floor(random() * 7) : 0;
    const tail = random() < 0.3 && slots > 1 ? 512 * Math.floor(random() * 7) : 0;
    const offset = slot * SLOT + head;
    const length = slots * SLOT - head - tail;
    const kind = random() < 0.15 ? 'trim' : 'write';
    const data = Buffer.alloc(length);
    if (kind === 'write')
      for (let i = 0; i < length; i += 64) data.fill(Math.floor(random() * 255) + 1, i, i + 64);
    out.push({ kind, offset, data });
  }
  return out;
}

function send(client: RawClient, r: Request): bigint {
  return r.kind === 'write'
    ? client.request(CMD.WRITE, 0, r.offset, r.data.length, r.data)
    : client.request(CMD.TRIM, 0, r.offset, r.data.length);
}

async function readAll(client: RawClient, offset: number, length: number): Promise<Buffer> {
  client.request(CMD.READ, 0, offset, length);
  const reply = await client.reply(length);
  assert.equal(reply.error, 0, 'read ok');
  return RawClient.readData(reply, offset, length);
}

describe('concurrent NBD writers and readers with snapshots and flushes, against a model', function () {
  this.timeout(600_000);
  let s: ServedPool;
  after(async () => {
    await s?.close();
    cleanupTempDirs();
  });

  it('every vdisk and every snapshot reads as the model; in-flight writes land whole or not at all; fsck clean', async () => {
    const seed = Number(process.env.SNAPSYNC_MODEL_SEED ?? Date.now() % 2 ** 31);
    const batches = Number(process.env.SNAPSYNC_MODEL_RUNS ?? 40);
    const random = seededRandom(seed);
    const where = (step: number) => `seed ${seed}, batch ${step}`;
    s = await servePool({ blockSize: POOL_BLOCK });
    const disks: Disk[] = [];
    for (const name of DISKS) {
      s.pool.createContainer({ name, type: 'vdisk', size: SIZE });
      const writer = (await RawClient.open(s.server.port, name, { structured: random() < 0.5 })).client;
      const reader = (await RawClient.open(s.server.port, name)).client;
      disks.push({ name, model: Buffer.alloc(SIZE), writer, reader });
    }
    const snapshots: TakenSnapshot[] = [];
    let snapshotCount = 0;

    for (let step = 0; step < batches; step++) {
      // Every random choice is drawn before anything runs, so a seed replays the same batch.
      const plans = disks.map((disk) => {
        const requests = batch(random, 1 + Math.floor(random() * 24));
        const touched = new Uint8Array(SLOTS);
        for (const r of requests)
          touched.fill(1, Math.floor(r.offset / SLOT), Math.ceil((r.offset + r.data.length) / SLOT));
        const readSlots: number[] = [];
        for (let i = 0; i < 6; i++) {
          const slot = Math.floor(random() * (SLOTS - 2));
          if (!touched[slot] && !touched[slot + 1]) readSlots.push(slot);
        }
        return {
          disk,
          requests,
          readSlots,
          writerFlush: random() < 0.3,
          readerFlush: random() < 0.2,
          // Snapshot after this many replies (null: none this batch).
          snapshotAfter: random() < 0.35 ? Math.floor(random() * (requests.length + 1)) : null,
        };
      });
      await Promise.all(
        plans.map(async ({ disk, requests, readSlots, writerFlush, readerFlush, snapshotAfter }) => {
          const before = Buffer.from(disk.model);
          const sent = requests.map((r) => ({ r, handle: send(disk.writer, r) }));
          if (writerFlush) disk.writer.request(CMD.FLUSH, 0, 0, 0);
          // Reads of untouched slots on the other connection, answered while the writes run.
          if (readerFlush) disk.reader.request(CMD.FLUSH, 0, 0, 0);
          for (const slot of readSlots) disk.reader.request(CMD.READ, 0, slot * SLOT, 2 * SLOT);
          const reads = (async () => {
            if (readerFlush) assert.equal((await disk.reader.reply()).error, 0, `${where(step)}: flush ok`);
            for (const slot of readSlots) {
              const reply = await disk.reader.reply();
              assert.equal(reply.error, 0, `${where(step)}: read ok`);
              const got = RawClient.readData(reply, slot * SLOT, 2 * SLOT);
              assert.ok(
                got.equals(before.subarray(slot * SLOT, (slot + 2) * SLOT)),
                `${where(step)}: untouched read`,
              );
            }
          })();
          // Replies come in any order: take them as they arrive, noting which were acknowledged first.
          const byHandle = new Map(sent.map((x) => [x.handle, x.r]));
          const acked: Request[] = [];
          let snapshot: string | null = null;
          let ackedAtSnapshot: Request[] = [];
          const takeSnapshot = async () => {
            // As the agent's snapshot handler: quiesce, then the synchronous snapshot.
            snapshot = `snap${snapshotCount++}`;
            ackedAtSnapshot = [...acked];
            await s.pool.quiesce();
            s.pool.snapshot(disk.name, snapshot);
          };
          if (snapshotAfter === 0) await takeSnapshot();
          while (acked.length < sent.length) {
            const reply = await disk.writer.nextReply();
            const r = byHandle.get(reply.handle);
            assert.equal(reply.error, 0, `${where(step)}: every request succeeds`);
            if (r === undefined) continue; // the FLUSH
            acked.push(r);
            if (acked.length === snapshotAfter) await takeSnapshot();
          }
          if (writerFlush && acked.length === sent.length && disk.writer.pending() > 0)
            assert.equal((await disk.writer.nextReply()).error, 0, `${where(step)}: flush ok`);
          await reads;
          for (const { r } of sent) r.data.copy(disk.model, r.offset);
          if (snapshot !== null) {
            const content = s.pool.readSnapshot(`${disk.name}@${snapshot}`, 0, SIZE);
            const inBatch = new Uint8Array(SIZE);
            for (const { r } of sent) {
              inBatch.fill(1, r.offset, r.offset + r.data.length);
              const got = content.subarray(r.offset, r.offset + r.data.length);
              const old = before.subarray(r.offset, r.offset + r.data.length);
              if (ackedAtSnapshot.includes(r))
                assert.ok(
                  got.equals(r.data),
                  `${where(step)}: a write acknowledged before the snapshot is in it`,
                );
              else
                assert.ok(
                  got.equals(r.data) || got.equals(old),
                  `${where(step)}: a write in flight is in it whole or not at all`,
                );
            }
            for (let i = 0; i < SIZE; i++)
              if (!inBatch[i] && content[i] !== before[i])
                assert.fail(`${where(step)}: snapshot byte ${i} changed`);
            snapshots.push({ disk: disk.name, name: snapshot, content });
          }
        }),
      );
      for (const disk of disks) {
        assert.ok(
          s.pool.read(disk.name, 0, SIZE).equals(disk.model),
          `${where(step)}: ${disk.name} reads as the model`,
        );
        assert.ok((await readAll(disk.reader, 0, SIZE)).equals(disk.model), `${where(step)}: over NBD too`);
      }
      if (step % 8 === 7) assert.deepEqual((await s.pool.fsck()).problems, [], `${where(step)}: fsck`);
    }
    for (const snap of snapshots)
      assert.ok(
        s.pool.readSnapshot(`${snap.disk}@${snap.name}`, 0, SIZE).equals(snap.content),
        `seed ${seed}: ${snap.disk}@${snap.name} never changed`,
      );
    assert.deepEqual((await s.pool.fsck()).problems, [], `seed ${seed}: fsck at the end`);
    assert.ok(snapshots.length > 0, `seed ${seed}: snapshots were taken mid-batch`);
    for (const disk of disks) {
      disk.writer.disconnect();
      disk.reader.disconnect();
    }
  });
});
