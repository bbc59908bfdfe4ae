/** A temporary pool served over NBD on a free loopback port, and async client runs. */
import { execFile } from 'node:child_process';
import { Pool } from '../../../agent/engine';
import { type NbdServer, type NbdTlsOptions, startNbdServer } from '../../../agent/nbd';
import type { EngineExports } from '../../../agent/nbd/engine-backend';
import { tempDir } from '../../helpers/tmp';

export interface ServedPool {
  pool: Pool;
  server: NbdServer & { exports: EngineExports };
  dir: string;
  url(name: string): string;
  errors: unknown[];
  close(): Promise<void>;
}

export async function servePool(
  options: {
    blockSize?: number;
    capacityBytes?: number;
    tls?: NbdTlsOptions;
    transmissionThreads?: number;
  } = {},
): Promise<ServedPool> {
  const dir = tempDir('snapsync-nbd-');
  const pool = Pool.create(dir, {
    ...(options.blockSize ? { blockSize: options.blockSize } : {}),
    ...(options.capacityBytes ? { capacityBytes: options.capacityBytes } : {}),
  });
  const errors: unknown[] = [];
  const server = await startNbdServer({
    pool,
    port: 0,
    // Loopback TCP without client authentication: these tests are about the protocol, not access.
    insecureNoAuth: true,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.transmissionThreads !== undefined
      ? { transmissionThreads: options.transmissionThreads }
      : {}),
    onError: (err) => errors.push(err),
  });
  return {
    pool,
    server,
    dir,
    errors,
    url: (name) => server.url(name),
    close: async () => {
      await server.close();
      await pool.close();
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client asynchronously: the server lives in this process, so a
 * synchronous spawn would deadlock it.
 */
export function run(cmd: string, args: string[], options: { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Like run, but fails with the client's stderr when it exits non-zero. */
export async function runOk(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number } = {},
): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function patternBytes(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    if (i + 4 <= length) b.writeUInt32LE(x >>> 0, i);
    else for (let j = i; j < length; j++) b[j] = (x >>> (8 * (j - i))) & 0xff;
  }
  return b;
}

/** Parses `nbdinfo --map` output into { offset, length, type }. */
export function parseMap(text: string): Array<{ offset: number; length: number; type: number }> {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [offset, length, type] = line.trim().split(/\s+/).map(Number);
      return { offset: offset!, length: length!, type: type! };
    });
}
