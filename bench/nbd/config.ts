/**
 * bench:nbd settings: environment knobs and `--quick`. Pure parsing, no I/O
 * (the smoke test and the README describe the same names).
 */

export const WORKLOADS = {
  'randread-4k-qd1': { rw: 'randread', bs: '4k', iodepth: 1, metric: 'IOPS' },
  'randread-4k-qd32': { rw: 'randread', bs: '4k', iodepth: 32, metric: 'IOPS' },
  'randwrite-4k-qd32': { rw: 'randwrite', bs: '4k', iodepth: 32, metric: 'IOPS' },
  'seqread-1m-qd8': { rw: 'read', bs: '1M', iodepth: 8, metric: 'MiB/s' },
  'seqwrite-1m-qd8': { rw: 'write', bs: '1M', iodepth: 8, metric: 'MiB/s' },
} as const;
export type WorkloadName = keyof typeof WORKLOADS;
export type CacheMode = 'warm' | 'cold';
export type AioMode = 'threads' | 'io_uring';

export interface BenchConfig {
  quick: boolean;
  sizeMiB: number;
  /** Seconds measured per fio run (fractions allowed: fio gets milliseconds). */
  runtime: number;
  /** Seconds fio runs before measuring. */
  ramp: number;
  reps: number;
  depths: number[];
  /** Clients (one disk each) of the concurrent case; 0 leaves the case out. */
  clients: number;
  workloads: WorkloadName[];
  caches: CacheMode[];
  aio: AioMode[];
  copy: boolean;
  /** `init --data-files` of the snapsync pool; null: init's default. */
  dataFiles: number | null;
  syncReps: number;
  /** Repetitions of the nbdcopy cases: whole processes of 1–3 s whose spread is wide, so more than the fio cases' by default. */
  copyReps: number;
  /** Seconds the qcow2 side of a chain may take to build; the chain (both sides) stops at the depth reached. */
  qcow2BuildSeconds: number;
  dir: string;
  out: string | null;
}

function list<T extends string>(raw: string, allowed: readonly T[], what: string): T[] {
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items)
    if (!allowed.includes(item as T))
      throw new Error(`${what}: unknown ${item} (one of ${allowed.join(', ')})`);
  return items as T[];
}

function num(raw: string | undefined, fallback: number, what: string): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${what}: not a non-negative number: ${raw}`);
  return n;
}

/** Reads `--quick` from argv and the BENCH_NBD_* variables (each overrides the --quick default). */
export function readConfig(argv: string[], env: NodeJS.ProcessEnv, tmp: string): BenchConfig {
  const quick = argv.includes('--quick');
  const d = quick
    ? {
        size: 64,
        runtime: 0.5,
        ramp: 0,
        reps: 1,
        depths: '8',
        clients: 2,
        syncReps: 3,
        copyReps: 1,
        budget: 60,
      }
    : {
        size: 1024,
        runtime: 8,
        ramp: 1,
        reps: 3,
        depths: '1,8,32,512',
        clients: 4,
        syncReps: 11,
        copyReps: 9,
        budget: 900,
      };
  const config: BenchConfig = {
    quick,
    sizeMiB: num(env.BENCH_NBD_SIZE, d.size, 'BENCH_NBD_SIZE'),
    runtime: num(env.BENCH_NBD_RUNTIME, d.runtime, 'BENCH_NBD_RUNTIME'),
    ramp: num(env.BENCH_NBD_RAMP, d.ramp, 'BENCH_NBD_RAMP'),
    reps: num(env.BENCH_NBD_REPS, d.reps, 'BENCH_NBD_REPS'),
    depths: (env.BENCH_NBD_DEPTHS || d.depths).split(',').map((s) => num(s, 1, 'BENCH_NBD_DEPTHS')),
    clients: num(env.BENCH_NBD_CLIENTS, d.clients, 'BENCH_NBD_CLIENTS'),
    workloads: list(
      env.BENCH_NBD_WORKLOADS || Object.keys(WORKLOADS).join(','),
      Object.keys(WORKLOADS) as WorkloadName[],
      'BENCH_NBD_WORKLOADS',
    ),
    caches: list(env.BENCH_NBD_CACHE || 'warm,cold', ['warm', 'cold'] as const, 'BENCH_NBD_CACHE'),
    aio: list(env.BENCH_NBD_AIO || 'threads,io_uring', ['threads', 'io_uring'] as const, 'BENCH_NBD_AIO'),
    copy: (env.BENCH_NBD_COPY ?? '1') !== '0',
    dataFiles: env.BENCH_NBD_DATA_FILES ? num(env.BENCH_NBD_DATA_FILES, 0, 'BENCH_NBD_DATA_FILES') : null,
    syncReps: num(env.BENCH_NBD_SYNC_REPS, d.syncReps, 'BENCH_NBD_SYNC_REPS'),
    copyReps: num(env.BENCH_NBD_COPY_REPS, d.copyReps, 'BENCH_NBD_COPY_REPS'),
    qcow2BuildSeconds: num(env.BENCH_NBD_QCOW2_BUDGET, d.budget, 'BENCH_NBD_QCOW2_BUDGET'),
    dir: env.BENCH_NBD_DIR || tmp,
    out: env.BENCH_NBD_OUT || null,
  };
  if (config.sizeMiB < 16 || config.sizeMiB % 1 !== 0)
    throw new Error('BENCH_NBD_SIZE: whole MiB, at least 16');
  if (config.reps < 1 || config.syncReps < 1 || config.copyReps < 1)
    throw new Error('BENCH_NBD_REPS/BENCH_NBD_SYNC_REPS/BENCH_NBD_COPY_REPS: at least 1');
  if (config.runtime <= 0) throw new Error('BENCH_NBD_RUNTIME: more than 0');
  if (config.depths.some((x) => x < 1 || x % 1 !== 0)) throw new Error('BENCH_NBD_DEPTHS: whole numbers ≥ 1');
  return config;
}
