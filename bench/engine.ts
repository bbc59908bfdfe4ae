/**
 * Engine benchmark (`npm run bench:engine`): prints, from one run,
 * - sync time at 1 GiB vs 1 TiB logical size (target: ratio ≤ 1.5);
 * - sequential write/read MiB/s vs plain pwrite/pread on a file in the same
 *   directory (target: ≥ 0.7×);
 * - random 4 KiB read latency at chain depth 1, 8, 64, 512 (targets: depth 64
 *   ≤ 1.3× and depth 512 ≤ 2× depth 1).
 * BENCH_DIR picks the directory (default: a temp dir); BENCH_SEQ_MIB the
 * sequential size (default 1024).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pool } from '../agent/engine';

const MiB = 1 << 20;
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function syncScaling(dir: string) {
  const pool = Pool.create(path.join(dir, 'sync'), { capacityBytes: 2 ** 41 });
  const results: Record<string, number> = {};
  for (const [label, size] of [
    ['1 GiB', 2 ** 30],
    ['1 TiB', 2 ** 40],
  ] as const) {
    pool.createContainer({ name: `src-${label.replace(' ', '')}`, type: 'vdisk', size });
    pool.createContainer({ name: `dst-${label.replace(' ', '')}`, type: 'vdisk', size });
    // 4096 mapped blocks spread over the whole disk, in source and target.
    for (let k = 0; k < 4096; k++) {
      const offset = Math.floor((k / 4096) * (size / 65536)) * 65536;
      pool.write(`src-${label.replace(' ', '')}`, offset, Buffer.alloc(4096, 1));
      pool.write(`dst-${label.replace(' ', '')}`, offset, Buffer.alloc(4096, 2));
    }
    pool.snapshot(`src-${label.replace(' ', '')}`, 's');
    await pool.flush();
    const times: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = now();
      pool.sync(`dst-${label.replace(' ', '')}`, `src-${label.replace(' ', '')}@s`);
      await pool.durable();
      times.push(now() - t0);
    }
    results[label] = median(times);
  }
  await pool.close();
  return results;
}

/** Best of `rounds` alternating runs of plain file I/O and engine I/O over the same sizes and buffers. */
async function sequential(dir: string, mib: number, rounds = 3) {
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < chunk.length; i += 4096) chunk.fill(i & 0xff, i, i + 4096);
  const out = Buffer.alloc(MiB);
  const best = { plainWrite: 0, plainRead: 0, write: 0, read: 0 };
  for (let round = 0; round < rounds; round++) {
    const plainPath = path.join(dir, 'plain.img');
    const fd = fs.openSync(plainPath, 'w+');
    let t0 = now();
    for (let i = 0; i < mib; i++) fs.writeSync(fd, chunk, 0, MiB, i * MiB);
    fs.fdatasyncSync(fd);
    best.plainWrite = Math.max(best.plainWrite, mib / ((now() - t0) / 1000));
    t0 = now();
    for (let i = 0; i < mib; i++) fs.readSync(fd, out, 0, MiB, i * MiB);
    best.plainRead = Math.max(best.plainRead, mib / ((now() - t0) / 1000));
    fs.closeSync(fd);
    fs.rmSync(plainPath);

    const poolDir = path.join(dir, 'seq');
    const pool = Pool.create(poolDir, { capacityBytes: (mib + 64) * MiB });
    pool.createContainer({ name: 'd', type: 'vdisk', size: mib * MiB });
    t0 = now();
    for (let i = 0; i < mib; i++) pool.write('d', i * MiB, chunk);
    await pool.flush();
    best.write = Math.max(best.write, mib / ((now() - t0) / 1000));
    t0 = now();
    for (let i = 0; i < mib; i++) pool.read('d', i * MiB, MiB, out);
    best.read = Math.max(best.read, mib / ((now() - t0) / 1000));
    await pool.close();
    fs.rmSync(poolDir, { recursive: true });
  }
  return best;
}

