/**
 * bench:nbd — snapsync's NBD export vs qemu-nbd serving qcow2 backing chains,
 * same data, same client (fio --ioengine=nbd, one connection each):
 *   sequential read/write MiB/s (1 MiB, depth 8) and random 4 KiB read IOPS (depth 32)
 *   for chain depths 1, 8 and 32;
 * and the time to give a 100 GiB disk a new state: snapsync sync vs
 * `qemu-img create -b` vs a full `qemu-img convert` copy of a partly filled disk.
 *
 * Env: BENCH_NBD_SIZE (MiB, default 1024), BENCH_NBD_RUNTIME (s, default 8),
 * BENCH_NBD_DEPTHS (default 1,8,32), BENCH_NBD_FILL (MiB of data in the 100 GiB disk, default 2048),
 * BENCH_NBD_DIR (scratch directory, default the OS temp dir).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pool } from '../../agent/engine';
import { startNbdServer } from '../../agent/nbd';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SIZE = Number(process.env.BENCH_NBD_SIZE ?? 1024) * MiB;
const RUNTIME = Number(process.env.BENCH_NBD_RUNTIME ?? 8);
const DEPTHS = (process.env.BENCH_NBD_DEPTHS ?? '1,8,32').split(',').map(Number);
const FILL = Number(process.env.BENCH_NBD_FILL ?? 2048) * MiB;
const BIG = 100 * GiB;
/** Layer granularity: the pool block and the qcow2 cluster are both 64 KiB. */
const UNIT = 64 * 1024;

