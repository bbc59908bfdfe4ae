/**
 * Metadata cost per mapped block (`npx tsx scripts/measure-metadata.ts`):
 * `meta/data.mdb` size ÷ map entries (every table's mapped blocks), after
 * - random: a 4 GiB vdisk (64 KiB blocks) taking random 4 KiB and 64 KiB
 *   writes (half each, 4 KiB-aligned), a flush every 256 writes, a snapshot
 *   after each of 10 rounds of MEASURE_WRITES (default 4000) writes;
 * - sequential: the same vdisk filled with 1 MiB writes, a flush every 64 MiB.
 * It also prints the bytes of the pages LMDB uses (the file holds free pages
 * too). Target: ≤ 32 bytes per mapped block. MEASURE_DIR picks the directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { open } from 'lmdb';
import { Pool } from '../agent/engine';

const KiB = 1024;
const MiB = 1024 * KiB;
const DISK = 4096 * MiB;

let seed = 20261130;
const random = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

async function measure(dir: string, fill: (pool: Pool) => Promise<void>) {
  const pool = Pool.create(dir, { capacityBytes: 2 * DISK });
  pool.createContainer({ name: 'd', type: 'vdisk', size: DISK });
  await fill(pool);
  const { checked } = await pool.fsck();
  const format = pool.info().formatVersion;
  await pool.close();
  const file = fs.statSync(path.join(dir, 'meta', 'data.mdb')).size;
  const env = open({ path: path.join(dir, 'meta'), readOnly: true, maxDbs: 16 });
  const stats = env.getStats() as { pageSize: number };
  let pages = 0;
  const perDb: Record<string, number> = {};
  for (const key of [...env.getKeys({})]) {
    const s = env.openDB({ name: String(key) }).getStats() as Record<string, number>;
    const n = s.treeBranchPageCount! + s.treeLeafPageCount! + s.overflowPages!;
    pages += n;
    if (n > 0) perDb[String(key)] = n * stats.pageSize;
  }
  await env.close();
  return { format, entries: checked.mapEntries, file, used: pages * stats.pageSize, perDb };
}

async function main() {
  const root = fs.mkdtempSync(path.join(process.env.MEASURE_DIR ?? os.tmpdir(), 'snapsync-meta-'));
  const writes = Number(process.env.MEASURE_WRITES ?? 4000);
  try {
    const runs = {
      [`random 4 KiB/64 KiB writes, 10 snapshots × ${writes}`]: async (pool: Pool) => {
        for (let round = 0; round < 10; round++) {
          for (let i = 0; i < writes; i++) {
            const length = random() < 0.5 ? 4 * KiB : 64 * KiB;
            const offset = Math.floor(random() * ((DISK - length) / (4 * KiB))) * 4 * KiB;
            pool.write('d', offset, Buffer.alloc(length, (round + i) & 0xff || 1));
            if (i % 256 === 255) await pool.flush();
          }
          pool.snapshot('d', `s${round}`);
          await pool.flush();
        }
      },
      'sequential fill, 1 MiB writes': async (pool: Pool) => {
        const chunk = Buffer.alloc(MiB, 7);
        for (let offset = 0; offset < DISK; offset += MiB) {
          pool.write('d', offset, chunk);
          if (offset % (64 * MiB) === 0) await pool.flush();
        }
        await pool.flush();
      },
    };
    let n = 0;
    for (const [label, fill] of Object.entries(runs)) {
      const r = await measure(path.join(root, String(n++)), fill);
      console.log(
        `${label} (format ${r.format}): ${r.entries} mapped blocks, data.mdb ${(r.file / MiB).toFixed(1)} MiB = ` +
          `${(r.file / r.entries).toFixed(1)} B/block; pages in use ${(r.used / r.entries).toFixed(1)} B/block (` +
          Object.entries(r.perDb)
            .map(([db, bytes]) => `${db} ${(bytes / r.entries).toFixed(1)}`)
            .join(', ') +
          ')',
      );
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