async function depthLatency(dir: string) {
  const depths = [1, 8, 64, 512];
  const size = 256 * MiB;
  const pool = Pool.create(path.join(dir, 'depth'), { capacityBytes: 2 * size });
  pool.createContainer({ name: 'base', type: 'vdisk', size });
  const fill = Buffer.alloc(MiB, 5);
  for (let i = 0; i < size / MiB; i++) pool.write('base', i * MiB, fill);
  await pool.flush();
  // One chain of 512 levels; each level rewrites a few random blocks so every level maps something.
  let rng = 12345;
  const random = () => {
    rng = (rng * 1103515245 + 12345) & 0x7fffffff;
    return rng / 0x7fffffff;
  };
  const latencies: Record<number, number> = {};
  let level = 0;
  for (const depth of depths) {
    while (level < depth) {
      pool.snapshot('base', `l${level}`);
      for (let k = 0; k < 4; k++)
        pool.write('base', Math.floor(random() * (size / 65536)) * 65536, Buffer.alloc(4096, level & 0xff));
      level++;
    }
    await pool.flush();
    // Clone the deepest snapshot so reads start from an empty current table on top of `depth` levels.
    const name = `reader${depth}`;
    pool.clone(`base@l${depth - 1}`, name);
    const page = Buffer.alloc(4096);
    const offsets = Array.from({ length: 100_000 }, () => Math.floor(random() * (size / 4096)) * 4096);
    for (const offset of offsets.slice(0, 20_000)) pool.read(name, offset, 4096); // warm caches
    const rounds: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = now();
      for (const offset of offsets) pool.read(name, offset, 4096, page);
      rounds.push(((now() - t0) * 1000) / offsets.length);
    }
    latencies[depth] = median(rounds);
  }
  await pool.close();
  return latencies;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'snapsync-bench-'));
  const mib = Number(process.env.BENCH_SEQ_MIB ?? 1024);
  try {
    const sync = await syncScaling(dir);
    const seq = await sequential(dir, mib);
    const depth = await depthLatency(dir);
    const rows: Array<[string, string, string, string]> = [
      ['sync, 1 GiB disk (median of 15)', `${sync['1 GiB']!.toFixed(2)} ms`, '', ''],
      [
        'sync, 1 TiB disk (median of 15)',
        `${sync['1 TiB']!.toFixed(2)} ms`,
        `${(sync['1 TiB']! / sync['1 GiB']!).toFixed(2)}×`,
        '≤ 1.5×',
      ],
      [
        `sequential write ${mib} MiB + flush (best of 3)`,
        `${seq.write.toFixed(0)} MiB/s`,
        `${(seq.write / seq.plainWrite).toFixed(2)}× plain (${seq.plainWrite.toFixed(0)} MiB/s)`,
        '≥ 0.7×',
      ],
      [
        `sequential read ${mib} MiB (best of 3)`,
        `${seq.read.toFixed(0)} MiB/s`,
        `${(seq.read / seq.plainRead).toFixed(2)}× plain (${seq.plainRead.toFixed(0)} MiB/s)`,
        '≥ 0.7×',
      ],
      ...[1, 8, 64, 512].map((d): [string, string, string, string] => [
        `random 4 KiB read, chain depth ${d}`,
        `${depth[d]!.toFixed(2)} µs`,
        `${(depth[d]! / depth[1]!).toFixed(2)}× depth 1`,
        d === 64 ? '≤ 1.3×' : d === 512 ? '≤ 2×' : '',
      ]),
    ];
    const widths = [0, 1, 2, 3].map((i) =>
      Math.max(...rows.map((r) => r[i]!.length), ['measure', 'value', 'ratio', 'target'][i]!.length),
    );
    const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
    console.log(line(['measure', 'value', 'ratio', 'target']));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const r of rows) console.log(line(r));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