function exec(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 256 * MiB }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.slice(0, 6).join(' ')}…: ${stderr || err.message}`));
      else resolve(String(stdout));
    });
  });
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Layer 0 content: 1 MiB of pseudo-random bytes, varied per MiB so no two MiB are equal. */
function baseMiB(index: number, seed: Buffer): Buffer {
  const b = Buffer.from(seed);
  b.writeUInt32LE(index, 0);
  b.writeUInt32LE(Math.imul(index, 2654435761) >>> 0, MiB / 2);
  return b;
}

/** Units that layer `layer` (≥ 1) of a depth-`depth` chain rewrites: every depth-th unit. */
function* layerUnits(layer: number, depth: number): Generator<number> {
  for (let u = layer; u < SIZE / UNIT; u += depth) yield u;
}

interface FioResult {
  seqRead: number;
  randRead: number;
  seqWrite: number;
}

async function fio(
  uri: string,
  rw: string,
  bs: string,
  depth: number,
  out: string,
): Promise<{ bw: number; iops: number }> {
  // Each run starts with no dirty pages: neither server pays for the other's write-back.
  await exec('sync', []);
  await exec('fio', [
    '--name=bench',
    '--ioengine=nbd',
    `--uri=${uri}`,
    `--rw=${rw}`,
    `--bs=${bs}`,
    `--iodepth=${depth}`,
    `--size=${SIZE}`,
    `--runtime=${RUNTIME}`,
    '--time_based',
    '--ramp_time=1',
    '--output-format=json',
    `--output=${out}`,
  ]);
  const job = JSON.parse(fs.readFileSync(out, 'utf8')).jobs[0];
  const side = rw.includes('write') ? job.write : job.read;
  return { bw: side.bw / 1024, iops: side.iops };
}

async function fioSuite(uri: string, scratch: string): Promise<FioResult> {
  const out = path.join(scratch, 'fio.json');
  const randRead = (await fio(uri, 'randread', '4k', 32, out)).iops;
  const seqRead = (await fio(uri, 'read', '1M', 8, out)).bw;
  const seqWrite = (await fio(uri, 'write', '1M', 8, out)).bw;
  return { seqRead, randRead, seqWrite };
}

/** Builds the same depth-d chain as a snapsync vdisk and as qcow2 files; returns the top qcow2. */
async function buildChains(pool: Pool, depth: number, scratch: string): Promise<string> {
  const seed = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i += 4) seed.writeUInt32LE((Math.imul(i + 1, 2654435761) ^ (i >>> 3)) >>> 0, i);
  const raw = path.join(scratch, 'layer0.raw');
  const fd = fs.openSync(raw, 'w');
  pool.createContainer({ name: 'bench', type: 'vdisk', size: SIZE });
  for (let m = 0; m < SIZE / MiB; m++) {
    const chunk = baseMiB(m, seed);
    fs.writeSync(fd, chunk, 0, MiB, m * MiB);
    pool.write('bench', m * MiB, chunk);
  }
  fs.closeSync(fd);
  let top = path.join(scratch, 'layer0.qcow2');
  await exec('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, top]);
  fs.rmSync(raw);
  for (let layer = 1; layer < depth; layer++) {
    pool.snapshot('bench', `layer${layer - 1}`);
    const next = path.join(scratch, `layer${layer}.qcow2`);
    await exec('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', top, '-F', 'qcow2', next]);
    const fill = Buffer.alloc(UNIT, layer);
    const commands: string[] = [];
    for (const u of layerUnits(layer, depth)) {
      pool.write('bench', u * UNIT, fill);
      commands.push('-c', `write -q -P ${layer} ${u * UNIT} ${UNIT}`);
    }
    await exec('qemu-io', ['-f', 'qcow2', ...commands, next]);
    top = next;
  }
  await pool.flush();
  return top;
}

async function chainRow(depth: number, root: string) {
  const scratch = fs.mkdtempSync(path.join(root, `depth${depth}-`));
  const pool = Pool.create(path.join(scratch, 'pool'));
  let qemu: ChildProcess | null = null;
  const server = await startNbdServer({ pool, port: 0, insecureNoAuth: true /* loopback benchmark */ });
  try {
    const top = await buildChains(pool, depth, scratch);
    const qport = await freePort();
    qemu = spawn(
      'qemu-nbd',
      ['-f', 'qcow2', '-b', '127.0.0.1', '-p', String(qport), '-x', 'bench', '-t', top],
      {
        stdio: 'ignore',
      },
    );
    await waitListening(qport);
    const qemuUri = `nbd://127.0.0.1:${qport}/bench`;
    // Same client, same bytes: both exports must compare equal before anything is measured.
    await exec('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', server.url('bench'), qemuUri]);
    const lineage = pool.lineage('bench').length;
    const snapsync = await fioSuite(server.url('bench'), scratch);
    const qemuNbd = await fioSuite(qemuUri, scratch);
    return { depth, lineage, snapsync, qemuNbd };
  } finally {
    qemu?.kill();
    await server.close();
    await pool.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function timed<T>(fn: () => Promise<T> | T): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** 100 GiB disk, FILL bytes of data in 32 extents spread over it. */
async function newStateRow(root: string) {
  const scratch = fs.mkdtempSync(path.join(root, 'newstate-'));
  try {
    const extents = 32;
    const extent = FILL / extents;
    const stride = BIG / extents;
    const piece = Buffer.alloc(MiB);
    for (let i = 0; i < MiB; i += 4) piece.writeUInt32LE((Math.imul(i + 7, 2246822519) ^ i) >>> 0, i);

    const pool = Pool.create(path.join(scratch, 'pool'));
    pool.createContainer({ name: 'prod', type: 'vdisk', size: BIG });
    pool.createContainer({ name: 'staging', type: 'vdisk', size: BIG });
    for (let e = 0; e < extents; e++)
      for (let o = 0; o < extent; o += MiB) pool.write('prod', e * stride + o, piece);
    for (let o = 0; o < 256 * MiB; o += MiB) pool.write('staging', 10 * GiB + o, piece);
    pool.snapshot('prod', 'golden');
    await pool.flush();
    const sync = await timed(async () => {
      pool.sync('staging', 'prod@golden');
      await pool.durable();
    });
    await pool.close();

    const prod = path.join(scratch, 'prod.qcow2');
    await exec('qemu-img', ['create', '-q', '-f', 'qcow2', prod, String(BIG)]);
    const commands: string[] = [];
    for (let e = 0; e < extents; e++) commands.push('-c', `write -q -P 0x5a ${e * stride} ${extent}`);
    await exec('qemu-io', ['-f', 'qcow2', ...commands, prod]);
    const overlay = await timed(() =>
      exec('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        '-b',
        prod,
        '-F',
        'qcow2',
        path.join(scratch, 'staging.qcow2'),
      ]),
    );
    const copy = await timed(() =>
      exec('qemu-img', ['convert', '-f', 'qcow2', '-O', 'qcow2', prod, path.join(scratch, 'copy.qcow2')]),
    );
    return { sync, overlay, copy };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

const f0 = (n: number) => n.toFixed(0);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(process.env.BENCH_NBD_DIR ?? os.tmpdir(), 'snapsync-bench-nbd-'));
  try {
    console.log(
      `# bench:nbd — ${SIZE / MiB} MiB disk, fio --ioengine=nbd, ${RUNTIME} s per run, ${os.cpus().length} CPUs, node ${process.version}\n`,
    );
    const rows = [];
    for (const depth of DEPTHS) {
      const row = await chainRow(depth, root);
      rows.push(row);
      console.error(`depth ${depth} done`);
    }
    console.log(
      '| chain depth | seq read MiB/s snapsync / qemu-nbd | seq write MiB/s snapsync / qemu-nbd | rand 4K read IOPS (QD32) snapsync / qemu-nbd |',
    );
    console.log('|---|---|---|---|');
    for (const r of rows) {
      const s = r.snapsync;
      const q = r.qemuNbd;
      console.log(
        `| ${r.depth} (${r.lineage} tables / ${r.depth} qcow2) | ${f0(s.seqRead)} / ${f0(q.seqRead)} (${ratio(s.seqRead, q.seqRead)}) | ${f0(s.seqWrite)} / ${f0(q.seqWrite)} (${ratio(s.seqWrite, q.seqWrite)}) | ${f0(s.randRead)} / ${f0(q.randRead)} (${ratio(s.randRead, q.randRead)}) |`,
      );
    }
    const ns = await newStateRow(root);
    console.log(`\nNew state for a 100 GiB disk holding ${FILL / MiB} MiB of data (32 extents):\n`);
    console.log('| method | time |');
    console.log('|---|---|');
    console.log(`| snapsync sync (metadata commit, durable) | ${ns.sync.toFixed(1)} ms |`);
    console.log(`| qemu-img create -b (new overlay) | ${ns.overlay.toFixed(1)} ms |`);
    console.log(
      `| qemu-img convert full copy (${FILL / MiB} MiB allocated copied, holes skipped) | ${ns.copy.toFixed(1)} ms |`,
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
